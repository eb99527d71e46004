"""Klines beyond the ride-along budget: the minute run fetches books only, and
`klines_catch_up_sensor` fetches every symbol's klines in batches, reading little each tick."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason

from acts_pipeline.orchestration.assets import klines_1m
from acts_pipeline.orchestration.klines_budget import KLINES_BATCH_MINUTES, KLINES_WEIGHT_BUDGET
from acts_pipeline.core.cells import floor_minute
from acts_pipeline.orchestration.partitions import minute_symbol_partitions, minute_window_start
from acts_pipeline.orchestration.sensors import FULL_SCAN_EVERY, KLINES_CATCH_UP_WINDOW, minute_run_request
from acts_pipeline.storage import MongoIOManager
from acts_pipeline_tests.dagster.sensor_ticks import klines_catch_up_tick
from acts_pipeline_tests.fakes import rest_books, FakeClient, MongomockResource, fake_exchange

SYMBOLS = [f"S{i:02d}USDT" for i in range(12)]


@pytest.fixture
def heavy_books():
    """5000 levels a side: 250 weight a book, so 12 symbols no longer leave room for klines."""
    return 5000


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


def store_klines(mongo, since, minutes):
    mongo.get_store().record_tracked(SYMBOLS, since)
    mongo.get_store().upsert("klines_1m", [{"symbol": s, "minute": m, "open": 1.0} for s in SYMBOLS for m in minutes])


def test_the_minute_run_leaves_klines_out_beyond_the_budget(heavy_books):
    minute = floor_minute(datetime.now(UTC))
    assert [k.to_user_string() for k in minute_run_request(minute, SYMBOLS, 5000).asset_selection] == [
        "order_book_snapshot", "order_book_features"]
    assert "klines_1m" in [k.to_user_string() for k in minute_run_request(minute, SYMBOLS[:2], 5000).asset_selection]


def test_klines_wait_for_a_batch_then_come_in_one_run(heavy_books, instance):
    now = datetime.now(UTC)
    since = floor_minute(now) - timedelta(minutes=30)
    mongo = MongomockResource(database="klines_batches_wait")
    recent = floor_minute(now) - timedelta(minutes=KLINES_BATCH_MINUTES - 2)
    store_klines(mongo, since, [since + timedelta(minutes=i) for i in range(30) if since + timedelta(minutes=i) < recent])
    result, _ = klines_catch_up_tick(instance, mongo, depth_limit=heavy_books)
    assert isinstance(result, SkipReason), result
    assert "fetched once due" in result.skip_message

    mongo = MongomockResource(database="klines_batches_due")
    first = floor_minute(now) - timedelta(minutes=KLINES_BATCH_MINUTES + 2)
    store_klines(mongo, since, [since + timedelta(minutes=i) for i in range(30) if since + timedelta(minutes=i) < first])
    before = datetime.now(UTC)
    result, _ = klines_catch_up_tick(instance, mongo, depth_limit=heavy_books)
    after = datetime.now(UTC)
    assert isinstance(result, RunRequest), result
    assert result.tags["dagster/asset_partition_range_start"] == f"{first:%Y-%m-%d-%H:%M}|{SYMBOLS[0]}"
    # Up to the last candle settled 30 s after its close, by the sensor's own clock, which read
    # between `before` and `after` (a half minute may pass in between).
    last = {floor_minute(t - timedelta(seconds=30)) - timedelta(minutes=1) for t in (before, after)}
    assert result.tags["dagster/asset_partition_range_end"] in {f"{m:%Y-%m-%d-%H:%M}|{SYMBOLS[-1]}" for m in last}
    assert [k.to_user_string() for k in result.asset_selection] == ["klines_1m"]


def test_ticks_read_from_the_last_complete_minute_and_the_whole_window_hourly(instance, monkeypatch):
    mongo = MongomockResource(database="klines_scan")
    store = mongo.get_store()
    now = datetime.now(UTC)
    since = floor_minute(now) - timedelta(hours=5)
    store_klines(mongo, since, [since + timedelta(minutes=i) for i in range(5 * 60)])
    reads = []
    original = type(store).stored_minutes

    def spy(self, name, start, end):
        reads.append((start, end))
        return original(self, name, start, end)

    monkeypatch.setattr(type(store), "stored_minutes", spy)

    def whole_window(at):
        return max(floor_minute(at) - KLINES_CATCH_UP_WINDOW, minute_window_start(minute_symbol_partitions))

    before = datetime.now(UTC)
    result, cursor = klines_catch_up_tick(instance, mongo)
    # the sensor reads the clock itself: a minute boundary may fall between the two readings
    windows = {whole_window(before), whole_window(datetime.now(UTC))}
    assert isinstance(result, SkipReason)
    assert reads[-1][0] in windows  # first tick: the whole catch-up window
    state = json.loads(cursor)
    complete = datetime.fromisoformat(state["complete_through"])
    assert complete == reads[-1][1] - timedelta(minutes=1)

    result, cursor = klines_catch_up_tick(instance, mongo, cursor=cursor)
    assert reads[-1][0] == complete + timedelta(minutes=1)  # only what came since

    state = json.loads(cursor)
    state["full_scan_at"] = (now - FULL_SCAN_EVERY - timedelta(minutes=1)).isoformat()
    before = datetime.now(UTC)
    klines_catch_up_tick(instance, mongo, cursor=json.dumps(state))
    assert reads[-1][0] in {whole_window(before), whole_window(datetime.now(UTC))}  # an hour later: all again


class SpentThenNewMinuteGate:
    """The exchange reports this minute's budget spent; asked again (after the wait), a new
    minute with nothing used yet."""

    def __init__(self):
        self.reads = 0

    @property
    def used_weight(self):
        self.reads += 1
        return KLINES_WEIGHT_BUDGET if self.reads == 1 else 0


def test_a_klines_run_waits_for_the_next_minute_once_the_weight_budget_is_spent():
    """klines_1m in process, 20 s into a minute whose weight budget is spent: it waits out the
    minute and the next one's books burst (45 s) before its first request, then stores every
    cell."""
    from dagster import materialize

    from acts_pipeline.orchestration.partitions import minute_range_tags
    from acts_pipeline_tests.dates import iso_instant, recent_minute
    from acts_pipeline_tests.fakes import FixedClock

    minute = recent_minute(10, 0)
    clock = FixedClock(at=iso_instant(minute, minutes=7, seconds=20))
    client = FakeClient(now=clock.now)
    client.gate = SpentThenNewMinuteGate()
    mongo = MongomockResource(database="klines_paced")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS[:2])
        result = materialize(
            [klines_1m], instance=instance, tags=minute_range_tags(minute, SYMBOLS[:2], minute + timedelta(minutes=4)),
            resources={"exchange": fake_exchange(client), "book_source": rest_books(), "capture_clock": clock, "io_manager": MongoIOManager(mongo=mongo)})
    assert result.success
    assert client.gate.reads >= 2 and len(client.kline_calls) == 2
    metadata = result.asset_materializations_for_node("klines_1m")[0].metadata
    assert metadata["seconds_paused_for_weight"].value == pytest.approx(45.0, abs=0.5)
    assert mongo.get_store().collection("klines_1m").count_documents({}) == 2 * 5


def test_no_second_catch_up_while_one_is_in_progress(heavy_books, instance):
    """Seen at 500 symbols: a catch-up batch takes minutes, and the next tick requested a second
    run over the same minutes (its range had grown by a minute, so its run key was new)."""
    from dagster import DagsterRun, DagsterRunStatus

    now = datetime.now(UTC)
    since = floor_minute(now) - timedelta(minutes=30)
    mongo = MongomockResource(database="klines_one_at_a_time")
    first = floor_minute(now) - timedelta(minutes=KLINES_BATCH_MINUTES + 2)
    store_klines(mongo, since, [since + timedelta(minutes=i) for i in range(30) if since + timedelta(minutes=i) < first])
    result, _ = klines_catch_up_tick(instance, mongo, depth_limit=heavy_books)
    assert isinstance(result, RunRequest), result
    running = instance.add_run(DagsterRun(job_name="__anonymous_asset_job_klines_catch_up_sensor",
                                          status=DagsterRunStatus.STARTED, tags=result.tags))
    result, _ = klines_catch_up_tick(instance, mongo, depth_limit=heavy_books)
    assert isinstance(result, SkipReason) and running.run_id in result.skip_message
    instance.report_run_failed(running)
    result, _ = klines_catch_up_tick(instance, mongo, depth_limit=heavy_books)
    assert isinstance(result, RunRequest), result  # a failed catch-up does not block the next


def test_the_sensors_plan_with_the_exchange_resources_depth_not_the_environment(instance, monkeypatch):
    """Issue 10: the sensors read ACTS_DEPTH_LIMIT themselves while the fetch used the exchange
    resource, so a resource configured with 5000 levels planned klines as if books weighed 5."""
    from dagster import Definitions, build_sensor_context

    from acts_pipeline.orchestration.assets import order_book_features, order_book_snapshot
    from acts_pipeline.orchestration.capture import CaptureClock
    from acts_pipeline.orchestration.sensors import minute_sensor
    from acts_pipeline.orchestration.symbols import InitialSymbols
    from acts_pipeline_tests.fakes import FakeExchange, _FAKE_CLIENTS

    client = FakeClient(now=None)
    _FAKE_CLIENTS[str(id(client))] = client
    exchange = FakeExchange(fake_id=str(id(client)), depth_limit=5000)  # 250 weight a book
    minute = floor_minute(datetime.now(UTC))
    defs = Definitions(assets=[order_book_snapshot, order_book_features, klines_1m], sensors=[minute_sensor],
                       resources={"exchange": exchange, "book_source": rest_books(), "capture_clock": CaptureClock(),
                                  "initial_symbols": InitialSymbols(),
                                  "io_manager": MongoIOManager(mongo=MongomockResource())})
    cursor = json.dumps({"accepted": {s: minute.isoformat() for s in SYMBOLS}, "awaiting_first": {},
                         "rechecked_at": datetime.now(UTC).isoformat()})
    seconds = {"now": minute + timedelta(seconds=45)}
    monkeypatch.setattr("acts_pipeline.orchestration.sensors.datetime",
                        type("D", (), {"now": staticmethod(lambda tz=None: seconds["now"])}))
    with build_sensor_context(instance=instance, definitions=defs,
                              resources={"exchange": exchange, "initial_symbols": InitialSymbols()},
                              cursor=cursor) as context:
        [run] = minute_sensor(context).run_requests
    assert [k.to_user_string() for k in run.asset_selection] == ["order_book_snapshot", "order_book_features"]
