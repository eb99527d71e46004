"""`SeenCells` against the real embedded server: a window read through it is exactly the window as
stored (read directly with `MongoStore.stored_minutes`), while it reads each minute once."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from acts_pipeline.core.cells import Cell
from acts_pipeline.storage.archive import Archive, apply_retention
from acts_pipeline.storage.client import FEW_SYMBOLS, MongoStore
from acts_pipeline.storage.collections import CELLS_SEEN, ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS
from acts_pipeline.storage.seen_cells import KEEP, SeenCells

pytestmark = pytest.mark.integration

MINUTE = timedelta(minutes=1)
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
SYMBOLS = [f"S{i:02d}USDT" for i in range(12)]


@pytest.fixture
def store(mongo_uri, mongo_db_name) -> MongoStore:
    return MongoStore.connect(mongo_uri, mongo_db_name)


def put(store: MongoStore, cells, name: str = ORDER_BOOK_SNAPSHOTS) -> None:
    store.upsert(name, [{"symbol": c.symbol, "minute": c.minute, "captured_at": c.minute + timedelta(seconds=60.2),
                         "requested_at": c.minute + timedelta(seconds=60.1), "last_update_id": 7, "depth_limit": 100,
                         "bids": [[1.0, 2.0]], "asks": [[1.1, 2.0]], "source": "stream",
                         "event_time": c.minute + timedelta(seconds=59.9)} for c in cells])


def window(end: datetime) -> tuple[datetime, datetime]:
    return end - 15 * MINUTE, end


def test_a_window_read_through_it_is_the_window_as_stored_minute_after_minute(store):
    """Twenty minute runs, each storing most of its minute, some cells filled late (a catch-up
    into an earlier minute), some deleted (a withdrawn book), symbols starting late: after every
    run, what `SeenCells` says is stored is what the collection holds."""
    rng = random.Random(7)
    since = {s: T0 + (rng.choice([0, 0, 0, 4, 9]) * MINUTE) for s in SYMBOLS}
    for k in range(20):
        minute = T0 + k * MINUTE
        put(store, [Cell(minute, s) for s in SYMBOLS if since[s] <= minute and rng.random() > 0.15])
        if k > 3 and rng.random() < 0.5:  # a late fill of an earlier minute's cell
            put(store, [Cell(minute - rng.randint(1, 3) * MINUTE, rng.choice(SYMBOLS))])
        if k > 5 and rng.random() < 0.3:  # a withdrawn book: deleted
            earlier = minute - rng.randint(1, 5) * MINUTE
            store.delete_cells(ORDER_BOOK_SNAPSHOTS, [Cell(earlier, s) for s in rng.sample(SYMBOLS, 2)])
        start, end = window(minute + MINUTE)
        seen = SeenCells(store, ORDER_BOOK_SNAPSHOTS)
        got = seen.stored_minutes(start, end, since, fresh=[minute])
        truth = store.stored_minutes(ORDER_BOOK_SNAPSHOTS, start, end)
        assert got == {s: m for s, m in truth.items() if s in since}, f"run {k}"


def test_each_minute_is_read_in_full_once_then_only_its_missing_cells(store):
    since = {s: T0 for s in SYMBOLS}
    for k in range(16):
        put(store, [Cell(T0 + k * MINUTE, s) for s in SYMBOLS if not (k == 3 and s == SYMBOLS[0])])
    start, end = window(T0 + 16 * MINUTE)
    first = SeenCells(store, ORDER_BOOK_SNAPSHOTS)
    first.stored_minutes(start, end, since, fresh=[end - MINUTE])
    assert first.documents_read == 15 * len(SYMBOLS) - 1  # nothing seen before: all of it

    # The next minute: its own minute in full, and the one missing cell looked for again.
    put(store, [Cell(end, s) for s in SYMBOLS])
    put(store, [Cell(T0 + 3 * MINUTE, SYMBOLS[0])])  # filled late
    second = SeenCells(store, ORDER_BOOK_SNAPSHOTS)
    got = second.stored_minutes(start + MINUTE, end + MINUTE, since, fresh=[end])
    assert second.documents_read == len(SYMBOLS) + 1
    assert got[SYMBOLS[0]] == {start + MINUTE + i * MINUTE for i in range(15)}

    third = SeenCells(store, ORDER_BOOK_SNAPSHOTS)
    third.stored_minutes(start + MINUTE, end + MINUTE, since)
    assert third.documents_read == 0, "everything was seen stored: nothing to read"


def test_what_it_saw_of_one_collection_says_nothing_of_another(store):
    since = {s: T0 for s in SYMBOLS}
    put(store, [Cell(T0, s) for s in SYMBOLS])
    put(store, [Cell(T0, s) for s in SYMBOLS[:3]], name=ORDER_BOOK_FEATURES)
    start, end = T0, T0 + MINUTE
    SeenCells(store, ORDER_BOOK_SNAPSHOTS).stored_minutes(start, end, since)
    features = SeenCells(store, ORDER_BOOK_FEATURES).stored_minutes(start, end, since)
    assert sorted(features) == SYMBOLS[:3]


def test_the_archive_retention_forgets_what_was_seen_of_the_days_it_deletes(store, tmp_path):
    """A deletion outside `delete_cells` still forgets: the archive's retention deletes a day."""
    since = {s: T0 for s in SYMBOLS}
    put(store, [Cell(T0, s) for s in SYMBOLS])
    seen = SeenCells(store, ORDER_BOOK_SNAPSHOTS)
    seen.stored_minutes(T0, T0 + MINUTE, since)
    assert store.collection(CELLS_SEEN).count_documents({}) == 1
    archive = Archive(str(tmp_path / "archive"))
    archive.archive_day(store, T0.date(), collections=[ORDER_BOOK_SNAPSHOTS])
    retained = apply_retention(store, archive, ORDER_BOOK_SNAPSHOTS, 0, T0.date() + timedelta(days=1))
    assert [r.deleted for r in retained] == [len(SYMBOLS)]
    assert store.collection(CELLS_SEEN).count_documents({}) == 0
    assert SeenCells(store, ORDER_BOOK_SNAPSHOTS).stored_minutes(T0, T0 + MINUTE, since) == {}


