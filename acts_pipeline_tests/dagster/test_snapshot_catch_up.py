"""`snapshot_catch_up_sensor`: minutes the recorder kept and no run stored (a daemon restart, an
outage) are requested in one run over the gap; nothing in the REST design, nothing twice."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, Definitions, RunRequest, SkipReason, build_sensor_context

from acts_pipeline.core.cells import floor_minute
from acts_pipeline.orchestration.assets import order_book_features, order_book_snapshot
from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.orchestration.sensors import snapshot_catch_up_sensor, snapshot_gap
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline.storage.collections import ORDER_BOOK_SNAPSHOTS
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline_tests.fakes import FakeClient, MongomockResource, boundary_book, fake_exchange

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
NOW = floor_minute(datetime.now(UTC))


def m(minutes_ago: int) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def test_the_gap_is_the_first_run_of_consecutive_minutes_with_a_recorded_book_and_no_snapshot():
    recorded = {"A": {m(10), m(9), m(8), m(5)}, "B": {m(10), m(9), m(7)}}
    stored = {"A": {m(10)}, "B": {m(10), m(9)}}
    assert snapshot_gap(recorded, stored, ["A", "B"]) == (m(9), m(7))
    assert snapshot_gap(recorded, {"A": {m(10), m(9), m(8), m(5)}, "B": {m(10), m(9), m(7)}}, ["A", "B"]) is None
    assert snapshot_gap(recorded, stored, ["C"]) is None  # only registered symbols count


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


def tick(instance, mongo, source="stream", cursor=None, contexts=None):
    book_source = BookSource(mongo=mongo, source=source)
    defs = Definitions(assets=[order_book_snapshot, order_book_features], sensors=[snapshot_catch_up_sensor],
                       resources={"book_source": book_source, "capture_clock": CaptureClock(),
                                  "exchange": fake_exchange(FakeClient(now=None))})
    with build_sensor_context(instance=instance, definitions=defs, resources={"book_source": book_source},
                              cursor=cursor) as context:
        result = snapshot_catch_up_sensor(context)
        if contexts is not None:
            contexts.append(context.cursor)
        return result


def seed(mongo):
    store = mongo.get_store()
    BoundaryBooks(store).write([boundary_book(s, m(k)) for s in SYMBOLS for k in (12, 11, 10)]
                               # a minute the recorder could not vouch for is not a gap to fill
                               + [boundary_book("BTCUSDT", m(8), usable=False, reason="gap")])
    store.upsert(ORDER_BOOK_SNAPSHOTS, [{"symbol": s, "minute": m(12)} for s in SYMBOLS])


def test_a_missed_stretch_is_requested_once_for_every_symbol(instance):
    mongo = MongomockResource(database="snapshot_catch_up")
    seed(mongo)
    request = tick(instance, mongo)
    assert isinstance(request, RunRequest), request
    assert request.tags["dagster/asset_partition_range_start"] == f"{m(11):%Y-%m-%d-%H:%M}|BTCUSDT"
    assert request.tags["dagster/asset_partition_range_end"] == f"{m(10):%Y-%m-%d-%H:%M}|ETHUSDT"
    assert {k.to_user_string() for k in request.asset_selection} == {"order_book_snapshot", "order_book_features"}
    instance.add_run(DagsterRun(job_name="__anonymous_asset_job_snapshot_catch_up_sensor",
                                status=DagsterRunStatus.STARTED, tags=request.tags))
    assert "still in progress" in tick(instance, mongo).skip_message


def test_nothing_to_do_in_the_rest_design_or_without_a_gap(instance):
    mongo = MongomockResource(database="snapshot_catch_up_rest")
    seed(mongo)
    assert "REST design" in tick(instance, mongo, source="rest").skip_message
    mongo.get_store().upsert(ORDER_BOOK_SNAPSHOTS, [{"symbol": s, "minute": m(k)} for s in SYMBOLS for k in (11, 10)])
    result = tick(instance, mongo)
    assert isinstance(result, SkipReason) and "no minute since" in result.skip_message


def recorded_and_stored(mongo):
    """Minutes 12, 11 and 10 ago recorded and stored from the stream for every symbol: (store, books)."""
    store = mongo.get_store()
    books = BoundaryBooks(store)
    books.write([boundary_book(s, m(k)) for s in SYMBOLS for k in (12, 11, 10)])
    store.upsert(ORDER_BOOK_SNAPSHOTS, [{"symbol": s, "minute": m(k), "source": "stream"}
                                        for s in SYMBOLS for k in (12, 11, 10)])
    return store, books


def test_a_stored_book_the_recorder_withdrew_is_requested_again(instance):
    """Found by the stream soak: a run stored a stream book, then the recorder revised it (an event
    of that close came late). The sensor asks for a run over that minute, which deletes it."""
    mongo = MongomockResource(database="snapshot_catch_up_withdrawn")
    store, books = recorded_and_stored(mongo)
    assert isinstance(tick(instance, mongo), SkipReason)
    withdrawn = boundary_book("ETHUSDT", m(11), usable=False, reason="an event with E=... arrived after the close "
                              "was decided", revised=True, decided_at=m(11) + timedelta(minutes=1, seconds=3))
    books.write([withdrawn])
    request = tick(instance, mongo)
    assert isinstance(request, RunRequest), request
    assert request.tags["dagster/asset_partition_range_start"] == f"{m(11):%Y-%m-%d-%H:%M}|BTCUSDT"
    assert request.tags["dagster/asset_partition_range_end"] == f"{m(11):%Y-%m-%d-%H:%M}|ETHUSDT"
    # once deleted (or if the cell's book had come over REST) there is nothing to do
    store.upsert(ORDER_BOOK_SNAPSHOTS, [{"symbol": "ETHUSDT", "minute": m(11), "source": "rest"}])
    assert isinstance(tick(instance, mongo), SkipReason)


def test_a_tick_reads_only_after_the_minutes_found_complete_but_every_withdrawal(instance):
    """An hour of 500 symbols is 30,000 cells: a tick reads recorded and stored minutes from after
    the last one its cursor found complete (a full scan once an hour), while withdrawn books are
    looked for over the whole hour."""
    mongo = MongomockResource(database="snapshot_catch_up_cursor")
    store, books = recorded_and_stored(mongo)
    cursors = []
    assert isinstance(tick(instance, mongo, contexts=cursors), SkipReason)
    cursor = json.loads(cursors[0])
    assert datetime.fromisoformat(cursor["complete_through"]) >= m(10) and "full_scan_at" in cursor
    # a snapshot deleted behind the cursor is not seen until the hourly full scan...
    store.collection(ORDER_BOOK_SNAPSHOTS).delete_one({"symbol": "BTCUSDT", "minute": m(11)})
    assert isinstance(tick(instance, mongo, cursor=cursors[0]), SkipReason)
    # ...but a book withdrawn behind it is
    books.write([boundary_book("ETHUSDT", m(12), usable=False, reason="late event", revised=True,
                               decided_at=m(12) + timedelta(minutes=1, seconds=2))])
    request = tick(instance, mongo, cursor=cursors[0])
    assert isinstance(request, RunRequest) and f"{m(12):%Y-%m-%d-%H:%M}|" in request.tags["dagster/asset_partition_range_start"]
    stale = json.dumps({**cursor, "full_scan_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat()})
    store.upsert(ORDER_BOOK_SNAPSHOTS, [{"symbol": "ETHUSDT", "minute": m(12), "source": "rest"}])
    request = tick(instance, mongo, cursor=stale)  # the full scan finds the deleted one
    assert isinstance(request, RunRequest) and f"{m(11):%Y-%m-%d-%H:%M}|" in request.tags["dagster/asset_partition_range_start"]
