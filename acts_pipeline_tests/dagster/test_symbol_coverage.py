"""`symbol_month_coverage` materialized in process against the real embedded database server: one
run over a month x three symbols gives each (month, symbol) its own materialization (the days with
gaps and the month's heatmap), and one evaluation of `month_is_complete` that warns listing the
symbols with gaps; the monthly schedule asks for the month that just closed, every registered
symbol, in one run."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, build_schedule_context, instance_for_test, materialize

from acts_pipeline.orchestration.partitions import RANGE_END_TAG, RANGE_START_TAG
from acts_pipeline.orchestration.symbol_coverage import (
    CHECK_NAME,
    closed_days,
    symbol_month_coverage,
    symbol_month_coverage_schedule,
)
from acts_pipeline.storage import MongoStore
from acts_pipeline.storage.io_manager import MongoResource

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
MONTH = datetime(2026, 11, 1, tzinfo=UTC)
FIRST = datetime(2026, 11, 28, tzinfo=UTC)
M = timedelta(minutes=1)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


@pytest.fixture
def mongo(mongo_uri, mongo_db_name):
    """28 to 30 November: BTCUSDT complete; ETHUSDT misses snapshots and features on the 29th
    10:00-10:04; SOLUSDT is collected from the 29th 12:00 on. Nothing before the 28th is expected
    (the first two are tracked from then)."""
    store = MongoStore.connect(mongo_uri, mongo_db_name)
    store.record_tracked(["BTCUSDT", "ETHUSDT"], FIRST)
    solusdt_from = FIRST + timedelta(days=1, hours=12)
    store.record_tracked(["SOLUSDT"], solusdt_from)
    gap = [FIRST + timedelta(days=1, hours=10) + i * M for i in range(5)]
    for name in ("order_book_snapshots", "order_book_features", "klines_1m"):
        documents = []
        for m in range(3 * 1440):
            minute = FIRST + m * M
            for symbol in SYMBOLS:
                if symbol == "SOLUSDT" and minute < solusdt_from:
                    continue
                if symbol == "ETHUSDT" and minute in gap and name != "klines_1m":
                    continue
                documents.append({"symbol": symbol, "minute": minute})
        store.insert_or_replace(name, documents)
    return MongoResource(uri=mongo_uri, database=mongo_db_name)


def test_closed_days_stop_before_today_and_at_the_months_end():
    assert closed_days(MONTH, datetime(2026, 11, 3, 0, 20, tzinfo=UTC)) == [MONTH, MONTH + timedelta(days=1)]
    assert len(closed_days(MONTH, datetime(2026, 12, 5, tzinfo=UTC))) == 30
    assert closed_days(MONTH, MONTH + timedelta(hours=23)) == []


def test_one_run_gives_each_month_and_symbol_its_own_result(instance, mongo):
    result = materialize([symbol_month_coverage], instance=instance, resources={"mongo": mongo},
                         tags={RANGE_START_TAG: "2026-11-01|BTCUSDT", RANGE_END_TAG: "2026-11-01|SOLUSDT"})
    assert result.success
    materializations = {m.partition: {k: v.value for k, v in m.metadata.items()}
                        for m in result.asset_materializations_for_node("symbol_month_coverage")}
    assert sorted(materializations) == [f"2026-11-01|{s}" for s in SYMBOLS]
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK_NAME and evaluation.partition is None
    assert evaluation.passed is False and evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.description == "1 of 3 (month, symbol) with gaps: ETHUSDT 2026-11"
    assert [r.data for r in evaluation.metadata["symbols"].records] == [
        {"month": "2026-11", "symbol": "ETHUSDT", "snapshots_missing": 5, "features_missing": 5, "klines_missing": 0}]

    eth_meta = materializations["2026-11-01|ETHUSDT"]
    assert eth_meta["days_counted"] == 30  # November is closed
    assert (eth_meta["snapshots_missing_minutes"], eth_meta["features_missing_minutes"],
            eth_meta["klines_missing_minutes"]) == (5, 5, 0)
    assert eth_meta["snapshots_complete_pct"] == pytest.approx(round(100 * (3 * 1440 - 5) / (3 * 1440), 3))
    assert [r.data for r in eth_meta["gap_days"].records] == [
        {"day": "2026-11-29", "collection": "features", "missing": 5, "complete_pct": 99.65, "missing_ranges": "10:00-10:04"},
        {"day": "2026-11-29", "collection": "snapshots", "missing": 5, "complete_pct": 99.65, "missing_ranges": "10:00-10:04"},
    ]
    svg = base64.b64decode(eth_meta["heatmap"].split("base64,", 1)[1].rstrip(")")).decode()
    assert svg.startswith("<svg") and "ETHUSDT: 10 minute(s) missing" in svg and "Sun 29" in svg
    sol_meta = materializations["2026-11-01|SOLUSDT"]  # expected from the 29th 12:00 only
    assert sol_meta["snapshots_complete_pct"] == 100.0 and sol_meta["gap_days"].records == []
    btc = materializations["2026-11-01|BTCUSDT"]
    assert (btc["snapshots_missing_minutes"], btc["features_missing_minutes"]) == (0, 0)


def test_the_schedule_asks_for_the_month_that_holds_yesterday_every_symbol_one_run():
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        context = build_schedule_context(instance=instance,
                                         scheduled_execution_time=datetime(2026, 12, 1, 0, 20, tzinfo=UTC))
        request = symbol_month_coverage_schedule(context)
    assert request.tags[RANGE_START_TAG] == "2026-11-01|BTCUSDT"
    assert request.tags[RANGE_END_TAG] == "2026-11-01|SOLUSDT"
    assert [k.to_user_string() for k in request.asset_selection] == ["symbol_month_coverage"]
