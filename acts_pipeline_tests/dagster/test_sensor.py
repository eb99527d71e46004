"""`minute_sensor` evaluated against a real temporary instance: registration of ACTS_SYMBOLS,
one run request per minute with the range tags, nothing outside the lead window."""

from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, Definitions, SensorResult, SkipReason, build_sensor_context

from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.orchestration.sensors import due_minute, minute_run_request, minute_sensor
from acts_pipeline.orchestration.symbols import InitialSymbols, registered_symbols
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.storage import MongoIOManager
from acts_pipeline_tests.dates import minute_key, recent_minute
from acts_pipeline_tests.dagster.sensor_ticks import klines_catch_up_tick
from acts_pipeline_tests.fakes import rest_books, FakeClient, MongomockResource, fake_exchange


@pytest.fixture
def instance():
    with DagsterInstance.local_temp() as instance:
        yield instance


CURSORS: dict[int, str | None] = {}


def evaluate(instance, monkeypatch, symbols_env="BTCUSDT,NKNUSDT"):
    """One tick, with the cursor the previous tick on this instance left (as the daemon keeps it)."""
    exchange = fake_exchange(FakeClient(now=None))
    initial = InitialSymbols(symbols=symbols_env)
    defs = Definitions(assets=[order_book_snapshot, order_book_features, klines_1m], sensors=[minute_sensor],
                       resources={"exchange": exchange, "book_source": rest_books(), "capture_clock": CaptureClock(), "initial_symbols": initial,
                                  "io_manager": MongoIOManager(mongo=MongomockResource())})
    with build_sensor_context(instance=instance, definitions=defs,
                              resources={"exchange": exchange, "initial_symbols": initial},
                              cursor=CURSORS.get(id(instance))) as context:
        result = minute_sensor(context)
        CURSORS[id(instance)] = context.cursor
        return result


def test_due_minute_is_the_current_one_within_30_s_of_its_close():
    assert due_minute(datetime(2026, 11, 26, 10, 0, 29, tzinfo=UTC)) is None
    assert due_minute(datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)) == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert due_minute(datetime(2026, 11, 26, 10, 0, 59, 900000, tzinfo=UTC)) == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_run_request_covers_the_minute_from_first_to_last_registered_symbol():
    minute = recent_minute(10, 0)
    request = minute_run_request(minute, ["ZZZUSDT", "BTCUSDT", "AAAUSDT"], 100)
    assert request.run_key == minute_key(minute)
    assert request.tags["dagster/asset_partition_range_start"] == minute_key(minute, "ZZZUSDT")
    assert request.tags["dagster/asset_partition_range_end"] == minute_key(minute, "AAAUSDT")
    assert {k.to_user_string() for k in request.asset_selection} == {"order_book_snapshot", "order_book_features", "klines_1m"}
    # run monitoring fails it after 30 minutes (the instance's own limit is hours, for UI backfills)
    assert request.tags["dagster/max_runtime"] == "1800"


def test_first_tick_registers_acts_symbols_checked_against_the_exchange(instance, monkeypatch):
    result = evaluate(instance, monkeypatch)
    if isinstance(result, SensorResult):
        requests = result.dynamic_partitions_requests
        assert [list(r.partition_keys) for r in requests] == [["BTCUSDT", "NKNUSDT"]]
    else:
        pytest.fail(f"expected a SensorResult, got {result!r}")


def test_a_symbol_added_before_the_first_tick_does_not_stand_in_for_acts_symbols(instance, monkeypatch):
    """The production e2e test's flake: `acts-pipeline symbols add LRCBTC` landed before the
    sensor's first tick, which then found a symbol registered and never registered ACTS_SYMBOLS
    (a backfill of them was refused: no such partitions). The first tick registers the ACTS_SYMBOLS
    missing, whatever is registered; later ticks never again (a symbol removed stays removed)."""
    instance.add_dynamic_partitions("symbols", ["LRCBTC"])
    result = evaluate(instance, monkeypatch)
    assert [list(r.partition_keys) for r in result.dynamic_partitions_requests] == [["BTCUSDT", "NKNUSDT"]]
    instance.add_dynamic_partitions("symbols", ["BTCUSDT", "NKNUSDT"])  # what the daemon does with it
    instance.delete_dynamic_partition("symbols", "NKNUSDT")  # an operator removes one
    later = evaluate(instance, monkeypatch)
    assert not getattr(later, "dynamic_partitions_requests", None)
    assert registered_symbols(instance) == ["LRCBTC", "BTCUSDT"]


