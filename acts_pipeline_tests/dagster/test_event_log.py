"""The batched SQLite event log: a batch of cell materializations leaves the storage exactly as
the per-event path does, and the platform's instance uses it."""

import shutil
import time
from pathlib import Path

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance, materialize
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.test_utils import instance_for_test

from acts_pipeline.orchestration.assets import order_book_features, order_book_snapshot
from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS
from acts_pipeline.platform.event_log import EVENT_BATCH_SIZE_VARIABLE, BatchedSqliteEventLogStorage
from acts_pipeline.orchestration.partitions import minute_range_tags
from acts_pipeline.storage import MongoIOManager
from acts_pipeline_tests.dates import iso_instant, minute_key, recent_minute
from acts_pipeline_tests.fakes import rest_books, CAPTURED_SYMBOLS, FakeClient, FixedClock, MongomockResource, fake_exchange

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "0f0f0f0f-aaaa-bbbb-cccc-000000000001"
MINUTE = recent_minute(10, 0)


def materialization(asset: str, partition: str, at: float, **tags: str) -> EventLogEntry:
    data = StepMaterializationData(AssetMaterialization(
        asset_key=asset, partition=partition, metadata={"levels": 100}, tags=tags or None))
    event = DagsterEvent(DagsterEventType.ASSET_MATERIALIZATION.value, "minute_job",
                         event_specific_data=data, step_key=asset)
    return EventLogEntry(error_info=None, level=20, user_message="", run_id=RUN_ID, timestamp=at,
                         step_key=asset, job_name="minute_job", dagster_event=event)


def run_start(at: float) -> EventLogEntry:
    event = DagsterEvent(DagsterEventType.RUN_START.value, "minute_job")
    return EventLogEntry(error_info=None, level=20, user_message="", run_id=RUN_ID, timestamp=at,
                         job_name="minute_job", dagster_event=event)


def cells(at: float) -> list[EventLogEntry]:
    symbols = ["BTCUSDT", "ETHUSDT", "NKNUSDT", "RUNEEUR"]
    return ([materialization("order_book_snapshot", minute_key(MINUTE, s), at + i, **{"dagster/partition/symbol": s})
             for i, s in enumerate(symbols)]
            + [materialization("order_book_features", minute_key(MINUTE, s), at + 10 + i) for i, s in enumerate(symbols)])


def state(storage: SqliteEventLogStorage) -> dict:
    """Everything the UI and the sensors read about assets, with storage ids included."""
    out = {}
    for asset in ("order_book_snapshot", "order_book_features"):
        key = AssetKey(asset)
        records = storage.fetch_materializations(key, limit=100).records
        entry = storage.get_asset_records([key])[0].asset_entry
        out[asset] = {
            "materialized": sorted(storage.get_materialized_partitions(key)),
            "records": [(r.storage_id, r.partition_key, r.timestamp, r.event_log_entry.dagster_event.event_specific_data)
                        for r in records],
            "last": (entry.last_materialization_record.storage_id, entry.last_materialization.timestamp,
                     entry.last_run_id),
            "latest_by_partition": dict(
                                    storage.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)),
            "tags": storage.get_event_tags_for_asset(key),
        }
    out["run_log"] = [(e.timestamp, e.dagster_event.event_type_value, e.dagster_event.partition)
                      for e in storage.get_logs_for_run(RUN_ID)]
    return out


def test_a_batch_leaves_the_storage_as_the_per_event_path_does(tmp_path):
    batched = BatchedSqliteEventLogStorage(base_dir=str(tmp_path / "batched"))
    plain = SqliteEventLogStorage(base_dir=str(tmp_path / "plain"))
    now = time.time()
    for events in (cells(now), cells(now + 60)):  # a second minute over the first
        batched.store_event_batch(events)
        for event in events:
            plain.store_event(event)
    got, expected = state(batched), state(plain)
    assert got == expected
    assert len(got["order_book_snapshot"]["materialized"]) == 4
    assert len(got["run_log"]) == 16
    assert got["order_book_snapshot"]["tags"] and all(t["dagster/partition/symbol"] for t in got["order_book_snapshot"]["tags"])


def test_a_batch_with_other_events_goes_through_the_per_event_path(tmp_path, monkeypatch):
    batched = BatchedSqliteEventLogStorage(base_dir=str(tmp_path / "batched"))
    stored_one_by_one = []
    monkeypatch.setattr(batched, "store_event", lambda e: stored_one_by_one.append(e))
    events = [run_start(time.time()), *cells(time.time())]
    batched.store_event_batch(events)
    assert stored_one_by_one == events


def test_an_empty_batch_opens_no_shard(tmp_path, monkeypatch):
    """An empty batch writes nothing and opens neither the run shards nor the index shard: with
    no events there is no run to name a shard by, and an index transaction would be an empty
    commit. Every storage path is made to fail, so any database access shows."""
    batched = BatchedSqliteEventLogStorage(base_dir=str(tmp_path / "batched"))
    batched.store_event_batch(cells(time.time()))
    before = state(batched)

    def touched(*args, **kwargs):
        raise AssertionError("an empty batch touched the storage")

    for method in ("run_connection", "index_connection", "index_transaction", "store_event"):
        monkeypatch.setattr(batched, method, touched)
    batched.store_event_batch([])
    monkeypatch.undo()
    assert state(batched) == before


