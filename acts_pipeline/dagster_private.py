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
"""

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
]