def test_a_cursor_of_an_earlier_version_counts_as_started_before(instance, monkeypatch):
    instance.add_dynamic_partitions("symbols", ["LRCBTC"])
    CURSORS[id(instance)] = '{"accepted": {"LRCBTC": "2026-11-01T00:00:00+00:00"}, "awaiting_first": {}, "rechecked_at": null}'
    result = evaluate(instance, monkeypatch)
    assert not getattr(result, "dynamic_partitions_requests", None)


def test_unknown_initial_symbol_registers_nothing_and_says_which(instance, monkeypatch):
    result = evaluate(instance, monkeypatch, symbols_env="BTCUSDT,NOPE")
    assert isinstance(result, SkipReason)
    assert "NOPE" in result.skip_message
    assert registered_symbols(instance) == []


def test_tick_near_the_close_requests_the_minute_and_later_ticks_reuse_the_run_key(instance, monkeypatch):
    instance.add_dynamic_partitions("symbols", ["BTCUSDT", "ETHUSDT"])
    minute = recent_minute(10, 0)
    seconds = {"now": minute + timedelta(seconds=10)}
    monkeypatch.setattr("acts_pipeline.orchestration.sensors.datetime", type("D", (), {"now": staticmethod(lambda tz=None: seconds["now"])}))
    evaluate(instance, monkeypatch)  # registered outside the sensor: first checked against the exchange
    seconds["now"] = minute + timedelta(seconds=45)
    first = evaluate(instance, monkeypatch)
    assert [r.run_key for r in first.run_requests] == [minute_key(minute)]
    seconds["now"] = minute + timedelta(seconds=50)
    second = evaluate(instance, monkeypatch)
    assert [r.run_key for r in second.run_requests] == [minute_key(minute)]  # deduplicated by Dagster
    seconds["now"] = minute + timedelta(minutes=1, seconds=10)
    assert isinstance(evaluate(instance, monkeypatch), SkipReason)


def test_klines_gap_starts_each_symbol_at_its_first_collected_minute():
    from acts_pipeline.orchestration.sensors import klines_gap

    start = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    end = start + timedelta(hours=2)
    all_minutes = {start + timedelta(minutes=i) for i in range(120)}
    tracked = {"BTCUSDT": start, "NEWUSDT": start + timedelta(minutes=100)}
    stored = {"BTCUSDT": all_minutes, "NEWUSDT": {m for m in all_minutes if m >= start + timedelta(minutes=100)}}
    assert klines_gap(tracked, stored, start, end) is None
    downtime = {start + timedelta(minutes=i) for i in range(30, 45)}
    stored["BTCUSDT"] = all_minutes - downtime
    assert klines_gap(tracked, stored, start, end) == (start + timedelta(minutes=30), start + timedelta(minutes=44))


def test_klines_catch_up_sensor_requests_one_run_over_the_downtime(instance, monkeypatch):
    instance.add_dynamic_partitions("symbols", ["BTCUSDT", "ETHUSDT"])
    mongo = MongomockResource(database="catch_up")
    store = mongo.get_store()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    since = now - timedelta(minutes=90)
    store.record_tracked(["BTCUSDT", "ETHUSDT"], since)
    down = {since + timedelta(minutes=i) for i in range(20, 35)}
    # Stored through now-2; now-1 is missing but within the minute runs' margin. The sensor
    # reads the clock itself: should a minute close before it does, now-1 is still inside the
    # margin and now-2 stored, so the gap is the downtime either way.
    docs = [{"symbol": s, "minute": since + timedelta(minutes=i), "open": 1.0}
            for s in ("BTCUSDT", "ETHUSDT") for i in range(89) if since + timedelta(minutes=i) not in down]
    store.upsert("klines_1m", docs)
    request, _ = klines_catch_up_tick(instance, mongo)
    first, last = min(down), max(down)
    assert request.tags["dagster/asset_partition_range_start"] == f"{first:%Y-%m-%d-%H:%M}|BTCUSDT"
    assert request.tags["dagster/asset_partition_range_end"] == f"{last:%Y-%m-%d-%H:%M}|ETHUSDT"
    assert [k.to_user_string() for k in request.asset_selection] == ["klines_1m"]
    assert request.tags["dagster/max_runtime"] == "1800"


