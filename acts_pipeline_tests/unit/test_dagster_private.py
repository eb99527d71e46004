"""Pins what ACTS relies on in Dagster's private modules (`acts_pipeline.dagster_private`), so an
upgrade that changes it fails here, by name, before the minute runs do. The behaviour itself is
tested where it is used: `dagster/test_assets.py` (per-cell events), `dagster/test_event_log.py`
(the batched event log)."""

import inspect

from dagster import AssetKey

from acts_pipeline import dagster_private as private


def test_the_defer_tag_is_the_one_the_framework_reads():
    # The minute runs carry it so that the framework records no all-or-nothing events of its own.
    assert private.EXTERNALLY_MANAGED_ASSETS_TAG == "dagster/defer_asset_events"


def test_the_step_event_constructors_the_io_manager_calls():
    assert list(inspect.signature(private.DagsterEvent.asset_materialization).parameters) == [
        "step_context", "materialization", "batch_metadata"]
    assert list(inspect.signature(private.DagsterEvent.asset_observation).parameters) == [
        "step_context", "observation", "batch_metadata"]
    assert {"event_type", "step_context", "event_specific_data", "message"} <= set(
        inspect.signature(private.DagsterEvent.from_step).parameters)
    assert list(inspect.signature(private.DagsterEventBatchMetadata).parameters) == ["id", "is_end"]
    assert isinstance(private.generate_event_batch_id(), str)
    assert private.DagsterEventType.ASSET_FAILED_TO_MATERIALIZE.value == "ASSET_FAILED_TO_MATERIALIZE"
    failure = private.AssetMaterializationFailure(
        asset_key=AssetKey("order_book_snapshot"), partition="p",
        failure_type=private.AssetMaterializationFailureType.FAILED,
        reason=private.AssetMaterializationFailureReason.FAILED_TO_MATERIALIZE, description="why")
    assert private.AssetFailedToMaterializeData(failure).asset_materialization_failure.description == "why"


def test_the_sqlite_storage_methods_the_batched_event_log_builds_on():
    for name in ("_event_to_row", "_store_asset_event", "_store_asset_event_tags", "index_transaction",
                 "run_connection", "store_event_batch"):
        assert callable(getattr(private.SqliteEventLogStorage, name, None)), name
    assert {"id", "run_id", "event", "dagster_event_type", "asset_key", "partition"} <= set(
        private.SqlEventLogStorageTable.c.keys())


def test_the_schema_check_that_loads_alembic_scripts_once(monkeypatch):
    # Dagster's check on a SQLite storage's creation builds its ScriptDirectory through the name
    # in its module's globals, which `load_alembic_scripts_once` replaces.
    from alembic.script import ScriptDirectory
    from dagster._core.storage.sql import check_alembic_revision

    assert private.dagster_sql_storage.check_alembic_revision is check_alembic_revision
    assert "ScriptDirectory.from_config(alembic_config)" in inspect.getsource(check_alembic_revision)
    assert private.dagster_sql_storage.ScriptDirectory in (ScriptDirectory, private.ScriptDirectoryPerLocation)
    # the process's global is put back as it was after the test
    monkeypatch.setattr(private.dagster_sql_storage, "ScriptDirectory", ScriptDirectory)
    private.load_alembic_scripts_once()
    assert private.dagster_sql_storage.ScriptDirectory is private.ScriptDirectoryPerLocation
    assert issubclass(private.ScriptDirectoryPerLocation, ScriptDirectory)
