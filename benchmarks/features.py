"""Benchmark: vectorised order-book features against the row-by-row pandas baseline.

    python benchmarks/features.py [--books N] [--baseline-books M] [--seed S]

Builds N synthetic books from the shapes of the four real Binance captures
(`acts_simulator/data/binance/depth/`): each book is one capture cut to its best 100
levels per side (as `ACTS_DEPTH_LIMIT=100` returns them), with its prices rescaled by a random
factor (order kept) and every quantity jittered, from a numpy RNG with a fixed seed. Then, in the
same run, it times:

(a) `acts_pipeline.core.features.compute_features` on the whole batch of snapshots (best of 3), and
    on a 500-book batch, the size of one minute's run for 500 symbols;
(b) the obvious alternative a data scientist would write: a DataFrame with one row per book
    whose `bids`/`asks` columns hold `[price, qty]` lists (the shape they have in MongoDB), and
    `DataFrame.apply(row_fn, axis=1)` with `row_fn` computing the same fields for one book with
    numpy. If the baseline would take too long it runs on the first M books only (said in the
    output), and the comparison is of per-book rates.

Both results are checked equal (allclose, NaN == NaN) on the books both computed. Peak memory of
each is measured with `tracemalloc` in a separate, untimed pass (tracemalloc slows allocations).
Input preparation (building snapshots, or the list-holding DataFrame) is not timed for either;
the garbage collector is paused during the timings, as `timeit` does.

Dagster backfill timing (materialising `order_book_features` over a backfill range through the
pipeline and the I/O manager) is measured by the lead separately; it is not part of this script.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acts_pipeline.core.features import BAND_BPS, DEPTH_LEVELS, FEATURE_COLUMNS, compute_features
from acts_pipeline.core.models import OrderBook, OrderBookSnapshot

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEPTH_CAPTURES_DIR = PROJECT_DIR / "acts_simulator" / "data" / "binance" / "depth"
CAPTURED_SYMBOLS = ("NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR")
DEPTH_LIMIT = 100
MINUTE_BATCH = 500
TARGET_SPEED_UP = 20.0
# The baseline runs at a few thousand books per second: past this many books it would dominate
# the run, so it is timed on a prefix and compared by per-book rate.
DEFAULT_BASELINE_BOOKS = 20_000


# --- input -----------------------------------------------------------------------------------


def load_captured_shapes() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The real captures as (symbol, bids, asks) float arrays, cut to DEPTH_LIMIT levels."""
    shapes = []
    for symbol in CAPTURED_SYMBOLS:
        body = json.loads((DEPTH_CAPTURES_DIR / f"{symbol}.json").read_text())
        bids = np.array(body["bids"][:DEPTH_LIMIT], dtype=np.float64)
        asks = np.array(body["asks"][:DEPTH_LIMIT], dtype=np.float64)
        shapes.append((symbol, bids, asks))
    return shapes


