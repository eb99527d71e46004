"""`order_book_snapshot` in the stream design, in process: each cell's book is the recorder's
boundary book when it vouches for one, a REST fetch when it does not (within the tolerance), and
nothing (with the recorder's reason) for a past minute it has no book for."""

from datetime import timedelta

import pytest
from dagster import DagsterInstance, materialize

from acts_pipeline.orchestration.assets import order_book_snapshot
from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.orchestration.partitions import minute_range_tags
from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS
from acts_pipeline.storage import MongoIOManager
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline.storage.client import StorageError
from acts_pipeline.storage.collections import RECORDER_NAME, RECORDER_STATUS
from acts_pipeline_tests.dates import iso_instant, recent_minute
from acts_pipeline_tests.fakes import (
    CAPTURED_SYMBOLS,
    STREAM_ASKS,
    STREAM_BIDS,
    FakeClient,
    FixedClock,
    MongomockResource,
    boundary_book,
    fake_exchange,
)

MINUTE = recent_minute(10, 0)
CLOSE = MINUTE + timedelta(minutes=1)


def boundary(symbol, minute=MINUTE, **fields):
    return boundary_book(symbol, minute, **fields)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", list(CAPTURED_SYMBOLS))
        yield instance


@pytest.fixture
def mongo(request):
    return MongomockResource(database=f"stream_{request.node.name}")


def run(instance, mongo, client, at, minute=MINUTE):
    clock = FixedClock(at=at)
    client._now = clock.now
    return materialize(
        [order_book_snapshot], instance=instance, raise_on_error=False,
        tags={**minute_range_tags(minute, list(CAPTURED_SYMBOLS)), **PER_CELL_EVENTS_TAGS},
        resources={"exchange": fake_exchange(client), "capture_clock": clock,
                   "book_source": BookSource(mongo=mongo, source="stream", wait_for_recorder_seconds=0.2),
                   "io_manager": MongoIOManager(mongo=mongo)})


def stored(mongo):
    return {d["symbol"]: d for d in mongo.get_store().collection("order_book_snapshots").find({}, {"_id": False})}


def recorder_alive(mongo, at):
    mongo.get_store().put_status(RECORDER_STATUS, RECORDER_NAME, {"updated_at": at})


def test_books_come_from_the_recorder_and_rest_only_where_it_has_none(instance, mongo):
    nkn, blz, lrc, rune = CAPTURED_SYMBOLS
    recorder_alive(mongo, CLOSE)
    resyncing = boundary(lrc, usable=False, reason="a gap: resyncing")
    BoundaryBooks(mongo.get_store()).write([boundary(nkn), boundary(blz), resyncing])
    client = FakeClient(now=None)
    result = run(instance, mongo, client, at=iso_instant(MINUTE, minutes=1, milliseconds=4))
    assert result.success
    books = stored(mongo)
    assert set(books) == set(CAPTURED_SYMBOLS)
    for symbol in (nkn, blz):
        assert books[symbol]["source"] == "stream"
        assert (books[symbol]["bids"], books[symbol]["asks"]) == (STREAM_BIDS, STREAM_ASKS)
        assert books[symbol]["event_time"].replace(tzinfo=None) == (CLOSE - timedelta(milliseconds=59)).replace(tzinfo=None)
        assert books[symbol]["captured_at"] == books[symbol]["requested_at"]
        assert books[symbol]["last_update_id"] == 1234
    # LRCBTC: the recorder was resyncing; RUNEEUR: it wrote nothing. Both over REST, only they.
    assert sorted(client.book_calls) == sorted([lrc, rune])
    assert books[lrc]["source"] == books[rune]["source"] == "rest" and "event_time" not in books[rune]
    logs = "\n".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert "2/2 books over REST (the recorder had no book for 2)" in logs


def test_a_recorder_that_is_down_is_not_waited_for(instance, mongo):
    recorder_alive(mongo, CLOSE - timedelta(minutes=5))  # stale
    client = FakeClient(now=None)
    result = run(instance, mongo, client, at=iso_instant(MINUTE, minutes=1, milliseconds=4))
    assert result.success
    assert sorted(client.book_calls) == sorted(CAPTURED_SYMBOLS)
    assert {d["source"] for d in stored(mongo).values()} == {"rest"}


