"""The minute graph run in process, with the exchange and clock swapped for fakes and the
MongoDB I/O manager over mongomock: what one minute run stores, and what it refuses."""

from datetime import timedelta

import pytest
from dagster import DagsterInstance, materialize

from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.orchestration.partitions import minute_range_tags
from acts_pipeline.storage import MongoIOManager
from acts_pipeline_tests.dates import iso_instant, minute_key, recent_minute
from acts_pipeline_tests.fakes import (
    rest_books,
    CAPTURED_SYMBOLS,
    FakeClient,
    FixedClock,
    MongomockResource,
    fake_exchange,
    failing_symbol,
)

MINUTE = recent_minute(10, 0)
JUST_AFTER_CLOSE = iso_instant(MINUTE, minutes=1, milliseconds=4)
ALL = [order_book_snapshot, order_book_features, klines_1m]


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", list(CAPTURED_SYMBOLS))
        yield instance


@pytest.fixture
def mongo(request):
    return MongomockResource(database=f"assets_{request.node.name}")


def run_minute(instance, mongo, client, *, at=JUST_AFTER_CLOSE, tags=None, selection=None):
    clock = FixedClock(at=at)
    client._now = clock.now
    return materialize(
        ALL, selection=selection, instance=instance, raise_on_error=False,
        tags=tags or minute_range_tags(MINUTE, list(CAPTURED_SYMBOLS)),
        resources={"exchange": fake_exchange(client), "book_source": rest_books(), "capture_clock": clock,
                   "io_manager": MongoIOManager(mongo=mongo)},
    )


def docs(mongo, name):
    return list(mongo.get_store().collection(name).find({}, {"_id": False}))


def test_one_minute_run_stores_every_symbol_in_all_three_collections(instance, mongo):
    client = FakeClient(now=None)
    result = run_minute(instance, mongo, client)
    assert result.success
    for name in ("order_book_snapshots", "order_book_features", "klines_1m"):
        stored = docs(mongo, name)
        assert sorted(d["symbol"] for d in stored) == sorted(CAPTURED_SYMBOLS), name
        assert {d["minute"].replace(tzinfo=None) for d in stored} == {MINUTE.replace(tzinfo=None)}
    snapshot = next(d for d in docs(mongo, "order_book_snapshots") if d["symbol"] == "NKNUSDT")
    assert snapshot["bids"][0] == [0.3521, 672.0] and snapshot["asks"][0] == [0.3525, 3959.0]
    assert snapshot["depth_limit"] == 100 and len(snapshot["bids"]) == 100
    assert snapshot["captured_at"] - snapshot["requested_at"] == timedelta(milliseconds=7)
    # every symbol was fetched once, and the kline of the minute asked for exactly that minute
    assert sorted(client.book_calls) == sorted(CAPTURED_SYMBOLS)
    assert all(start == MINUTE and end == MINUTE + timedelta(minutes=1) for _, start, end in client.kline_calls)


def test_snapshot_step_runs_before_klines(instance, mongo):
    result = run_minute(instance, mongo, FakeClient(now=None))
    started = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    assert started.index("order_book_snapshot") < started.index("klines_1m")
    assert started.index("order_book_snapshot") < started.index("order_book_features")


def test_a_minute_closed_longer_ago_than_the_tolerance_is_refused_without_retry(instance, mongo):
    client = FakeClient(now=None)
    result = run_minute(instance, mongo, client, at=iso_instant(MINUTE, minutes=1, seconds=30))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "closed 30.0 s ago" in str(failure.event_specific_data.error) and "tolerance" in str(failure.event_specific_data.error)
    assert client.book_calls == []
    assert docs(mongo, "order_book_snapshots") == []
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_a_symbol_that_fails_is_absent_and_the_others_are_stored(instance, mongo):
    from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS

    client = FakeClient(now=None, failing=failing_symbol("LRCBTC"))
    tags = {**minute_range_tags(MINUTE, list(CAPTURED_SYMBOLS)), **PER_CELL_EVENTS_TAGS}
    result = run_minute(instance, mongo, client, tags=tags, selection=[order_book_snapshot, order_book_features])
    assert result.success
    assert sorted(d["symbol"] for d in docs(mongo, "order_book_snapshots")) == ["BLZETH", "NKNUSDT", "RUNEEUR"]
    assert sorted(d["symbol"] for d in docs(mongo, "order_book_features")) == ["BLZETH", "NKNUSDT", "RUNEEUR"]