def test_klines_catch_up_sensor_skips_while_mongodb_is_down(instance):
    """Found by benchmarks/soak.py: during a DB outage the sensor's reads raise pymongo's own
    ServerSelectionTimeoutError, which made every tick fail instead of being skipped."""
    from acts_pipeline.storage import MongoResource
    from acts_pipeline_tests.ports import refusing_port

    instance.add_dynamic_partitions("symbols", ["BTCUSDT"])
    with refusing_port() as port:
        mongo = MongoResource(uri=f"mongodb://127.0.0.1:{port}/?directConnection=true", database="acts",
                              timeout_ms=200)
        result, _ = klines_catch_up_tick(instance, mongo)
    assert isinstance(result, SkipReason)
    assert "MongoDB unavailable" in result.skip_message


def test_a_symbol_added_in_the_ui_is_checked_and_a_refused_one_removed_before_any_run(instance, monkeypatch):
    """Issue 9: the UI's *Add partition* registered NOPE unchecked, and every minute run from then
    on included it. Now the next tick checks it, removes it and says so; no run asks for it."""
    evaluate(instance, monkeypatch)  # first start: ACTS_SYMBOLS registered
    instance.add_dynamic_partitions("symbols", ["BTCUSDT", "NKNUSDT"])
    instance.add_dynamic_partitions("symbols", ["NOPE", "LRCBTC"])  # what the UI's Add partition does
    minute = recent_minute(10, 0)
    seconds = {"now": minute + timedelta(seconds=5)}
    monkeypatch.setattr("acts_pipeline.orchestration.sensors.datetime", type("D", (), {"now": staticmethod(lambda tz=None: seconds["now"])}))
    result = evaluate(instance, monkeypatch)
    [delete] = [r for r in result.dynamic_partitions_requests if type(r).__name__ == "DeleteDynamicPartitionsRequest"]
    assert list(delete.partition_keys) == ["NOPE"]
    [check] = [e for e in result.asset_events if type(e).__name__ == "AssetCheckEvaluation"]
    assert not check.passed and "NOPE is not a Binance Spot symbol" in check.description
    assert check.asset_key.to_user_string() == "tracked_symbols"
    instance.delete_dynamic_partition("symbols", "NOPE")  # what the daemon does with the request
    seconds["now"] = minute + timedelta(seconds=40)
    [run] = evaluate(instance, monkeypatch).run_requests
    assert run.tags["dagster/asset_partition_range_end"] == minute_key(minute, "LRCBTC")


def test_a_symbol_registered_in_the_ui_waits_for_the_check_when_the_run_is_due(instance, monkeypatch):
    evaluate(instance, monkeypatch)
    instance.add_dynamic_partitions("symbols", ["BTCUSDT", "NKNUSDT"])
    minute = recent_minute(10, 0)
    seconds = {"now": minute + timedelta(seconds=5)}
    monkeypatch.setattr("acts_pipeline.orchestration.sensors.datetime", type("D", (), {"now": staticmethod(lambda tz=None: seconds["now"])}))
    evaluate(instance, monkeypatch)
    instance.add_dynamic_partitions("symbols", ["NOPE"])
    seconds["now"] = minute + timedelta(seconds=40)
    [run] = evaluate(instance, monkeypatch).run_requests
    assert run.tags["dagster/asset_partition_range_end"] == minute_key(minute, "NKNUSDT")
