"""`symbol_registry.tracked_since`, the minute each symbol's coverage is counted from, is written
where the snapshots are written (the MongoDB I/O manager), not by the completeness check: a check
only reads."""

from datetime import timedelta

import pytest
from dagster import AssetSelection, DagsterInstance, materialize

from acts_pipeline.orchestration.assets import order_book_features, order_book_snapshot
from acts_pipeline.orchestration.checks import snapshots_are_complete
from acts_pipeline.orchestration.partitions import minute_range_tags
from acts_pipeline.storage import MongoIOManager
from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS
from acts_pipeline_tests.dates import iso_instant, recent_minute
from acts_pipeline_tests.fakes import (
    rest_books,
    CAPTURED_SYMBOLS,
    FakeClient,
    FixedClock,
    MongomockResource,
    failing_symbol,
    fake_exchange,
)

SYMBOLS = list(CAPTURED_SYMBOLS)
MINUTE = recent_minute(11, 0)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


@pytest.fixture
def mongo(request):
    return MongomockResource(database=f"tracked_{request.node.name}")


def collect(instance, mongo, minute, *, failing=None, selection=(order_book_snapshot,)):
    clock = FixedClock(at=iso_instant(minute, minutes=1, milliseconds=4))
    client = FakeClient(now=clock.now, failing=failing)
    return materialize(
        [order_book_snapshot, order_book_features], selection=list(selection), instance=instance,
        tags={**minute_range_tags(minute, SYMBOLS), **PER_CELL_EVENTS_TAGS},  # as the minute sensor's runs
        resources={"exchange": fake_exchange(client), "book_source": rest_books(), "capture_clock": clock,
                   "io_manager": MongoIOManager(mongo=mongo)})


def registry(mongo):
    database = mongo.get_store().database
    return {d["symbol"]: d["tracked_since"].replace(tzinfo=None)
            for d in database["symbol_registry"].find({}, {"_id": False})}


def test_the_completeness_check_run_alone_writes_nothing(instance, mongo):
    result = materialize(
        [order_book_snapshot, snapshots_are_complete], selection=AssetSelection.checks(snapshots_are_complete),
        instance=instance, resources={"mongo": mongo, "io_manager": MongoIOManager(mongo=mongo),
                                      "exchange": fake_exchange(FakeClient(now=None)),
                                      "book_source": rest_books(), "capture_clock": FixedClock(at=iso_instant(MINUTE))})
    assert result.success
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert [e.check_name for e in evaluations if e.partition is None] == ["snapshots_are_complete"]
    database = mongo.get_store().database
    assert database["symbol_registry"].count_documents({}) == 0, "a check must not write data"


def test_storing_snapshots_records_each_symbols_first_minute(instance, mongo):
    later = MINUTE + timedelta(minutes=2)
    assert collect(instance, mongo, later, failing=failing_symbol("LRCBTC")).success
    # Every symbol of the run counts from the run's minute, the one that failed there too: its
    # gap is what the completeness check reports.
    assert registry(mongo) == dict.fromkeys(SYMBOLS, later.replace(tzinfo=None))

    # An earlier minute stored afterwards moves it back ($min); a later one leaves it.
    assert collect(instance, mongo, MINUTE).success
    assert collect(instance, mongo, MINUTE + timedelta(minutes=5)).success
    assert registry(mongo) == dict.fromkeys(SYMBOLS, MINUTE.replace(tzinfo=None))


def test_only_snapshots_start_a_symbols_coverage(instance, mongo):
    assert collect(instance, mongo, MINUTE).success
    mongo.get_store().database["symbol_registry"].delete_many({})
    # features recomputed from the stored snapshots: no new tracked minute
    assert collect(instance, mongo, MINUTE, selection=[order_book_features]).success
    assert registry(mongo) == {}