def test_records_older_than_the_window_are_deleted(store):
    since = {s: T0 for s in SYMBOLS}
    for k in range(3):
        put(store, [Cell(T0 + k * MINUTE, s) for s in SYMBOLS])
    SeenCells(store, ORDER_BOOK_SNAPSHOTS).stored_minutes(T0, T0 + 3 * MINUTE, since)
    later = T0 + 3 * MINUTE + KEEP + MINUTE
    SeenCells(store, ORDER_BOOK_SNAPSHOTS).stored_minutes(later, later + MINUTE, since)
    assert store.collection(CELLS_SEEN).count_documents({}) == 1, "only the later minute's record is left"


def test_a_minute_missed_by_every_symbol_and_filled_later_is_found(store):
    """More missing symbols than a lookup by name takes (an outage minute, later backfilled from
    the recorder's books): the minute is read whole, and what it holds now is found."""
    many = [f"M{i:03d}USDT" for i in range(FEW_SYMBOLS + 10)]
    since = {s: T0 for s in many}
    put(store, [Cell(T0, s) for s in many])
    put(store, [Cell(T0 + 2 * MINUTE, s) for s in many])  # T0 + 1 missed by all
    SeenCells(store, ORDER_BOOK_SNAPSHOTS).stored_minutes(T0, T0 + 3 * MINUTE, since)
    put(store, [Cell(T0 + MINUTE, s) for s in many[:-1]])  # the backfill: all but one
    got = SeenCells(store, ORDER_BOOK_SNAPSHOTS).stored_minutes(T0, T0 + 3 * MINUTE, since)
    assert got == store.stored_minutes(ORDER_BOOK_SNAPSHOTS, T0, T0 + 3 * MINUTE)
    assert got[many[-1]] == {T0, T0 + 2 * MINUTE}
