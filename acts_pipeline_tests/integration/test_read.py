"""`acts_pipeline.read` against the real embedded database and an archive: a range across days
only in the archive, a day in both and a day only in MongoDB is one frame, sorted, without
duplicates, MongoDB's document winning where both hold a minute; snapshots carry their levels as
(levels, 2) arrays from either source; connection from the environment; unknown symbols refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from acts_pipeline import read
from acts_pipeline.core.errors import ReadRequestError
from acts_pipeline.storage import MongoStore
from acts_pipeline.storage.archive import Archive, delete_archived_day

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

OLD, BOTH, RECENT = date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "OLDUSDT"]
COLLECTIONS = ("order_book_snapshots", "order_book_features", "klines_1m")


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def minutes(day: date) -> list[datetime]:
    return [at(day, h, m) for h in (0, 6, 12, 18, 23) for m in (0, 59)]


def documents(day: date, symbols=SYMBOLS, price: float = 100.0) -> dict[str, list[dict]]:
    cells = [(s, m) for s in symbols for m in minutes(day)]
    return {
        "order_book_snapshots": [
            {"symbol": s, "minute": m, "captured_at": m + timedelta(seconds=60), "requested_at": m + timedelta(seconds=60),
             "last_update_id": 5, "depth_limit": 100, "bids": [[price, 1.0], [price - 1, 2.0]],
             "asks": [[price + 1, 3.0]], "source": "rest"} for s, m in cells],
        "order_book_features": [{"symbol": s, "minute": m, "mid_price": price + 0.5, "bias_5": None} for s, m in cells],
        "klines_1m": [{"symbol": s, "minute": m, "open": price, "close": price, "trades": 3} for s, m in cells],
    }


@pytest.fixture
def sources(mongo_uri, mongo_db_name, tmp_path):
    """OLD: archive only (retention deleted it); BOTH: archived, then MongoDB's prices changed;
    RECENT: MongoDB only. OLDUSDT is no longer in the symbol registry: only the archive knows it."""
    store = MongoStore.connect(mongo_uri, mongo_db_name)
    archive = Archive(str(tmp_path / "archive"))
    for day, symbols in ((OLD, SYMBOLS), (BOTH, SYMBOLS), (RECENT, SYMBOLS[:2])):
        for name, docs in documents(day, symbols).items():
            store.upsert(name, docs)
    store.record_tracked(SYMBOLS[:2], at(OLD, 0))
    for day in (OLD, BOTH):
        archive.archive_day(store, day)
    for name in COLLECTIONS:
        assert delete_archived_day(store, archive, name, OLD).deleted == 30
        store.upsert(name, documents(BOTH, SYMBOLS[:1], price=200.0)[name])  # written after the archive
    return {"mongo_uri": mongo_uri, "database": mongo_db_name, "archive_dir": archive.root}


def test_a_range_across_the_archive_and_mongodb_is_one_sorted_frame_without_duplicates(sources):
    frame = read.snapshots(["BTCUSDT", "ETHUSDT"], at(OLD, 12), at(RECENT, 23, 59), **sources)
    expected = sorted((s, m) for s in ("BTCUSDT", "ETHUSDT") for d in (OLD, BOTH, RECENT) for m in minutes(d)
                      if at(OLD, 12) <= m < at(RECENT, 23, 59))
    assert list(zip(frame["symbol"], frame["minute"].dt.to_pydatetime(), strict=True)) == expected
    assert str(frame["minute"].dtype) == "datetime64[ms, UTC]"
    bids = frame["bids"].iloc[0]
    assert isinstance(bids, np.ndarray) and bids.shape == (2, 2) and bids[0].tolist() == [100.0, 1.0]
    assert all(a.shape == (1, 2) for a in frame["asks"])
    # BOTH: MongoDB's newer BTCUSDT books win over the archived ones; ETHUSDT's come from either
    both = frame[frame["minute"].dt.date == BOTH]
    assert {b[0, 0] for b in both.loc[both["symbol"] == "BTCUSDT", "bids"]} == {200.0}
    assert {b[0, 0] for b in both.loc[both["symbol"] == "ETHUSDT", "bids"]} == {100.0}


def test_features_and_klines_read_the_same_way(sources):
    features = read.features("btcusdt", OLD, RECENT + timedelta(days=1), **sources)
    assert len(features) == 30 and features["minute"].is_monotonic_increasing
    assert features.set_index("minute")["mid_price"].loc[pd.Timestamp(at(BOTH, 6))] == 200.5
    assert features["bias_5"].isna().all()
    klines = read.klines(["OLDUSDT", "ETHUSDT"], "2026-11-18T23:00Z", "2026-11-19T00:30+00:00", **sources)
    assert list(zip(klines["symbol"], klines["minute"], strict=True)) == [
        ("ETHUSDT", pd.Timestamp(at(OLD, 23, 0))), ("ETHUSDT", pd.Timestamp(at(OLD, 23, 59))),
        ("ETHUSDT", pd.Timestamp(at(BOTH, 0, 0))),
        ("OLDUSDT", pd.Timestamp(at(OLD, 23, 0))), ("OLDUSDT", pd.Timestamp(at(OLD, 23, 59))),
        ("OLDUSDT", pd.Timestamp(at(BOTH, 0, 0)))]


def test_an_empty_range_is_an_empty_frame_with_the_key_columns(sources):
    frame = read.klines("BTCUSDT", at(RECENT, 1), at(RECENT, 1), **sources)
    assert frame.empty and {"symbol", "minute"} <= set(frame.columns)


def test_the_connection_comes_from_the_environment(sources, monkeypatch):
    monkeypatch.setenv("ACTS_MONGO_URI", sources["mongo_uri"])
    monkeypatch.setenv("ACTS_MONGO_DB", sources["database"])
    monkeypatch.setenv("ACTS_ARCHIVE_DIR", sources["archive_dir"])
    assert len(read.klines("BTCUSDT", OLD, RECENT)) == 20
    # the archive alone, without MongoDB: what the archive holds
    assert len(read.klines("BTCUSDT", OLD, RECENT, mongo_uri="")) == 20


def test_unknown_symbols_and_bad_ranges_are_refused_naming_the_problem(sources):
    with pytest.raises(ReadRequestError, match="unknown symbols NOPEUSDT: not in the symbol registry and never "
                                               "archived under"):
        read.features(["BTCUSDT", "NOPEUSDT"], OLD, RECENT, **sources)
    with pytest.raises(ValueError, match="start 2026-11-20T00:00:00\\+00:00 is after end 2026-11-18T00:00:00\\+00:00"):
        read.features("BTCUSDT", RECENT, OLD, **sources)
    with pytest.raises(ReadRequestError, match="has no timezone"):
        read.snapshots("BTCUSDT", datetime(2026, 11, 18), RECENT, **sources)


def test_an_archived_day_mongodb_has_not_written_since_is_read_from_the_archive_alone(sources):
    """RECENT archived: MongoDB's copy of the day is not read. Changed behind the product's back
    (a raw update the count of writes does not see), the frame still shows the archived values,
    which proves it; once the product writes the day again, MongoDB is read and wins."""
    store = MongoStore.connect(sources["mongo_uri"], sources["database"])
    archive = Archive(sources["archive_dir"])
    archive.archive_day(store, RECENT)
    window = {"minute": {"$gte": at(RECENT, 0), "$lt": at(RECENT + timedelta(days=1), 0)}}
    store.database["order_book_features"].update_many(window, {"$set": {"mid_price": -1.0}})
    frame = read.features(["BTCUSDT", "ETHUSDT"], RECENT, RECENT + timedelta(days=1), **sources)
    assert len(frame) == 20 and set(frame["mid_price"]) == {100.5}
    # Days around it are still read as before: BOTH (written after its archive) from MongoDB.
    frame = read.features("BTCUSDT", BOTH, RECENT + timedelta(days=1), **sources)
    assert set(frame.loc[frame["minute"].dt.date == BOTH, "mid_price"]) == {200.5}
    assert set(frame.loc[frame["minute"].dt.date == RECENT, "mid_price"]) == {100.5}

    store.upsert("order_book_features", [{"symbol": "BTCUSDT", "minute": at(RECENT, 6), "mid_price": 300.5}])
    frame = read.features("BTCUSDT", RECENT, RECENT + timedelta(days=1), **sources)
    by_minute = frame.set_index("minute")["mid_price"]
    assert by_minute.loc[pd.Timestamp(at(RECENT, 6))] == 300.5
    assert set(by_minute.drop(pd.Timestamp(at(RECENT, 6)))) == {-1.0}  # MongoDB's documents, read again