def test_the_platform_instance_uses_it_under_dagster_home(tmp_path, monkeypatch):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, BatchedSqliteEventLogStorage)
        assert Path(storage._base_dir) == tmp_path / "history" / "runs"  # noqa: SLF001 - where the default keeps it


def test_a_minute_run_stores_its_cell_events_in_batches(tmp_path, monkeypatch):
    """A per-cell minute run on an instance with the batched storage and the batch size set:
    the cells' materializations reach `store_event_batch` as one batch per output, and the
    materialized partitions are the stored cells."""
    monkeypatch.setenv(EVENT_BATCH_SIZE_VARIABLE, "10000")
    batches = []
    original = BatchedSqliteEventLogStorage.store_event_batch

    def spy(self, events):
        batches.append([e.dagster_event.asset_key.to_user_string() for e in events])
        original(self, events)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "store_event_batch", spy)
    overrides = {"event_log_storage": {"module": "acts_pipeline.platform.event_log", "class": "BatchedSqliteEventLogStorage",
                                       "config": {"base_dir": str(tmp_path / "events")}}}
    with instance_for_test(overrides=overrides) as instance:
        instance.add_dynamic_partitions("symbols", list(CAPTURED_SYMBOLS))
        clock = FixedClock(at=iso_instant(MINUTE, minutes=1, milliseconds=4))
        client = FakeClient(now=clock.now)
        result = materialize(
            [order_book_snapshot, order_book_features], instance=instance,
            tags={**minute_range_tags(MINUTE, list(CAPTURED_SYMBOLS)), **PER_CELL_EVENTS_TAGS},
            resources={"exchange": fake_exchange(client), "book_source": rest_books(), "capture_clock": clock,
                       "io_manager": MongoIOManager(mongo=MongomockResource(database="event_log_batches"))},
        )
        assert result.success
        assert batches == [["order_book_snapshot"] * 4, ["order_book_features"] * 4]
        expected = sorted(minute_key(MINUTE, s) for s in CAPTURED_SYMBOLS)
        for asset in ("order_book_snapshot", "order_book_features"):
            assert sorted(instance.get_materialized_partitions(AssetKey(asset))) == expected


@pytest.mark.parametrize("config", [{}, None])
def test_without_base_dir_or_dagster_home_it_says_what_is_missing(monkeypatch, config):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ValueError, match="base_dir.*DAGSTER_HOME"):
        BatchedSqliteEventLogStorage.from_config_value(None, config)


def test_instances_after_the_first_check_their_schema_without_reloading_alembic_scripts(tmp_path, monkeypatch):
    """The platform's instance (dev `dagster.yaml`), created again and again as the code server does
    for every sensor evaluation: each SQLite storage's schema check reads alembic's migration
    scripts once per process, not once per instance (`dagster_private.load_alembic_scripts_once`)."""
    from alembic.script import ScriptDirectory

    from acts_pipeline import dagster_private

    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    # as in a fresh process: building the platform's event log is what turns it on
    monkeypatch.setattr(dagster_private.dagster_sql_storage, "ScriptDirectory", ScriptDirectory)
    with DagsterInstance.get() as instance:
        ref = instance.get_ref()
        instance.get_dynamic_partitions("symbols")  # the index shard's check too
    monkeypatch.setattr(dagster_private.ScriptDirectoryPerLocation, "loaded", {})
    loads: list[str] = []
    load = ScriptDirectory.from_config

    def counted(config):
        loads.append(config.get_main_option("script_location"))
        return load(config)

    monkeypatch.setattr(ScriptDirectory, "from_config", counted)
    for _ in range(3):
        with DagsterInstance.from_ref(ref) as again:
            assert again.get_dynamic_partitions("symbols") == []
            again.add_dynamic_partitions("symbols", ["BTCUSDT"])
            again.delete_dynamic_partition("symbols", "BTCUSDT")
    # Dagster's SQLite storages (runs, schedules, the event log's shards) share one script
    # location: loaded once for three instances, where each instance loaded it three times or more
    assert len(loads) == 1, loads


def test_the_schema_check_still_reads_the_database_revision_every_time(tmp_path, monkeypatch):
    """Only the scripts are kept: a SQLite database at an older revision (or none) is still
    reported as such against the same head, as Dagster's own check does with fresh scripts."""
    from alembic.script import ScriptDirectory
    from dagster._core.storage import sql as dagster_sql
    from dagster._core.storage.event_log.sqlite import sqlite_event_log
    from sqlalchemy import create_engine

    from acts_pipeline.dagster_private import ScriptDirectoryPerLocation, load_alembic_scripts_once

    monkeypatch.setattr(dagster_sql, "ScriptDirectory", ScriptDirectory)  # put back after the test
    load_alembic_scripts_once()
    assert dagster_sql.ScriptDirectory is ScriptDirectoryPerLocation
    config = dagster_sql.get_alembic_config(sqlite_event_log.__file__)
    fresh = ScriptDirectory.from_config(config)
    head = fresh.as_revision_number("head")
    oldest = list(fresh.walk_revisions())[-1].revision
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.connect() as conn:
        assert dagster_sql.check_alembic_revision(config, conn) == (None, head)
        dagster_sql.stamp_alembic_rev(config, conn, rev=oldest)
        assert dagster_sql.check_alembic_revision(config, conn) == (oldest, head)
        dagster_sql.stamp_alembic_rev(config, conn, rev="head")
        assert dagster_sql.check_alembic_revision(config, conn) == (head, head)
    assert ScriptDirectoryPerLocation.from_config(config) is ScriptDirectoryPerLocation.from_config(config)
