"""The count of writes per cell collection and UTC day (`storage.written_days`) against the real
embedded server: every way the product writes cells moves it, before and after the write (a
failed write included); other collections are not counted; the archive records it and a day
stays current exactly until MongoDB's day is written again, also by a write that lands while the
archive is reading the day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from acts_pipeline.core.cells import Cell
from acts_pipeline.storage import DurableWriter, MongoStore, Spool, StorageError
from acts_pipeline.storage.archive import Archive
from acts_pipeline.storage.collections import WRITTEN_DAYS
from acts_pipeline.storage.durable import flush_spool
from acts_pipeline.storage.history_io import insert_new

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

FEATURES = "order_book_features"
DAY, NEXT = date(2026, 11, 20), date(2026, 11, 21)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def cell(symbol: str, minute: datetime, mid: float = 1.0) -> dict:
    return {"symbol": symbol, "minute": minute, "captured_at": minute + timedelta(seconds=60), "mid_price": mid}


@pytest.fixture
def store(mongo_uri, mongo_db_name):
    return MongoStore.connect(mongo_uri, mongo_db_name)


def versions(store: MongoStore) -> dict[date, int]:
    return store.written_versions(FEATURES, [DAY, NEXT])


def test_every_write_path_moves_the_days_it_touches_twice(store, tmp_path):
    assert versions(store) == {DAY: 0, NEXT: 0}
    store.upsert(FEATURES, [cell("BTCUSDT", at(DAY, 1)), cell("BTCUSDT", at(DAY, 2))])
    assert versions(store) == {DAY: 2, NEXT: 0}
    # A write across midnight moves both days; one that replaces stored cells moves them too.
    store.insert_or_replace(FEATURES, [cell("BTCUSDT", at(DAY, 2), 5.0), cell("BTCUSDT", at(NEXT, 0))])
    assert versions(store) == {DAY: 4, NEXT: 2}
    assert insert_new(store, FEATURES, [cell("BTCUSDT", at(DAY, 2), 9.0), cell("ETHUSDT", at(DAY, 2))]) == [
        ("ETHUSDT", at(DAY, 2))]
    assert versions(store) == {DAY: 6, NEXT: 2}
    assert store.delete_cells(FEATURES, [Cell(at(NEXT, 0), "BTCUSDT")]) == 1
    assert versions(store) == {DAY: 6, NEXT: 4}
    writer = DurableWriter(store, Spool(tmp_path / "spool"), patience=1, retry_interval=0.1)
    writer.write(FEATURES, [cell("SOLUSDT", at(DAY, 3))])
    assert versions(store) == {DAY: 8, NEXT: 4}
    spool = Spool(tmp_path / "replayed")
    spool.put(FEATURES, [cell("SOLUSDT", at(NEXT, 3))])
    assert flush_spool(store, spool) == 1
    assert versions(store) == {DAY: 8, NEXT: 6}
    # Collections outside the archive are not counted.
    store.upsert("symbol_registry", [{"symbol": "BTCUSDT", "tracked_since": at(DAY, 0)}])
    assert {d["_id"] for d in store.database[WRITTEN_DAYS].find()} == {
        f"{FEATURES}|2026-11-20", f"{FEATURES}|2026-11-21"}


def test_a_failed_write_has_already_moved_the_count(store, monkeypatch):
    collection = store.collection(FEATURES)

    def refused(*args, **kwargs):
        raise StorageError("writing order_book_features failed: the server went away")

    monkeypatch.setattr(store, "_upsert", refused)
    with pytest.raises(StorageError, match="server went away"):
        store.upsert(FEATURES, [cell("BTCUSDT", at(DAY, 1))])
    assert versions(store)[DAY] == 2  # before, and after the failure (the server still answers the count)
    assert collection.count_documents({}) == 0


def test_an_archived_day_is_current_until_mongodb_writes_it_again(store, tmp_path):
    archive = Archive(str(tmp_path / "archive"))
    store.upsert(FEATURES, [cell(s, at(DAY, h)) for s in ("BTCUSDT", "ETHUSDT") for h in range(3)])
    entry = archive.archive_day(store, DAY, collections=[FEATURES]).files[FEATURES]
    assert entry.mongo_version == 2 and entry.rows == 6
    assert archive.current_days(store, FEATURES, [DAY, NEXT]) == {DAY}
    store.upsert(FEATURES, [cell("BTCUSDT", at(DAY, 1), 2.0)])  # same key, new value
    assert archive.current_days(store, FEATURES, [DAY]) == set()
    archive.archive_day(store, DAY, collections=[FEATURES])
    assert archive.current_days(store, FEATURES, [DAY]) == {DAY}
    # A day the archive saw empty is current too (MongoDB held none of it), until written.
    assert archive.archive_day(store, NEXT, collections=[FEATURES]).files[FEATURES].status == "empty"
    assert archive.current_days(store, FEATURES, [NEXT]) == {NEXT}
    store.upsert(FEATURES, [cell("BTCUSDT", at(NEXT, 0))])
    assert archive.current_days(store, FEATURES, [NEXT]) == set()


def test_a_write_landing_while_the_archive_reads_the_day_leaves_it_not_current(store, tmp_path, monkeypatch):
    """The archive reads the count, then the documents; a write between the two (here: right after
    the count was read) must not leave the file trusted, whether or not the file caught it."""
    archive = Archive(str(tmp_path / "archive"))
    store.upsert(FEATURES, [cell("BTCUSDT", at(DAY, h)) for h in range(3)])
    real = store.written_versions
    calls = []

    def then_a_write(name, days):
        found = real(name, days)
        if not calls:
            calls.append(name)
            store.upsert(FEATURES, [cell("BTCUSDT", at(DAY, 1), 3.0)])
        return found

    monkeypatch.setattr(store, "written_versions", then_a_write)
    archive.archive_day(store, DAY, collections=[FEATURES])
    monkeypatch.setattr(store, "written_versions", real)
    assert calls == [FEATURES]
    assert archive.current_days(store, FEATURES, [DAY]) == set()


def test_a_write_under_way_when_the_archive_starts_leaves_it_not_current(store, tmp_path, monkeypatch):
    """The other order: a write counted before the archive read the count, whose documents land
    after the archive read the day. Its second count is what tells the file missed it."""
    archive = Archive(str(tmp_path / "archive"))
    store.upsert(FEATURES, [cell("BTCUSDT", at(DAY, h)) for h in range(3)])
    real_upsert = store._upsert
    archived = []

    def archive_then_land(name, documents):
        archived.append(archive.archive_day(store, DAY, collections=[FEATURES]).files[FEATURES])
        return real_upsert(name, documents)

    monkeypatch.setattr(store, "_upsert", archive_then_land)
    store.upsert(FEATURES, [cell("BTCUSDT", at(DAY, 1), 4.0)])
    monkeypatch.setattr(store, "_upsert", real_upsert)
    assert archived[0].mongo_version == 3  # the write's first count, read by the archive
    assert archive.current_days(store, FEATURES, [DAY]) == set()
