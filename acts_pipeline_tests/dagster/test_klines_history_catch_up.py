"""`klines_history_catch_up_sensor` in process: klines still missing when their minutes leave the
live window are requested through `klines_history`, for that span only; the span stays owed until
a run over it succeeds. The runs it requests are then run against the real simulator and the
embedded database, and what lands is compared with the simulator's own klines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    Definitions,
    RunRequest,
    SkipReason,
    build_sensor_context,
    materialize,
)

from acts_pipeline.core.cells import floor_minute
from acts_pipeline.exchange import BinanceExchange
from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.orchestration.history_klines import klines_history
from acts_pipeline.orchestration.klines_history_catch_up import klines_history_catch_up_sensor
from acts_pipeline.orchestration.partitions import live_minute_symbol_partitions, minute_window_start, with_partitions
from acts_pipeline.storage import MongoIOManager, MongoResource
from acts_pipeline_tests.dagster.test_history_klines import simulator_klines
from acts_pipeline_tests.fakes import FakeClient, MongomockResource, fake_exchange, rest_books

SYMBOLS = ["BTCUSDT", "REFUSEDUSDT", "ETHUSDT"]  # registration order; REFUSEDUSDT never collected
COLLECTED = ["BTCUSDT", "ETHUSDT"]
MINUTE = timedelta(minutes=1)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


def live_window(hours: int = 1):
    return live_minute_symbol_partitions(hours, datetime.now(UTC))


def tick(instance, mongo, cursor=None, hours: int = 1):
    """One tick, the code location's minute assets narrowed to a live window of `hours`."""
    live = live_window(hours)
    defs = Definitions(assets=[*(with_partitions(a, live) for a in (order_book_snapshot, order_book_features, klines_1m)),
                               klines_history],
                       sensors=[klines_history_catch_up_sensor],
                       resources={"mongo": mongo, "io_manager": MongoIOManager(mongo=mongo), "book_source": rest_books(),
                                  "exchange": fake_exchange(FakeClient(now=None)), "capture_clock": CaptureClock()})
    with build_sensor_context(instance=instance, definitions=defs, resources={"mongo": mongo},
                              cursor=cursor) as context:
        return klines_history_catch_up_sensor(context), json.loads(context.cursor)


def seed(mongo, since: datetime, until: datetime, missing: set[datetime]):
    """Klines of the collected symbols for every minute in `[since, until)` except `missing`."""
    store = mongo.get_store()
    store.record_tracked(COLLECTED, since)
    minutes = int((until - since) / MINUTE)
    store.upsert("klines_1m", [{"symbol": s, "minute": since + i * MINUTE, "open": 1.0} for s in COLLECTED
                               for i in range(minutes) if since + i * MINUTE not in missing])


def moved(cursor: dict, hours_back: float) -> str:
    """The cursor as a tick long ago left it: it last saw the window start `hours_back` earlier."""
    start = datetime.fromisoformat(cursor["window_start"]) - timedelta(hours=hours_back)
    return json.dumps({**cursor, "window_start": start.isoformat()})


def test_nothing_is_read_until_the_window_moves_then_the_missing_span_is_requested(instance, monkeypatch):
    mongo = MongomockResource(database="history_catch_up")
    window_start = minute_window_start(live_window())
    outage = {window_start - timedelta(hours=3) + i * MINUTE for i in range(95)}  # 95 minutes, 3 h before the window
    seed(mongo, window_start - timedelta(hours=5), floor_minute(datetime.now(UTC)), outage)
    reads = []
    store_type = type(mongo.get_store())
    original = store_type.stored_minutes
    monkeypatch.setattr(store_type, "stored_minutes", lambda self, *a: reads.append(a[1:]) or original(self, *a))

    result, cursor = tick(instance, mongo)  # first look: nothing has left the window yet
    assert isinstance(result, SkipReason) and reads == []
    assert cursor == {"window_start": window_start.isoformat(), "owed": None}
    result, cursor = tick(instance, mongo, json.dumps(cursor))  # the window has not moved: nothing read
    assert isinstance(result, SkipReason) and reads == []

    # The daemon was down for 4 hours: the minutes that left the window meanwhile are read once.
    result, cursor = tick(instance, mongo, moved(cursor, 4))
    assert reads == [(window_start - timedelta(hours=4), window_start)]
    assert isinstance(result, RunRequest), result
    first, last = min(outage), max(outage)
    assert result.tags["acts/klines_from"] == f"{first:%Y-%m-%d-%H:%M}"
    assert result.tags["acts/klines_to"] == f"{last:%Y-%m-%d-%H:%M}"
    assert result.tags["dagster/asset_partition_range_start"] == f"{first:%Y-%m-01}|BTCUSDT"
    assert result.tags["dagster/asset_partition_range_end"] == f"{last:%Y-%m-01}|ETHUSDT"
    assert result.tags["acts/catch_up"] == "klines" and result.tags["dagster/max_runtime"] == "1800"
    assert [k.to_user_string() for k in result.asset_selection] == ["klines_history"]
    assert cursor["owed"] == [first.isoformat(), last.isoformat()]

    # Owed until a run over that span succeeds: a failed one is requested again, without reading.
    reads.clear()
    failed = instance.add_run(DagsterRun(job_name="__anonymous_asset_job_klines_history_catch_up_sensor",
                                         run_id="f" * 32, status=DagsterRunStatus.FAILURE, tags=result.tags))
    assert failed.status == DagsterRunStatus.FAILURE
    again, cursor = tick(instance, mongo, json.dumps(cursor))
    assert isinstance(again, RunRequest) and again.tags == result.tags and reads == []
    # while any klines catch-up runs, it waits (they share the weight budget)
    running = instance.add_run(DagsterRun(job_name="__anonymous_asset_job_klines_catch_up_sensor", run_id="r" * 32,
                                          status=DagsterRunStatus.STARTED, tags={"acts/catch_up": "klines"}))
    waiting, cursor = tick(instance, mongo, json.dumps(cursor))
    assert isinstance(waiting, SkipReason) and running.run_id in waiting.skip_message
    assert cursor["owed"] == [first.isoformat(), last.isoformat()]
    instance.delete_run(running.run_id)
    instance.add_run(DagsterRun(job_name="__anonymous_asset_job_klines_history_catch_up_sensor", run_id="s" * 32,
                                status=DagsterRunStatus.SUCCESS, tags=result.tags))
    done, cursor = tick(instance, mongo, json.dumps(cursor))
    assert isinstance(done, SkipReason) and cursor["owed"] is None


