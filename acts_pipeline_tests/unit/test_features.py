"""The order-book features against an independent, literal reading of DESIGN.md.

`reference_features` below recomputes every field from the raw `[price, quantity]` strings one
level at a time, in `decimal.Decimal` (exact) or plain Python floats, with none of the
vectorised machinery of `acts_pipeline.core.features`. The real Binance captures and the made-up
books of `acts_pipeline_tests/data/made_up_books/` are checked against it.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import acts_pipeline.core.features as features_module
from acts_pipeline.core.features import (
    BAND_BPS,
    DEPTH_LEVELS,
    FEATURE_COLUMNS,
    book_features,
    compute_features,
    features_of_book,
)
from acts_pipeline.core.models import OrderBook, OrderBookSnapshot

TESTS_DIR = Path(__file__).resolve().parent.parent
DEPTH_CAPTURES_DIR = TESTS_DIR.parent / "acts_simulator" / "data" / "binance" / "depth"
MADE_UP_BOOKS_DIR = TESTS_DIR / "data" / "made_up_books"

CAPTURED_SYMBOLS = ("NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR")
#: The edge cases, named here rather than globbed: a missing file fails its tests instead of
#: leaving them out.
MADE_UP_BOOKS = [
    "made_up_both_empty.json",
    "made_up_crossed.json",
    "made_up_empty_asks.json",
    "made_up_empty_best_bid.json",
    "made_up_empty_bids.json",
    "made_up_locked.json",
    "made_up_one_level_each.json",
    "made_up_zero_quantities.json",
]

# Ratios in [-1, 1] computed as (a - b) / (a + b) from sums accumulated in a different order
# cancel when a is close to b: compare them with an absolute tolerance too.
RATIO_COLUMNS = {c for c in FEATURE_COLUMNS if c.startswith(("bias_", "depth_bias_"))}

Levels = list[list[str]]


# --- the independent reference ---------------------------------------------------------------


def reference_features(
    bids: Levels | list[list[float]], asks: Levels | list[list[float]], number: Callable = Decimal
) -> dict[str, Any]:
    """Every feature of one book, DESIGN.md's table read literally, one level at a time.

    `number` is `Decimal` (exact, from the decimal strings) or `float` (the same IEEE operations
    as the formulas on stored doubles). A value that cannot be computed is None.
    """
    b = [(number(p), number(q)) for p, q in bids]
    a = [(number(p), number(q)) for p, q in asks]
    zero = number(0)

    def ratio(numerator, denominator):
        return None if denominator == 0 else numerator / denominator

    out: dict[str, Any] = {}
    both = bool(b) and bool(a)
    best_bid, best_bid_qty = b[0] if b else (None, None)
    best_ask, best_ask_qty = a[0] if a else (None, None)
    out["best_bid"], out["best_bid_qty"] = best_bid, best_bid_qty
    out["best_ask"], out["best_ask_qty"] = best_ask, best_ask_qty
    mid = (best_bid + best_ask) / 2 if both else None
    out["mid_price"] = mid
    out["spread"] = best_ask - best_bid if both else None
    out["spread_bps"] = ratio(10000 * out["spread"], mid) if both else None
    out["weighted_mid"] = (
        ratio(best_bid * best_ask_qty + best_ask * best_bid_qty, best_bid_qty + best_ask_qty)
        if both
        else None
    )
    for k in DEPTH_LEVELS:
        bid_qty = sum((q for _, q in b[:k]), zero)
        ask_qty = sum((q for _, q in a[:k]), zero)
        out[f"bid_qty_{k}"] = bid_qty
        out[f"ask_qty_{k}"] = ask_qty
        out[f"bias_{k}"] = ratio(bid_qty - ask_qty, bid_qty + ask_qty)
    for x in BAND_BPS:
        if mid is None:
            bid_notional = ask_notional = depth_bias = None
        else:
            lower = mid * (1 - number(x) / 10000)
            upper = mid * (1 + number(x) / 10000)
            bid_notional = sum((p * q for p, q in b if p >= lower), zero)
            ask_notional = sum((p * q for p, q in a if p <= upper), zero)
            depth_bias = ratio(bid_notional - ask_notional, bid_notional + ask_notional)
        out[f"bid_notional_{x}bps"] = bid_notional
        out[f"ask_notional_{x}bps"] = ask_notional
        out[f"depth_bias_{x}bps"] = depth_bias
    out["bid_levels"] = len(b)
    out["ask_levels"] = len(a)
    out["crossed"] = best_bid >= best_ask if both else None
    return out


def band_edge_clearance(bids: Levels, asks: Levels) -> Decimal:
    """Smallest relative distance, in exact decimals, between any level and a band edge.

    A level closer to an edge than float64 can resolve could fall either side of the float
    formula; the reference comparison is only meaningful when this is well above 1e-15.
    """
    b = [Decimal(p) for p, _ in bids]
    a = [Decimal(p) for p, _ in asks]
    if not (b and a):
        return Decimal(1)
    mid = (b[0] + a[0]) / 2
    distances = [Decimal(1)]
    for x in BAND_BPS:
        lower = mid * (1 - Decimal(x) / 10000)
        upper = mid * (1 + Decimal(x) / 10000)
        distances += [abs(p - lower) / lower for p in b] + [abs(p - upper) / upper for p in a]
    return min(distances)


def assert_features_match(
    actual: dict[str, Any], expected: dict[str, Any], rel: float = 1e-9, where: str = ""
) -> None:
    """Each expected field equals the actual one: None means NaN (or <NA> for `crossed`)."""
    for column, want in expected.items():
        got = actual[column]
        context = f"{where}{column}: got {got!r}, want {want!r}"
        if column == "crossed":
            if want is None:
                assert got is pd.NA, context
            else:
                assert got is not pd.NA and bool(got) == want, context
        elif column in ("bid_levels", "ask_levels"):
            assert isinstance(got, (int, np.integer)) and got == want, context
        elif want is None:
            assert isinstance(got, float) and math.isnan(got), context
        else:
            abs_tol = 1e-12 if column in RATIO_COLUMNS else 0.0
            assert math.isclose(got, float(want), rel_tol=rel, abs_tol=abs_tol), context


# --- loading books ---------------------------------------------------------------------------


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def to_book(symbol: str, body: dict[str, Any], depth: int | None = None) -> OrderBook:
    """An OrderBook from a depth body, strings made floats as the exchange client does."""
    return OrderBook(
        symbol=symbol,
        last_update_id=body["lastUpdateId"],
        bids=[[float(p), float(q)] for p, q in body["bids"][:depth]],
        asks=[[float(p), float(q)] for p, q in body["asks"][:depth]],
    )


def snapshot_of(book: OrderBook, minute: datetime) -> OrderBookSnapshot:
    return OrderBookSnapshot(
        symbol=book.symbol,
        minute=minute,
        requested_at=minute + timedelta(seconds=59.98),
        captured_at=minute + timedelta(seconds=60.011),
        depth_limit=100,
        book=book,
    )


# --- the contract ----------------------------------------------------------------------------


def test_feature_columns_spell_every_design_field_once():
    depth = [f"{side}_qty_{k}" for side in ("bid", "ask") for k in (1, 5, 10, 20, 50, 100)]
    biases = [f"bias_{k}" for k in (1, 5, 10, 20, 50, 100)]
    band_names = ("bid_notional", "ask_notional", "depth_bias")
    bands = [f"{name}_{x}bps" for x in (10, 50, 100) for name in band_names]
    assert FEATURE_COLUMNS == [
        "best_bid", "best_ask", "best_bid_qty", "best_ask_qty",
        "mid_price", "spread", "spread_bps", "weighted_mid",
        *depth, *biases, *bands,
        "bid_levels", "ask_levels", "crossed",
    ]  # fmt: skip
    assert DEPTH_LEVELS == (1, 5, 10, 20, 50, 100)
    assert BAND_BPS == (10, 50, 100)


# --- real captured books ---------------------------------------------------------------------


@pytest.mark.parametrize("depth", [None, 100, 3], ids=["full", "limit100", "limit3"])
@pytest.mark.parametrize("symbol", CAPTURED_SYMBOLS)
def test_captured_book_matches_exact_decimal_reference(symbol: str, depth: int | None):
    """Real Binance books, whole (up to 1000 levels), cut to 100 (ACTS_DEPTH_LIMIT) and to 3."""
    body = load_json(DEPTH_CAPTURES_DIR / f"{symbol}.json")
    bids, asks = body["bids"][:depth], body["asks"][:depth]
    assert band_edge_clearance(bids, asks) > Decimal("1e-12"), "a level sits on a band edge"

    actual = features_of_book(to_book(symbol, body, depth))

    assert_features_match(actual, reference_features(bids, asks), where=f"{symbol}/{depth}: ")


def test_captured_books_have_the_uneven_shapes_the_tests_rely_on():
    """Guards the fixtures: sides shorter and longer than 100, and a side cut below every k > 3."""
    nknusdt = features_of_book(to_book("NKNUSDT", load_json(DEPTH_CAPTURES_DIR / "NKNUSDT.json")))
    assert (nknusdt["bid_levels"], nknusdt["ask_levels"]) == (609, 1000)
    body = load_json(DEPTH_CAPTURES_DIR / "RUNEEUR.json")
    runeeur = features_of_book(to_book("RUNEEUR", body))
    assert (runeeur["bid_levels"], runeeur["ask_levels"]) == (221, 468)

    cut = features_of_book(to_book("RUNEEUR", body, depth=3))
    three_bids = sum(float(q) for _, q in body["bids"][:3])
    assert cut["bid_levels"] == 3
    for k in (5, 10, 20, 50, 100):
        assert cut[f"bid_qty_{k}"] == pytest.approx(three_bids, rel=1e-12)


def test_captured_batch_equals_books_one_by_one():
    books = [to_book(s, load_json(DEPTH_CAPTURES_DIR / f"{s}.json")) for s in CAPTURED_SYMBOLS]
    batch = book_features(books)
    for i, book in enumerate(books):
        pd.testing.assert_frame_equal(
            batch.iloc[[i]].reset_index(drop=True), book_features([book]), check_exact=True
        )


# --- made-up edge cases ----------------------------------------------------------------------


@pytest.mark.parametrize("file_name", MADE_UP_BOOKS)
def test_made_up_book_gives_hand_worked_values(file_name: str):
    body = load_json(MADE_UP_BOOKS_DIR / file_name)
    assert body["expected"], "a made-up book must say what it expects"
    actual = features_of_book(to_book("MADEUP", body))
    assert_features_match(actual, body["expected"], where=f"{file_name}: ")


@pytest.mark.parametrize("file_name", MADE_UP_BOOKS)
def test_made_up_book_matches_exact_decimal_reference(file_name: str):
    body = load_json(MADE_UP_BOOKS_DIR / file_name)
    actual = features_of_book(to_book("MADEUP", body))
    expected = reference_features(body["bids"], body["asks"])
    assert_features_match(actual, expected, where=f"{file_name}: ")


def test_depth_sums_stop_at_100_levels_and_levels_count_all():
    bids = [[100.0 - 0.01 * i, 1.0] for i in range(150)]
    asks = [[100.01 + 0.01 * i, 2.0] for i in range(150)]
    features = features_of_book(OrderBook("DEEP", 1, bids, asks))
    assert [features[f"bid_qty_{k}"] for k in DEPTH_LEVELS] == [1.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    assert [features[f"ask_qty_{k}"] for k in DEPTH_LEVELS] == [2.0, 10.0, 20.0, 40.0, 100.0, 200.0]
    assert (features["bid_levels"], features["ask_levels"]) == (150, 150)


def test_zero_mid_gives_null_spread_bps_not_infinity():
    features = features_of_book(OrderBook("ZERO", 1, [[0.0, 1.0]], [[0.0, 1.0]]))
    assert features["spread"] == 0.0
    assert math.isnan(features["spread_bps"])


# --- the batch frame -------------------------------------------------------------------------


def test_compute_features_keeps_snapshot_order_identity_and_dtypes():
    minute = datetime(2026, 11, 26, 13, 54, tzinfo=UTC)
    made_up = load_json(MADE_UP_BOOKS_DIR / "made_up_empty_bids.json")
    books = [
        to_book("RUNEEUR", load_json(DEPTH_CAPTURES_DIR / "RUNEEUR.json"), depth=100),
        to_book("EMPTYBIDS", made_up),
        to_book("NKNUSDT", load_json(DEPTH_CAPTURES_DIR / "NKNUSDT.json"), depth=100),
    ]
    snapshots = [snapshot_of(book, minute + timedelta(minutes=i)) for i, book in enumerate(books)]

    frame = compute_features(snapshots)

    assert list(frame.columns) == ["symbol", "minute", "captured_at", *FEATURE_COLUMNS]
    assert list(frame.index) == [0, 1, 2]
    assert list(frame["symbol"]) == ["RUNEEUR", "EMPTYBIDS", "NKNUSDT"]
    assert list(frame["minute"]) == [s.minute for s in snapshots]
    assert list(frame["captured_at"]) == [s.captured_at for s in snapshots]
    assert str(frame["minute"].dt.tz) == "UTC"
    assert frame["bid_levels"].dtype == np.int64 and frame["ask_levels"].dtype == np.int64
    assert frame["crossed"].dtype == "boolean"
    assert list(frame["crossed"].isna()) == [False, True, False]
    floats = [c for c in FEATURE_COLUMNS if c not in ("bid_levels", "ask_levels", "crossed")]
    assert (frame[floats].dtypes == np.float64).all()
    assert frame.loc[0, "best_bid"] == 6.251 and frame.loc[2, "best_ask"] == 0.3525
    assert math.isnan(frame.loc[1, "mid_price"])


def test_compute_features_of_no_snapshot_is_an_empty_frame_with_the_same_schema():
    frame = compute_features([])
    assert list(frame.columns) == ["symbol", "minute", "captured_at", *FEATURE_COLUMNS]
    assert len(frame) == 0
    assert frame["bid_levels"].dtype == np.int64
    assert frame["crossed"].dtype == "boolean"
    assert frame["mid_price"].dtype == np.float64


def test_batch_larger_than_a_chunk_equals_books_one_by_one():
    """Batches are computed in chunks of books: rows across chunk boundaries are unaffected."""
    distinct = [
        to_book(s, load_json(DEPTH_CAPTURES_DIR / f"{s}.json"), depth=100) for s in CAPTURED_SYMBOLS
    ] + [to_book("MADEUP", load_json(MADE_UP_BOOKS_DIR / name)) for name in MADE_UP_BOOKS]
    n_books = 2 * features_module._CHUNK_BOOKS + 5
    batch = [distinct[i % len(distinct)] for i in range(n_books)]

    alone = pd.concat([book_features([book]) for book in distinct], ignore_index=True)
    expected = alone.iloc[[i % len(distinct) for i in range(n_books)]].reset_index(drop=True)
    pd.testing.assert_frame_equal(book_features(batch), expected, check_exact=True)