def test_a_run_launched_without_the_sensors_tags_marks_materialized_exactly_the_cells_it_stored(instance, mongo):
    """Issue 12: launched as the UI, a backfill or `dagster asset materialize` launch it (no
    per-cell tag), a range run over four symbols of which the exchange refuses one stored three
    and marked all four materialized. Now the three are materialized, the fourth is not, and the
    run fails naming it; the steps after it are skipped, not run on a partial input."""
    from dagster import AssetKey

    client = FakeClient(now=None, failing=failing_symbol("LRCBTC"))
    result = run_minute(instance, mongo, client, selection=[order_book_snapshot, order_book_features])
    assert not result.success
    stored = sorted(d["symbol"] for d in docs(mongo, "order_book_snapshots"))
    assert stored == ["BLZETH", "NKNUSDT", "RUNEEUR"]
    assert sorted(instance.get_materialized_partitions(AssetKey("order_book_snapshot"))) == [
        minute_key(MINUTE, s) for s in stored]
    assert instance.get_materialized_partitions(AssetKey("order_book_features")) == set()
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert f"1 of 4 cells have no data and are not marked materialized: {minute_key(MINUTE, 'LRCBTC')}" in message
    assert "does not know symbol" in message
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    assert [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"] == ["order_book_snapshot"]


def test_a_run_launched_without_the_sensors_tags_that_stores_every_cell_succeeds(instance, mongo):
    from dagster import AssetKey

    result = run_minute(instance, mongo, FakeClient(now=None), selection=[order_book_snapshot, order_book_features])
    assert result.success
    for key in ("order_book_snapshot", "order_book_features"):
        assert sorted(instance.get_materialized_partitions(AssetKey(key))) == sorted(
            minute_key(MINUTE, s) for s in CAPTURED_SYMBOLS), key


def test_a_symbol_the_exchange_refuses_costs_that_symbol_alone_in_every_asset(instance, mongo):
    """Issue 9: `klines_1m` failed as a whole on -1121 Invalid symbol, so klines went missing for
    every symbol while one refused symbol was registered."""
    from dagster import AssetKey

    from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS

    client = FakeClient(now=None, failing=failing_symbol("LRCBTC"))
    tags = {**minute_range_tags(MINUTE, list(CAPTURED_SYMBOLS)), **PER_CELL_EVENTS_TAGS}
    result = run_minute(instance, mongo, client, tags=tags)
    assert result.success
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    others = sorted(s for s in CAPTURED_SYMBOLS if s != "LRCBTC")
    for name in ("order_book_snapshots", "order_book_features", "klines_1m"):
        assert sorted(d["symbol"] for d in docs(mongo, name)) == others, name
    assert sorted(instance.get_materialized_partitions(AssetKey("klines_1m"))) == [minute_key(MINUTE, s) for s in others]
    errors = [r.user_message for r in instance.all_logs(result.run_id) if r.level >= 40]
    assert any("no klines for LRCBTC" in m and "does not know symbol" in m for m in errors), errors


def test_klines_backfill_of_hours_is_a_few_requests_per_symbol(instance, mongo):
    first = recent_minute(0, 0)  # 00:00 to 17:59 of one day
    last = first + timedelta(hours=18, minutes=-1)
    tags = {"dagster/asset_partition_range_start": minute_key(first, "NKNUSDT"),
            "dagster/asset_partition_range_end": minute_key(last, "BLZETH")}
    client = FakeClient(now=None)
    result = run_minute(instance, mongo, client, tags=tags, selection=[klines_1m])
    assert result.success
    stored = docs(mongo, "klines_1m")
    assert len(stored) == 18 * 60 * 2
    # one call per symbol for the contiguous range; the client pages it 1000 minutes a request
    assert sorted(c[0] for c in client.kline_calls) == ["BLZETH", "NKNUSDT"]
    assert {(c[2] - c[1]) for c in client.kline_calls} == {timedelta(hours=18)}


def test_features_backfill_reads_stored_snapshots_without_the_exchange(instance, mongo):
    run_minute(instance, mongo, FakeClient(now=None), selection=[order_book_snapshot])
    client = FakeClient(now=None)
    result = run_minute(instance, mongo, client, selection=[order_book_features])
    assert result.success
    assert client.book_calls == [] and client.kline_calls == []
    assert len(docs(mongo, "order_book_features")) == 4


def test_per_cell_events_mark_only_stored_cells_materialized(instance, mongo):
    """With the minute sensor's tags, a symbol refused for good is reported failed and is not
    materialized, for the snapshot and for its features; the others are materialized."""
    from dagster import AssetKey, DagsterEventType

    from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS

    client = FakeClient(now=None, failing=failing_symbol("LRCBTC"))
    tags = {**minute_range_tags(MINUTE, list(CAPTURED_SYMBOLS)), **PER_CELL_EVENTS_TAGS}
    result = run_minute(instance, mongo, client, tags=tags, selection=[order_book_snapshot, order_book_features])
    assert result.success
    ok = sorted(minute_key(MINUTE, s) for s in CAPTURED_SYMBOLS if s != "LRCBTC")
    for key in ("order_book_snapshot", "order_book_features"):
        materialized = instance.get_materialized_partitions(AssetKey(key))
        assert sorted(materialized) == ok, key
        # Logged by the step (open-source event storages do not keep this event type; the cell
        # then shows as missing, which the materialized set above proves).
        failures = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_FAILED_TO_MATERIALIZE
                    and e.asset_key == AssetKey(key)]
        assert [e.event_specific_data.partition for e in failures] == [minute_key(MINUTE, "LRCBTC")], key
        assert f"no data stored for {minute_key(MINUTE, 'LRCBTC')}" in failures[0].event_specific_data.asset_materialization_failure.description
    mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
            and e.asset_key == AssetKey("order_book_snapshot")]
    assert len(mats) == 3
    metadata = mats[0].event_specific_data.materialization.metadata
    assert metadata["bid_levels"].value == 100 and metadata["best_bid"].value > 0
    observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"
                and e.asset_key == AssetKey("order_book_snapshot")]
    assert [e.event_specific_data.asset_observation.partition for e in observed] == [minute_key(MINUTE, "LRCBTC")]
    assert "does not know symbol" in observed[0].event_specific_data.asset_observation.metadata["failed_to_materialize"].value
    [overview] = [e.event_specific_data.asset_observation for e in result.all_events
                  if e.event_type_value == "ASSET_OBSERVATION" and e.asset_key == AssetKey("order_book_features")
                  and e.event_specific_data.asset_observation.partition is None]
    rows = {r.data["symbol"]: r.data for r in overview.metadata["market"].value.records}
    assert sorted(rows) == sorted(s for s in CAPTURED_SYMBOLS if s != "LRCBTC")
    assert rows["NKNUSDT"]["best_bid"] == 0.3521 and rows["NKNUSDT"]["best_ask"] == 0.3525  # the captured book


