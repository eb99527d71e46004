"""What the UI shows of each cell's data: the numbers come from the stored document, exactly,
and what cannot be computed is left out rather than shown as 0."""

from datetime import UTC, datetime, timedelta

import pytest

from acts_pipeline.storage.ui_metadata import FEATURE_FIELDS, cell_metadata, minute_table

MINUTE = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_snapshot_cell_shows_its_top_of_book_spread_levels_and_lateness():
    document = {"symbol": "NKNUSDT", "minute": MINUTE, "captured_at": MINUTE + timedelta(seconds=60.0123),
                "bids": [[0.3521, 672.0], [0.352, 10.0]], "asks": [[0.3525, 3959.0]]}
    metadata = cell_metadata("order_book_snapshots", document)
    assert metadata == {"best_bid": 0.3521, "best_ask": 0.3525, "mid_price": 0.3523,
                        "spread_bps": pytest.approx(1e4 * 0.0004 / 0.3523, rel=1e-5),
                        "bid_levels": 2, "ask_levels": 1, "seconds_after_close": 0.012}


def test_an_empty_side_shows_no_mid_and_no_spread():
    document = {"symbol": "X", "minute": MINUTE, "captured_at": MINUTE + timedelta(seconds=61), "bids": [],
                "asks": [[1.0, 1.0]]}
    assert cell_metadata("order_book_snapshots", document) == {"best_ask": 1.0, "bid_levels": 0, "ask_levels": 1,
                                                               "seconds_after_close": 1.0}


def test_a_feature_cell_shows_the_chosen_fields_and_leaves_nulls_out():
    document = {"symbol": "X", "minute": MINUTE, **{field: 0.123456789 for field in FEATURE_FIELDS}, "bias_20": None,
                "bias_100": 0.5}
    metadata = cell_metadata("order_book_features", document)
    assert set(metadata) == set(FEATURE_FIELDS) - {"bias_20"}
    assert metadata["bias_5"] == 0.123457


def test_a_kline_cell_shows_its_candle():
    document = {"symbol": "X", "minute": MINUTE, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0,
                "quote_volume": 15.0, "trades": 7}
    assert cell_metadata("klines_1m", document) == {"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0,
                                                    "trades": 7}


def test_the_minute_table_has_a_row_per_symbol():
    rows = [{"symbol": "B", "best_bid": 2.0, "best_ask": 2.1, "bias_5": float("nan")}, {"symbol": "A", "best_bid": 1.0}]
    metadata = minute_table(MINUTE, rows)
    assert metadata["minute"] == "2026-11-30 12:00 UTC" and metadata["symbols"] == 2
    records = metadata["market"].value.records
    empty = dict.fromkeys(("best_bid", "best_ask", "spread_bps", "bias_5", "depth_bias_10bps", "bid_notional_10bps",
                           "ask_notional_10bps"))
    assert [r.data for r in records] == [{**empty, "symbol": "A", "best_bid": 1.0},
                                         {**empty, "symbol": "B", "best_bid": 2.0, "best_ask": 2.1}]
