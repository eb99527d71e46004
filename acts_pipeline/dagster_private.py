"""Every private Dagster name ACTS uses, in one place, each with why no public one does the job.

A Dagster upgrade that moves or changes one of these fails `acts_pipeline_tests/unit/
test_dagster_private.py` (and the tests of the two modules that use them) in CI, not the minute
runs in production. Nothing else in `acts_pipeline` imports `dagster._...`.

Per-cell events of a range run (`acts_pipeline.storage.cell_events`): Dagster has no public way
to record one partition of a single-run range as materialized and another as failed (its issue
#17836). The run's `dagster/defer_asset_events` tag stops the framework's own all-or-nothing
events, and the I/O manager writes one event per cell with the step's event constructors
(`DagsterEvent.asset_materialization`, `.asset_observation`, `.from_step`), batched with
`DagsterEventBatchMetadata` so the event log stores them in one write.

The batched SQLite event log (`acts_pipeline.platform.event_log`): Dagster's own
`SqliteEventLogStorage` writes each event in two transactions; the subclass writes a batch in
one, into the same tables (`SqlEventLogStorageTable`), through the storage's own row helpers.

Alembic's scripts loaded once per process (`load_alembic_scripts_once`, called when the batched
SQLite event log is built): every SQLite storage (runs, schedules, the event log's index shard and
each run's shard) checks its schema on creation with `dagster._core.storage.sql.
check_alembic_revision`, which builds a new `alembic.script.ScriptDirectory` each time, reading
and executing every migration script (about 90 files; three times or more per instance). A
sensor evaluation with resources creates a new `DagsterInstance` (`SensorEvaluationContext.
resources`), so the code server paid about 60 ms of CPU for it 16 times a minute (the minute
sensor ticks every 5 s), and every run process and shard connection paid it again. The head revision cannot change while a
process runs, so the check's `ScriptDirectory` comes from one per script location; the database's
own revision is still read every time. Dagster has no setting for it. dagster-postgres does not
check on creation (`deploy/dagster.yaml` is unaffected).
"""

from typing import ClassVar

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from dagster._core.definitions.events import (
    AssetMaterializationFailure,
    AssetMaterializationFailureReason,
    AssetMaterializationFailureType,
)
from dagster._core.events import (
    AssetFailedToMaterializeData,
    DagsterEvent,
    DagsterEventBatchMetadata,
    DagsterEventType,
    generate_event_batch_id,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage import sql as dagster_sql_storage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.tags import EXTERNALLY_MANAGED_ASSETS_TAG
from dagster._serdes import ConfigurableClassData

__all__ = [
    "EXTERNALLY_MANAGED_ASSETS_TAG",
    "AssetFailedToMaterializeData",
    "AssetMaterializationFailure",
    "AssetMaterializationFailureReason",
    "AssetMaterializationFailureType",
    "ConfigurableClassData",
    "DagsterEvent",
    "DagsterEventBatchMetadata",
    "DagsterEventType",
    "EventLogEntry",
    "SqlEventLogStorageTable",
    "SqliteEventLogStorage",
    "generate_event_batch_id",
    "load_alembic_scripts_once",
]


class ScriptDirectoryPerLocation(ScriptDirectory):
    """`ScriptDirectory` whose `from_config` returns one instance per script location, loaded on
    first use (its revision map is built once, then kept with it)."""

    loaded: ClassVar[dict[tuple[str | None, str | None], ScriptDirectory]] = {}

    @classmethod
    def from_config(cls, config: AlembicConfig) -> ScriptDirectory:
        key = (config.get_main_option("script_location"), config.get_main_option("version_locations"))
        script = cls.loaded.get(key)
        if script is None:  # Dagster calls it under its own `_alembic_lock`
            script = cls.loaded[key] = ScriptDirectory.from_config(config)
        return script


def load_alembic_scripts_once() -> None:
    """From now on in this process, Dagster's schema check on a SQLite storage's creation reads
    alembic's scripts once (Dagster's SQLite storages share one script location), not every time
    (module docstring). Idempotent."""
    dagster_sql_storage.ScriptDirectory = ScriptDirectoryPerLocation
