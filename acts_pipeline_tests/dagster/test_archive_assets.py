"""`daily_archive` and `mongo_retention` in process, against the real embedded database: the
materialization's metadata gives each collection's rows, bytes, sha256 and path; retention
deletes the verified expired days and says what it kept and why; the schedule asks for
yesterday's partition shortly after midnight UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from dagster import DagsterInstance, Definitions, build_schedule_context, materialize

from acts_pipeline.orchestration.archive_assets import (
    ASSETS,
    JOBS,
    SCHEDULES,
    ArchiveResource,
    daily_archive,
    mongo_retention,
)
from acts_pipeline.storage import MongoIOManager, MongoResource, MongoStore
from acts_pipeline.storage.archive import Archive

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DAY = "2026-11-20"
MIDNIGHT = datetime(2026, 11, 20, tzinfo=UTC)
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def resources(mongo_uri, mongo_db_name, tmp_path):
    mongo = MongoResource(uri=mongo_uri, database=mongo_db_name)
    store = MongoStore.connect(mongo_uri, mongo_db_name)
    for day in (MIDNIGHT - timedelta(days=1), MIDNIGHT):
        minutes = [day + timedelta(minutes=m) for m in range(0, 1440, 120)]  # 12 a day
        store.upsert("order_book_snapshots", [
            {"symbol": s, "minute": m, "captured_at": m + timedelta(seconds=60), "requested_at": m + timedelta(seconds=60),
             "last_update_id": 1, "depth_limit": 2, "bids": [[10.0, 1.0], [9.0, 2.0]], "asks": [[11.0, 1.0]],
             "source": "rest"} for s in SYMBOLS for m in minutes])
        store.upsert("order_book_features", [{"symbol": s, "minute": m, "mid_price": 10.5}
                                             for s in SYMBOLS for m in minutes])
    # the code location's I/O manager is present, as in production: the assets must not use it
    return {"mongo": mongo, "archive": ArchiveResource(root=str(tmp_path / "archive"), snapshot_retention_days="5"),
            "io_manager": MongoIOManager(mongo=mongo)}


def test_daily_archive_records_rows_checksum_and_path_per_collection(resources, tmp_path):
    with DagsterInstance.ephemeral() as instance:
        result = materialize([daily_archive], partition_key=DAY, resources=resources, instance=instance)
        assert result.success
        [event] = result.asset_materializations_for_node("daily_archive")
        metadata = {key: getattr(value, "value", value) for key, value in event.metadata.items()}
    assert metadata["snapshots_rows"] == 24 and metadata["features_rows"] == 24 and metadata["klines_rows"] == 0
    archive = Archive(str(tmp_path / "archive"))
    entry = archive.manifest(DAY).files["order_book_snapshots"]
    assert metadata["snapshots_sha256"] == entry.sha256 == archive.sha256(entry.path)
    assert metadata["snapshots_bytes"] == entry.bytes
    assert metadata["snapshots_path"] == str(tmp_path / "archive" / "order_book_snapshots" / "date=2026-11-20" /
                                             "part-0.parquet")
    assert len(pd.read_parquet(metadata["snapshots_path"])) == 24
    assert metadata["klines_path"] == "(no documents that day)"
    assert "| order_book_snapshots | 24 |" in metadata["files"]


def test_mongo_retention_deletes_verified_expired_days_and_says_what_it_kept(resources, mongo_uri, mongo_db_name):
    with DagsterInstance.ephemeral() as instance:
        assert materialize([daily_archive], partition_key=DAY, resources=resources, instance=instance).success
        result = materialize([mongo_retention], resources=resources, instance=instance)
        assert result.success
        [event] = result.asset_materializations_for_node("mongo_retention")
        metadata = {key: getattr(value, "value", value) for key, value in event.metadata.items()}
    # snapshots kept 5 days: 11-19 (not archived) and 11-20 (archived) are both long expired
    assert metadata["snapshots_retention_days"] == "5" and metadata["features_retention_days"] == "forever"
    assert (metadata["snapshots_deleted"], metadata["snapshots_days_deleted"], metadata["snapshots_days_kept"]) == (
        24, 1, 1)
    assert metadata["features_deleted"] == 0
    assert "| order_book_snapshots | 2026-11-19 | 0 | 24 | not archived |" in metadata["days"]
    store = MongoStore.connect(mongo_uri, mongo_db_name)
    left = sorted({d["minute"].date().isoformat() for d in store.find_all("order_book_snapshots")})
    assert left == ["2026-11-19"]


def test_a_bad_retention_setting_fails_the_run_naming_the_variable(resources):
    resources = {**resources, "archive": ArchiveResource(root=resources["archive"].root, klines_retention_days="0")}
    result = materialize([mongo_retention], resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "ACTS_KLINES_RETENTION_DAYS must be between 1 and" in failure.event_specific_data.error.to_string()


def test_the_schedule_asks_for_yesterday_shortly_after_midnight_utc(resources):
    definitions = Definitions(assets=ASSETS, jobs=JOBS, schedules=SCHEDULES, resources=resources)
    assert {s.name for s in SCHEDULES} == {"daily_archive_schedule", "mongo_retention_schedule"}
    schedule = definitions.get_schedule_def("daily_archive_schedule")
    assert schedule.cron_schedule == "15 0 * * *" and schedule.execution_timezone == "UTC"
    context = build_schedule_context(scheduled_execution_time=datetime(2026, 12, 1, 0, 15, tzinfo=UTC))
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-30"
    assert definitions.get_schedule_def("mongo_retention_schedule").cron_schedule == "45 0 * * *"