def test_complete_minutes_leaving_the_window_ask_for_nothing(instance):
    mongo = MongomockResource(database="history_catch_up_complete")
    window_start = minute_window_start(live_window())
    seed(mongo, window_start - timedelta(hours=2), floor_minute(datetime.now(UTC)), set())
    _, cursor = tick(instance, mongo)
    result, cursor = tick(instance, mongo, moved(cursor, 1))
    assert isinstance(result, SkipReason) and cursor["owed"] is None


def test_a_span_older_than_24_hours_is_dropped_and_minutes_before_a_symbol_was_collected_are_not_owed(instance):
    mongo = MongomockResource(database="history_catch_up_old")
    window_start = minute_window_start(live_window())
    # collected from 2 hours before the window: the 30 hours before that are no gap
    seed(mongo, window_start - timedelta(hours=2), floor_minute(datetime.now(UTC)), set())
    _, cursor = tick(instance, mongo)
    result, cursor = tick(instance, mongo, moved(cursor, 30))
    assert isinstance(result, SkipReason) and cursor["owed"] is None
    old = (datetime.now(UTC) - timedelta(hours=30)).replace(second=0, microsecond=0)
    stale = json.dumps({**cursor, "owed": [old.isoformat(), (old + timedelta(hours=1)).isoformat()]})
    result, cursor = tick(instance, mongo, stale)
    assert isinstance(result, SkipReason) and cursor["owed"] is None


def test_mongodb_down_skips_and_reads_the_same_minutes_next_time(instance):
    from acts_pipeline_tests.ports import refusing_port

    mongo = MongomockResource(database="history_catch_up_down")
    _, cursor = tick(instance, mongo)
    behind = moved(cursor, 2)
    with refusing_port() as port:
        down = MongoResource(uri=f"mongodb://127.0.0.1:{port}/?directConnection=true", database="acts", timeout_ms=200)
        result, after = tick(instance, down, behind)
    assert isinstance(result, SkipReason) and "MongoDB unavailable" in result.skip_message
    assert after == json.loads(behind)  # the cursor did not move


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_the_requested_run_fills_the_gap_with_the_simulators_klines(simulator, instance, mongo_uri, mongo_db_name,
                                                                    tmp_path):
    """The sensor's request, run in process as the daemon would launch it, against the real
    simulator and the embedded database: the gap holds the simulator's klines, minute for minute,
    and nothing else changed."""
    mongo = MongoResource(uri=mongo_uri, database=mongo_db_name)
    window_start = minute_window_start(live_window())
    outage = {window_start - timedelta(hours=2) + i * MINUTE for i in range(40)}
    since = window_start - timedelta(hours=3)
    seed(mongo, since, window_start, outage)
    _, cursor = tick(instance, mongo)
    request, _ = tick(instance, mongo, moved(cursor, 3))
    assert isinstance(request, RunRequest), request
    exchange = BinanceExchange(api_url=simulator.api_url, spool_dir=str(tmp_path))
    result = materialize([klines_history], instance=instance, tags=request.tags, selection=request.asset_selection,
                         resources={"exchange": exchange, "mongo": mongo, "capture_clock": CaptureClock()})
    assert result.success
    collection = mongo.get_store().collection("klines_1m")
    for symbol in COLLECTED:
        documents = {d["minute"].replace(tzinfo=UTC): d for d in collection.find(
            {"symbol": symbol, "minute": {"$gte": since, "$lt": window_start}}, {"_id": False})}
        assert len(documents) == 180  # every minute, once
        with_open_one = {m for m, d in documents.items() if d["open"] == 1.0}
        assert with_open_one == {since + i * MINUTE for i in range(180)} - outage  # the rest untouched
        filled = {m: d for m, d in documents.items() if m in outage}
        assert len(filled) == 40 and all(d["open"] != 1.0 and d["volume"] >= 0 for d in filled.values())
        truth = simulator_klines(simulator, symbol, min(outage), max(outage) + MINUTE)
        assert sorted(truth) == sorted(filled)
        assert all(filled[m]["close"] == float(kline[4]) for m, kline in truth.items())
    assert collection.count_documents({"symbol": "REFUSEDUSDT"}) == 0

