"""The I/O manager's type handlers: documents MongoDB can store, and the values rebuilt from them.

The books here are made up (small hand-written levels); the real captures are covered by the
parsing tests.
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from acts_pipeline.storage.handlers import (
    DataFrameHandler,
    SnapshotHandler,
    as_utc,
    bson_value,
    handler_for,
)
from acts_pipeline.core.models import OrderBook, OrderBookSnapshot

MINUTE = datetime(2026, 11, 26, 13, 54, tzinfo=UTC)


def made_up_snapshot(symbol: str = "MADEUPUSDT", *, bids=None, asks=None) -> OrderBookSnapshot:
    book = OrderBook(
        symbol=symbol,
        last_update_id=499869752,
        bids=[[10.0, 1.5], [9.9, 2.0]] if bids is None else bids,
        asks=[[10.1, 1.0], [10.2, 3.25]] if asks is None else asks,
    )
    return OrderBookSnapshot(
        symbol=symbol,
        minute=MINUTE,
        requested_at=MINUTE + timedelta(seconds=60.004),
        captured_at=MINUTE + timedelta(seconds=60.012),
        depth_limit=100,
        book=book,
    )


# ---- snapshots -------------------------------------------------------------------------------


def test_snapshot_documents_have_the_documented_fields():
    (doc,) = SnapshotHandler().to_documents([made_up_snapshot()])
    assert doc == {
        "symbol": "MADEUPUSDT",
        "minute": MINUTE,
        "captured_at": MINUTE + timedelta(seconds=60.012),
        "requested_at": MINUTE + timedelta(seconds=60.004),
        "last_update_id": 499869752,
        "depth_limit": 100,
        "bids": [[10.0, 1.5], [9.9, 2.0]],
        "asks": [[10.1, 1.0], [10.2, 3.25]],
        "source": "rest",
    }
    # Plain BSON-ready values: lists of Python floats, tz-aware UTC datetimes, Python ints.
    assert all(type(x) is float for level in doc["bids"] + doc["asks"] for x in level)
    assert all(doc[k].tzinfo == UTC for k in ("minute", "captured_at", "requested_at"))
    assert type(doc["last_update_id"]) is int and type(doc["depth_limit"]) is int


def test_a_stream_snapshot_document_has_its_source_and_event_time():
    snapshot = dataclasses.replace(made_up_snapshot(), source="stream",
                                   event_time=MINUTE + timedelta(seconds=59.941))
    (doc,) = SnapshotHandler().to_documents([snapshot])
    assert (doc["source"], doc["event_time"]) == ("stream", MINUTE + timedelta(seconds=59.941))
    (back,) = SnapshotHandler().from_documents([doc])
    assert (back.source, back.event_time) == ("stream", MINUTE + timedelta(seconds=59.941))


def test_a_snapshot_stored_before_the_recorder_reads_as_a_rest_book():
    (doc,) = SnapshotHandler().to_documents([made_up_snapshot()])
    del doc["source"]
    (back,) = SnapshotHandler().from_documents([doc])
    assert (back.source, back.event_time) == ("rest", None)


def assert_same_snapshot(a: OrderBookSnapshot, b: OrderBookSnapshot) -> None:
    assert (a.symbol, a.minute, a.requested_at, a.captured_at, a.depth_limit, a.last_update_id, a.source,
            a.event_time) == (b.symbol, b.minute, b.requested_at, b.captured_at, b.depth_limit, b.last_update_id,
                              b.source, b.event_time)
    assert np.array_equal(a.bids, b.bids) and np.array_equal(a.asks, b.asks)
    assert a.bids.shape == b.bids.shape and a.asks.shape == b.asks.shape


def test_snapshot_round_trip():
    snapshots = [made_up_snapshot("AAAUSDT"), made_up_snapshot("BBBUSDT", bids=[]),
                 made_up_snapshot("CCCUSDT", asks=[])]
    handler = SnapshotHandler()
    back = handler.from_documents(handler.to_documents(snapshots))
    assert len(back) == 3
    for original, rebuilt in zip(snapshots, back, strict=True):
        assert_same_snapshot(original, rebuilt)
        assert rebuilt.bids.dtype == np.float64
        assert rebuilt.minute.tzinfo == UTC
    assert back[1].bids.shape == (0, 2) and back[2].asks.shape == (0, 2)


def test_snapshot_from_mongo_naive_datetimes_are_utc():
    """MongoDB hands back naive datetimes (UTC by convention) and adds `_id`."""
    (doc,) = SnapshotHandler().to_documents([made_up_snapshot()])
    stored = {**doc, "_id": "ignored"}
    for key in ("minute", "captured_at", "requested_at"):
        stored[key] = doc[key].replace(tzinfo=None)
    (rebuilt,) = SnapshotHandler().from_documents([stored])
    assert_same_snapshot(rebuilt, made_up_snapshot())
    assert rebuilt.captured_at.tzinfo == UTC


def test_snapshot_in_another_timezone_is_stored_in_utc():
    snapshot = made_up_snapshot()
    tokyo = timezone(timedelta(hours=9))
    shifted = OrderBookSnapshot(
        symbol=snapshot.symbol, minute=snapshot.minute.astimezone(tokyo),
        requested_at=snapshot.requested_at.astimezone(tokyo),
        captured_at=snapshot.captured_at.astimezone(tokyo), depth_limit=100, book=snapshot.book)
    (doc,) = SnapshotHandler().to_documents([shifted])
    assert doc["minute"] == MINUTE and doc["minute"].utcoffset() == timedelta(0)
    assert doc["captured_at"].tzinfo == UTC


# ---- data frames -----------------------------------------------------------------------------


def made_up_features() -> pd.DataFrame:
    return pd.DataFrame({
        "symbol": ["AAAUSDT", "BBBUSDT"],
        "minute": pd.to_datetime([MINUTE, MINUTE], utc=True),
        "captured_at": pd.Series([pd.Timestamp(MINUTE) + pd.Timedelta(seconds=60.01), pd.NaT]),
        "mid_price": [10.05, np.nan],
        "bias_5": pd.array([0.25, pd.NA], dtype="Float64"),
        "bid_levels": np.array([2, 0], dtype=np.int64),
        "ask_qty_1": pd.array([3, pd.NA], dtype="Int64"),
        "crossed": pd.array([False, pd.NA], dtype="boolean"),
        "flag": np.array([True, False]),
        "mixed": pd.Series([np.int32(7), np.float32("nan")], dtype=object),
    })


def test_dataframe_documents_map_missing_values_to_none_and_numpy_to_python():
    frame = made_up_features()
    first, second = DataFrameHandler().to_documents(frame)
    assert list(first) == list(second) == list(frame.columns)  # column names kept, in order
    assert first == {
        "symbol": "AAAUSDT", "minute": MINUTE, "captured_at": MINUTE + timedelta(seconds=60.01),
        "mid_price": 10.05, "bias_5": 0.25, "bid_levels": 2, "ask_qty_1": 3, "crossed": False,
        "flag": True, "mixed": 7,
    }
    # NaN, pd.NA and NaT all become None: never NaN, never 0.
    assert second == {
        "symbol": "BBBUSDT", "minute": MINUTE, "captured_at": None, "mid_price": None, "bias_5": None,
        "bid_levels": 0, "ask_qty_1": None, "crossed": None, "flag": False, "mixed": None,
    }
    # Exact Python types: what BSON encodes (a numpy scalar would not).
    assert [type(first[k]) for k in ("mid_price", "bid_levels", "ask_qty_1", "crossed", "flag", "mixed")] == [
        float, int, int, bool, bool, int]
    assert first["minute"].tzinfo == UTC


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), (pd.NA, None), (pd.NaT, None), (float("nan"), None), (np.float32("nan"), None),
    (np.float64(1.5), 1.5), (np.int8(-3), -3), (np.uint64(2**40), 2**40), (np.bool_(True), True),
    (True, True), ("BTCUSDT", "BTCUSDT"),
    (pd.Timestamp("2026-11-26 13:54"), MINUTE),
    (pd.Timestamp("2026-11-26 14:54", tz="Europe/Paris"), MINUTE),
])
def test_bson_value(value, expected):
    result = bson_value(value)
    assert result == expected and type(result) is type(expected)


def test_bool_is_not_turned_into_int():
    assert bson_value(np.bool_(False)) is False
    assert bson_value(False) is False


def test_as_utc():
    assert as_utc(datetime(2026, 11, 26, 13, 54)) == MINUTE
    assert as_utc(pd.Timestamp(MINUTE)).tzinfo == UTC
    assert type(as_utc(pd.Timestamp(MINUTE))) is datetime


def test_dataframe_round_trip():
    frame = made_up_features()
    handler = DataFrameHandler()
    documents = [{**d, "_id": i} for i, d in enumerate(handler.to_documents(frame))]
    back = handler.from_documents(documents)
    assert "_id" not in back.columns
    assert list(back.columns) == list(frame.columns)
    assert back["minute"].tolist() == frame["minute"].tolist()
    assert str(back["minute"].dt.tz) == "UTC" and str(back["captured_at"].dt.tz) == "UTC"
    assert back["captured_at"].isna().tolist() == [False, True]
    assert back["mid_price"].iloc[0] == 10.05 and pd.isna(back["mid_price"].iloc[1])
    assert back["bid_levels"].tolist() == [2, 0]


def test_dataframe_without_the_key_columns_is_refused():
    with pytest.raises(ValueError, match=r"missing \['minute'\]"):
        DataFrameHandler().to_documents(pd.DataFrame({"symbol": ["BTCUSDT"], "mid_price": [1.0]}))


# ---- choosing a handler ----------------------------------------------------------------------


def test_handler_for_the_stored_types():
    assert isinstance(handler_for(pd.DataFrame), DataFrameHandler)
    assert isinstance(handler_for(list[OrderBookSnapshot]), SnapshotHandler)
    # Dagster hands an annotated output's type as typing.List[...]
    assert isinstance(handler_for(typing.List[OrderBookSnapshot]), SnapshotHandler)  # noqa: UP006


class NotASnapshot:
    """An unrelated item type (a subclass of `object`)."""


# A bare list, or a list of anything else, is not taken for snapshots: its items are unknown.
@pytest.mark.parametrize("unsupported", [dict, dict[str, int], pd.Series, np.ndarray, int, "DataFrame", None,
                                         list, list[int], list[dict], typing.List[NotASnapshot],  # noqa: UP006
                                         list[OrderBookSnapshot | None], tuple[OrderBookSnapshot]])
def test_handler_for_an_unsupported_type_says_what_is_stored(unsupported):
    with pytest.raises(TypeError) as raised:
        handler_for(unsupported)
    message = str(raised.value)
    assert repr(unsupported) in message
    assert "pandas.DataFrame" in message and "list[OrderBookSnapshot]" in message


def test_a_snapshot_list_holding_something_else_is_refused():
    with pytest.raises(TypeError, match="holds dict items"):
        SnapshotHandler().to_documents([made_up_snapshot(), {"symbol": "BTCUSDT"}])