def synthetic_snapshots(n_books: int, seed: int) -> list[OrderBookSnapshot]:
    """N snapshots cycling through the real shapes, prices rescaled and quantities jittered."""
    rng = np.random.default_rng(seed)
    shapes = load_captured_shapes()
    start = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    price_scales = rng.lognormal(mean=0.0, sigma=1.0, size=n_books)
    snapshots = []
    for i in range(n_books):
        symbol, bids, asks = shapes[i % len(shapes)]
        book = OrderBook(
            symbol=f"{symbol}{i // len(shapes)}",
            last_update_id=i,
            bids=_rescaled(bids, price_scales[i], rng),
            asks=_rescaled(asks, price_scales[i], rng),
        )
        minute = start + timedelta(minutes=i // len(shapes))
        snapshots.append(
            OrderBookSnapshot(
                symbol=book.symbol,
                minute=minute,
                requested_at=minute + timedelta(seconds=59.98),
                captured_at=minute + timedelta(seconds=60.01),
                depth_limit=DEPTH_LIMIT,
                book=book,
            )
        )
    return snapshots


def _rescaled(levels: np.ndarray, price_scale: float, rng: np.random.Generator) -> np.ndarray:
    """Prices times one factor (order kept), each quantity times its own lognormal jitter."""
    jitter = rng.lognormal(mean=0.0, sigma=0.5, size=len(levels))
    return np.column_stack([levels[:, 0] * price_scale, levels[:, 1] * jitter])


def baseline_frame(snapshots: list[OrderBookSnapshot]) -> pd.DataFrame:
    """One row per book, sides as lists of [price, qty] lists (as read back from MongoDB)."""
    return pd.DataFrame(
        {
            "symbol": [s.symbol for s in snapshots],
            "minute": [s.minute for s in snapshots],
            "captured_at": [s.captured_at for s in snapshots],
            "bids": [s.bids.tolist() for s in snapshots],
            "asks": [s.asks.tolist() for s in snapshots],
        }
    )


# --- the row-by-row baseline -----------------------------------------------------------------


def features_row_by_row(row: pd.Series) -> dict[str, Any]:
    """The DESIGN.md features of one book, the straightforward way: numpy on one row at a time."""
    bids = np.asarray(row["bids"], dtype=np.float64).reshape(-1, 2)
    asks = np.asarray(row["asks"], dtype=np.float64).reshape(-1, 2)
    both = len(bids) > 0 and len(asks) > 0
    nan = float("nan")

    def ratio(numerator: float, denominator: float) -> float:
        return numerator / denominator if denominator != 0 else nan

    best_bid, best_bid_qty = bids[0] if len(bids) else (nan, nan)
    best_ask, best_ask_qty = asks[0] if len(asks) else (nan, nan)
    mid = (best_bid + best_ask) / 2
    spread = best_ask - best_bid
    out: dict[str, Any] = {
        "best_bid": best_bid,
        "best_ask": best_ask,
        "best_bid_qty": best_bid_qty,
        "best_ask_qty": best_ask_qty,
        "mid_price": mid,
        "spread": spread,
        "spread_bps": ratio(1e4 * spread, mid),
        "weighted_mid": ratio(
            best_bid * best_ask_qty + best_ask * best_bid_qty, best_bid_qty + best_ask_qty
        ),
    }
    for k in DEPTH_LEVELS:
        out[f"bid_qty_{k}"] = bids[:k, 1].sum()
        out[f"ask_qty_{k}"] = asks[:k, 1].sum()
    for k in DEPTH_LEVELS:
        b, a = out[f"bid_qty_{k}"], out[f"ask_qty_{k}"]
        out[f"bias_{k}"] = ratio(b - a, b + a)
    for x in BAND_BPS:
        if both:
            in_bid_band = bids[:, 0] >= mid * (1 - x / 1e4)
            in_ask_band = asks[:, 0] <= mid * (1 + x / 1e4)
            b = (bids[in_bid_band, 0] * bids[in_bid_band, 1]).sum()
            a = (asks[in_ask_band, 0] * asks[in_ask_band, 1]).sum()
            out[f"bid_notional_{x}bps"], out[f"ask_notional_{x}bps"] = b, a
            out[f"depth_bias_{x}bps"] = ratio(b - a, b + a)
        else:
            out[f"bid_notional_{x}bps"] = out[f"ask_notional_{x}bps"] = nan
            out[f"depth_bias_{x}bps"] = nan
    out["bid_levels"] = len(bids)
    out["ask_levels"] = len(asks)
    out["crossed"] = bool(best_bid >= best_ask) if both else pd.NA
    return out


def baseline_features(frame: pd.DataFrame) -> pd.DataFrame:
    features = frame.apply(features_row_by_row, axis=1, result_type="expand")
    return pd.concat([frame[["symbol", "minute", "captured_at"]], features], axis=1)


# --- measuring -------------------------------------------------------------------------------


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall-clock seconds over `repeats` calls, and the last result.

    The cyclic garbage collector is paused while timing, as `timeit` does: the baseline's input
    alone holds millions of Python lists, and a collection landing inside one method's timing
    but not the other's would measure the heap, not the method.
    """
    seconds = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            result = function()
            seconds.append(time.perf_counter() - started)
        finally:
            gc.enable()
    return min(seconds), result


def peak_mib(function: Callable[[], Any]) -> float:
    """Peak memory (MiB) allocated while `function` runs, as tracemalloc sees it."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def assert_same_features(vectorised: pd.DataFrame, baseline: pd.DataFrame) -> None:
    assert list(vectorised["symbol"]) == list(baseline["symbol"])
    for column in FEATURE_COLUMNS:
        if column == "crossed":
            assert vectorised[column].astype(object).fillna("NA").tolist() == (
                baseline[column].astype(object).fillna("NA").tolist()
            ), column
        else:
            np.testing.assert_allclose(
                vectorised[column].to_numpy(np.float64),
                baseline[column].to_numpy(np.float64),
                rtol=1e-9,
                atol=1e-12,
                equal_nan=True,
                err_msg=column,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--books", type=int, default=20_000, help="books in the batch (default %(default)s)"
    )
    parser.add_argument(
        "--baseline-books",
        type=int,
        default=DEFAULT_BASELINE_BOOKS,
        help="books the row-by-row baseline runs on, at most --books (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=20261126, help="numpy RNG seed")
    args = parser.parse_args(argv)
    n_books = args.books
    n_baseline = min(args.baseline_books, n_books)

    snapshots = synthetic_snapshots(n_books, args.seed)
    levels = sum(len(s.bids) + len(s.asks) for s in snapshots)
    minute_batch = snapshots[:MINUTE_BATCH]
    baseline_input = baseline_frame(snapshots[:n_baseline])

    vectorised_s, vectorised = timed(lambda: compute_features(snapshots), repeats=3)
    minute_s, _ = timed(lambda: compute_features(minute_batch), repeats=5)
    baseline_s, baseline = timed(lambda: baseline_features(baseline_input), repeats=1)
    assert_same_features(vectorised.iloc[:n_baseline].reset_index(drop=True), baseline)

    vectorised_mib = peak_mib(lambda: compute_features(snapshots))
    minute_mib = peak_mib(lambda: compute_features(minute_batch))
    baseline_mib = peak_mib(lambda: baseline_features(baseline_input))

    minute_name = f"compute_features, {len(minute_batch)}-book minute"
    rows = [
        ("compute_features (vectorised)", n_books, vectorised_s, vectorised_mib),
        (minute_name, len(minute_batch), minute_s, minute_mib),
        ("DataFrame.apply row by row", n_baseline, baseline_s, baseline_mib),
    ]
    speed_up = (n_books / vectorised_s) / (n_baseline / baseline_s)

    print(
        f"{n_books:,} books from the {len(CAPTURED_SYMBOLS)} real capture shapes, "
        f"{DEPTH_LIMIT} levels per side ({levels:,} levels), seed {args.seed}; "
        f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}"
    )
    if n_baseline < n_books:
        print(f"baseline timed on the first {n_baseline:,} books only; compared by books/s")
    print()
    print(f"{'method':<36} {'books':>8} {'seconds':>9} {'books/s':>11} {'peak MiB':>9}")
    for name, books, seconds, mib in rows:
        print(f"{name:<36} {books:>8,} {seconds:>9.3f} {books / seconds:>11,.0f} {mib:>9.1f}")
    print()
    print(
        f"speed-up (books/s, vectorised / row by row): {speed_up:,.1f}x "
        f"(target >= {TARGET_SPEED_UP:.0f}x: {'met' if speed_up >= TARGET_SPEED_UP else 'NOT met'})"
    )
    print(f"results equal on the {n_baseline:,} books both computed (rtol 1e-9, NaN == NaN)")
    return 0 if speed_up >= TARGET_SPEED_UP else 1


if __name__ == "__main__":
    sys.exit(main())