def test_a_past_minute_is_backfilled_from_boundary_books_and_the_rest_stays_missing_with_the_reason(instance, mongo):
    nkn, blz, lrc, rune = CAPTURED_SYMBOLS
    past = MINUTE - timedelta(minutes=30)
    lost = boundary(lrc, past, usable=False, reason="connection ws-1 lost: reset")
    BoundaryBooks(mongo.get_store()).write([boundary(nkn, past), boundary(blz, past), lost])
    recorder_alive(mongo, CLOSE)
    client = FakeClient(now=None)
    result = run(instance, mongo, client, at=iso_instant(MINUTE, minutes=1, seconds=5), minute=past)
    assert result.success
    books = stored(mongo)
    assert set(books) == {nkn, blz} and {d["source"] for d in books.values()} == {"stream"}
    assert client.book_calls == []  # a past book cannot be fetched: nothing is invented
    logs = "\n".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert "connection ws-1 lost: reset" in logs and "capture tolerance" in logs
    assert f"{rune}" in logs and "stored no book" in logs


def test_a_stored_book_the_recorder_withdrew_is_deleted_with_its_features(instance, mongo):
    """The recorder published NKNUSDT's book, a run stored it (and its features), then the recorder
    withdrew it. The next run over the minute deletes both, says why, and keeps the other cells;
    a REST book stored for a withdrawn cell is not the recorder's and stays."""
    nkn, blz, lrc, rune = CAPTURED_SYMBOLS
    past = MINUTE - timedelta(minutes=30)
    store = mongo.get_store()
    BoundaryBooks(store).write([boundary(s, past) for s in CAPTURED_SYMBOLS])
    recorder_alive(mongo, CLOSE)
    client = FakeClient(now=None)
    assert run(instance, mongo, client, at=iso_instant(MINUTE, minutes=1, seconds=5), minute=past).success
    store.upsert("order_book_features", [{"symbol": s, "minute": past, "bias_5": 0.1} for s in CAPTURED_SYMBOLS])
    store.upsert("order_book_snapshots", [{**stored(mongo)[lrc], "source": "rest"}])
    later = CLOSE - timedelta(minutes=30) + timedelta(seconds=4)
    BoundaryBooks(store).write([boundary(s, past, usable=False, reason="an event arrived after the close was decided",
                                         revised=True, decided_at=later) for s in (nkn, lrc)])
    result = run(instance, mongo, client, at=iso_instant(MINUTE, minutes=1, seconds=5), minute=past)
    assert result.success
    assert set(stored(mongo)) == {blz, lrc, rune} and stored(mongo)[lrc]["source"] == "rest"
    features = {d["symbol"] for d in store.collection("order_book_features").find()}
    assert features == {blz, lrc, rune}
    logs = "\n".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert f"|{nkn}: the stored book was withdrawn by the recorder" in logs


class UnreachableMongo(MongomockResource):
    """The recorder's store while MongoDB is down."""

    def get_store(self):
        raise StorageError("reading recorder_status failed: ServerSelectionTimeoutError: connection refused")


def test_with_mongodb_down_at_the_close_every_book_comes_over_rest_at_once(instance, mongo):
    """Found by the stream soak: the read of the recorder's books failed, the step was retried
    past the tolerance, and the symbols the recorder had no book for were lost. Now the books come
    over REST within the tolerance (the run's own write goes through the spool)."""
    client = FakeClient(now=None)
    clock = FixedClock(at=iso_instant(MINUTE, minutes=1, milliseconds=4))
    client._now = clock.now
    result = materialize(
        [order_book_snapshot], instance=instance, raise_on_error=False,
        tags={**minute_range_tags(MINUTE, list(CAPTURED_SYMBOLS)), **PER_CELL_EVENTS_TAGS},
        resources={"exchange": fake_exchange(client), "capture_clock": clock,
                   "book_source": BookSource(mongo=UnreachableMongo(database="down"), source="stream"),
                   "io_manager": MongoIOManager(mongo=mongo)})
    assert result.success
    assert sorted(client.book_calls) == sorted(CAPTURED_SYMBOLS)
    assert {d["source"] for d in stored(mongo).values()} == {"rest"} and len(stored(mongo)) == 4
    logs = "\n".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert "4/4 books over REST (the recorder had no book for 4)" in logs