def test_checks_run_in_the_minute_run_and_report_missing_cells_by_name(instance, mongo):
    from acts_pipeline.orchestration.checks import features_are_in_range, snapshot_books_are_valid, snapshots_are_complete
    from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS

    checks = [snapshot_books_are_valid, features_are_in_range, snapshots_are_complete]
    clock = FixedClock(at=JUST_AFTER_CLOSE)
    client = FakeClient(now=clock.now, failing=failing_symbol("LRCBTC"))
    result = materialize(
        [order_book_snapshot, order_book_features, *checks], instance=instance,
        tags={**minute_range_tags(MINUTE, list(CAPTURED_SYMBOLS)), **PER_CELL_EVENTS_TAGS},
        resources={"exchange": fake_exchange(client), "book_source": rest_books(), "capture_clock": clock, "mongo": mongo,
                   "io_manager": MongoIOManager(mongo=mongo)})
    assert result.success
    evaluations = {e.event_specific_data.check_name: e.event_specific_data for e in result.all_events
                   if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert evaluations["snapshot_books_are_valid"].passed
    assert evaluations["snapshot_books_are_valid"].metadata["checked"].value == 3
    assert evaluations["features_are_in_range"].passed
    complete = evaluations["snapshots_are_complete"]
    assert not complete.passed
    assert f"LRCBTC at {minute_key(MINUTE)}" in complete.description
    assert complete.metadata["missing_cells"].value == 1 and complete.metadata["expected_cells"].value == 4
    # the refused cell is marked failed on its own partition of the check
    per_cell = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
                and e.event_specific_data.partition is not None]
    assert [(e.check_name, e.partition, e.passed) for e in per_cell] == [
        ("snapshots_are_complete", minute_key(MINUTE, "LRCBTC"), False)]
