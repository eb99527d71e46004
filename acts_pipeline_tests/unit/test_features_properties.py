"""Properties of the order-book features on random valid books (hypothesis).

A valid book, as Binance sends it: positive prices on a tick grid, bids strictly falling, asks
strictly rising and above every bid, positive quantities, 0 to 150 levels per side (so both
fewer and more levels than the largest `k`, and empty sides).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from acts_pipeline.core.features import BAND_BPS, DEPTH_LEVELS, FEATURE_COLUMNS, book_features
from acts_pipeline.core.models import OrderBook
from acts_pipeline_tests.unit.test_features import assert_features_match, reference_features

MAX_LEVELS = 150
FLOAT_COLUMNS = [c for c in FEATURE_COLUMNS if c not in ("bid_levels", "ask_levels", "crossed")]

quantities = st.floats(min_value=1e-8, max_value=1e7, allow_nan=False, allow_infinity=False)


@st.composite
def order_books(draw: st.DrawFn) -> OrderBook:
    """A random uncrossed book; prices are integer multiples of a tick, as on the exchange."""
    tick = draw(st.sampled_from([1e-8, 1e-6, 0.01, 1.0]))
    best_bid_ticks = draw(st.integers(min_value=1, max_value=10**7))
    best_ask_ticks = best_bid_ticks + draw(st.integers(min_value=1, max_value=10**4))
    # Level counts are drawn explicitly: a bare list strategy stays near ten elements, and the
    # interesting shapes are beyond k = 100 and near the 100 bps bands.
    n_bids = draw(st.integers(min_value=0, max_value=MAX_LEVELS))
    n_asks = draw(st.integers(min_value=0, max_value=MAX_LEVELS))
    bid_steps = draw(arrays(np.int64, n_bids, elements=st.integers(1, 10**3)))
    ask_steps = draw(arrays(np.int64, n_asks, elements=st.integers(1, 10**3)))
    # The first step places the best level; bids are cut where the price would reach zero.
    bid_ticks = best_bid_ticks + 1 - np.cumsum(bid_steps)
    bid_ticks = bid_ticks[bid_ticks > 0]
    ask_ticks = best_ask_ticks - 1 + np.cumsum(ask_steps)
    bid_qty = draw(arrays(np.float64, len(bid_ticks), elements=quantities))
    ask_qty = draw(arrays(np.float64, len(ask_ticks), elements=quantities))
    return OrderBook(
        symbol="RANDOM",
        last_update_id=1,
        bids=np.column_stack([bid_ticks * tick, bid_qty]) if len(bid_ticks) else [],
        asks=np.column_stack([ask_ticks * tick, ask_qty]) if len(ask_ticks) else [],
    )


def features_of(book: OrderBook) -> dict:
    row = book_features([book]).iloc[0]
    return {column: row[column] for column in FEATURE_COLUMNS}


@settings(max_examples=150, deadline=None)
@given(order_books())
def test_ratios_stay_in_minus_one_to_one_and_nothing_is_infinite(book: OrderBook):
    features = features_of(book)
    assert not any(math.isinf(features[column]) for column in FLOAT_COLUMNS)
    for column in [f"bias_{k}" for k in DEPTH_LEVELS] + [f"depth_bias_{x}bps" for x in BAND_BPS]:
        value = features[column]
        assert math.isnan(value) or -1.0 <= value <= 1.0, (column, value)


@settings(max_examples=150, deadline=None)
@given(order_books())
def test_depth_grows_with_k_and_notional_grows_with_the_band(book: OrderBook):
    features = features_of(book)
    for side in ("bid", "ask"):
        depth = [features[f"{side}_qty_{k}"] for k in DEPTH_LEVELS]
        assert depth == sorted(depth), (side, depth)
        notional = [features[f"{side}_notional_{x}bps"] for x in BAND_BPS]
        if not math.isnan(features["mid_price"]):
            assert notional == sorted(notional), (side, notional)


@settings(max_examples=150, deadline=None)
@given(order_books())
def test_uncrossed_book_has_a_positive_spread_and_is_not_flagged(book: OrderBook):
    features = features_of(book)
    if len(book.bids) and len(book.asks):
        assert features["spread"] > 0 and features["spread_bps"] > 0
        assert features["crossed"] is np.False_
        # Between the tops up to rounding: when one top quantity dwarfs the other, the float
        # formula lands on a top or an ulp beyond it (the formula is kept literal, not clipped).
        slack = 1e-12 * features["best_ask"]
        assert (
            features["best_bid"] - slack <= features["weighted_mid"] <= features["best_ask"] + slack
        )
    else:
        assert math.isnan(features["spread"]) and features["crossed"] is pd.NA


@settings(max_examples=150, deadline=None)
@given(order_books())
def test_every_field_matches_the_float_reference(book: OrderBook):
    """Same IEEE formulas, summed one level at a time: equal up to summation order."""
    expected = reference_features(book.bids.tolist(), book.asks.tolist(), number=float)
    assert_features_match(features_of(book), expected)


@settings(max_examples=80, deadline=None)
@given(st.lists(order_books(), min_size=1, max_size=6).flatmap(
    lambda books: st.tuples(st.just(books), st.permutations(range(len(books))))
))  # fmt: skip
def test_a_batch_equals_each_book_alone_in_any_order(books_and_order):
    books, order = books_and_order
    batch = book_features(books)
    permuted = book_features([books[i] for i in order])

    alone = pd.concat([book_features([book]) for book in books], ignore_index=True)
    pd.testing.assert_frame_equal(batch, alone, check_exact=True)
    pd.testing.assert_frame_equal(
        permuted, alone.iloc[list(order)].reset_index(drop=True), check_exact=True
    )
    assert not np.isinf(batch[FLOAT_COLUMNS].to_numpy()).any()
