"""`daily_coverage` materialized in process against the real embedded database server: a day with
a gap is a WARN check result with the gap counts, a complete day passes, and the metadata carries
the completeness per collection, the gaps table and the heatmap."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, Definitions, materialize

from acts_pipeline.orchestration import coverage_assets
from acts_pipeline.orchestration.coverage_assets import CHECK_NAME, daily_coverage
from acts_pipeline.orchestration.history_partitions import day_partitions
from acts_pipeline.storage import MongoStore
from acts_pipeline.storage.io_manager import MongoResource

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
DAY = datetime(2026, 11, 29, tzinfo=UTC)
M = timedelta(minutes=1)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


@pytest.fixture
def mongo(mongo_uri, mongo_db_name):
    """Two days: the 28th complete; on the 29th ETHUSDT misses snapshots 10:00-10:04 and its
    features of 10:00-10:04 too, and SOLUSDT is collected from 12:00 on (added mid-day)."""
    store = MongoStore.connect(mongo_uri, mongo_db_name)
    store.record_tracked(["BTCUSDT", "ETHUSDT"], DAY - timedelta(days=1))
    store.record_tracked(["SOLUSDT"], DAY + 12 * 60 * M)
    for name in ("order_book_snapshots", "order_book_features", "klines_1m"):
        documents = []
        for m in range(-1440, 1440):
            minute = DAY + m * M
            for symbol in SYMBOLS:
                if symbol == "SOLUSDT" and m < 12 * 60:
                    continue
                if symbol == "ETHUSDT" and 600 <= m < 605 and name != "klines_1m":
                    continue
                documents.append({"symbol": symbol, "minute": minute})
        store.insert_or_replace(name, documents)
    return MongoResource(uri=mongo_uri, database=mongo_db_name)


def run(instance, mongo, day):
    result = materialize([daily_coverage], partition_key=f"{day:%Y-%m-%d}", instance=instance,
                         resources={"mongo": mongo})
    assert result.success
    (materialization,) = result.asset_materializations_for_node("daily_coverage")
    (evaluation,) = result.get_asset_check_evaluations()
    return {k: v.value for k, v in materialization.metadata.items()}, evaluation


def test_a_day_with_gaps_warns_with_the_counts(instance, mongo):
    metadata, evaluation = run(instance, mongo, DAY)
    assert evaluation.check_name == CHECK_NAME
    assert evaluation.passed is False and evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.partition == "2026-11-29"
    assert evaluation.metadata["symbols_with_gaps"].value == 1
    assert evaluation.metadata["missing_minutes"].value == 10
    assert "snapshots 1 symbols, 5 minutes; features 1 symbols, 5 minutes" in evaluation.description
    expected = 1440 * 2 + 720  # SOLUSDT from 12:00
    assert metadata["snapshots_complete_pct"] == pytest.approx(round(100 * (expected - 5) / expected, 3))
    assert metadata["klines_complete_pct"] == 100.0
    assert (metadata["snapshots_symbols_with_gaps"], metadata["klines_symbols_with_gaps"]) == (1, 0)
    assert (metadata["symbols_with_gaps"], metadata["missing_minutes"], metadata["symbols_tracked"]) == (1, 10, 3)
    rows = [r.data for r in metadata["gaps"].records]
    assert rows == [
        {"collection": "features", "symbol": "ETHUSDT", "expected": 1440, "stored": 1435, "missing": 5,
         "complete_pct": 99.65, "missing_ranges": "10:00-10:04"},
        {"collection": "snapshots", "symbol": "ETHUSDT", "expected": 1440, "stored": 1435, "missing": 5,
         "complete_pct": 99.65, "missing_ranges": "10:00-10:04"},
    ]
    heatmap = metadata["heatmap"]
    assert heatmap.startswith("![completeness per symbol and hour](data:image/svg+xml;base64,")
    svg = base64.b64decode(heatmap.split(",", 1)[1].rstrip(")")).decode()
    assert ">ETHUSDT<" in svg and ">BTCUSDT<" not in svg


def test_a_complete_day_passes(instance, mongo):
    metadata, evaluation = run(instance, mongo, DAY - timedelta(days=1))
    assert evaluation.passed is True
    assert evaluation.metadata["missing_minutes"].value == 0
    assert metadata["symbols_tracked"] == 2  # SOLUSDT was not tracked yet
    assert metadata["gaps"].records == [] and metadata["missing_minutes"] == 0
    assert all(metadata[f"{c}_complete_pct"] == 100.0 for c in ("snapshots", "features", "klines"))


def test_the_module_s_definitions_load_and_the_schedule_runs_yesterday_after_midnight_utc():
    defs = Definitions(assets=coverage_assets.ASSETS, jobs=coverage_assets.JOBS, schedules=coverage_assets.SCHEDULES,
                       resources={"mongo": MongoResource()})
    schedule = defs.get_schedule_def("daily_coverage_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("10 0 * * *", "UTC")
    assert defs.resolve_job_def("daily_coverage_job").partitions_def == day_partitions
