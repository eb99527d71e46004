"""Honest per-cell status for runs that cover many (minute, symbol) cells in one step.

Dagster's default for a partition-range step is all or nothing: when the step succeeds it records
a materialization for *every* key of the range, and when it raises it marks every key failed
(Dagster issue #17836). A minute run covers all symbols, so by default one delisted symbol would
either fail the whole minute or show as materialized with no data behind it.

The mechanism used here:

- Runs requested by `minute_sensor` carry Dagster's `dagster/defer_asset_events` tag
  (`EXTERNALLY_MANAGED_ASSETS_TAG`): the framework then records no materialization of its own
  for the step's outputs (and no "planned" events), leaving asset events to the code that knows
  what was stored.
- The MongoDB I/O manager, after its bulk upsert, emits one `AssetMaterialization` per cell it
  really stored (with that cell's own metadata), and one `ASSET_FAILED_TO_MATERIALIZE` event
  (an `AssetMaterializationFailure` with the cell's partition) per cell of the range that it
  did not store. The writes still go through the I/O manager's own storage code.
- Downstream steps of the same run load only stored cells, so a symbol with no snapshot gets
  no features either, and is reported failed there too.

In the UI a stored cell is materialized and a failed one is not (it shows as missing), and the
run still succeeds when at least one cell was stored. The failure events are written to the run's
log; open-source event storages (SQLite, Postgres) do not keep this event type
(`can_store_asset_failure_events` is False there), so on them the failed cell is "missing", and
the step's log says why, with an error line per cell.

Runs without the tag (the UI's Materialize, a backfill, `dagster asset materialize`): a tag cannot
be added to a run once it exists, and Dagster writes its own event for every cell of the range
when the output handling returns. When every cell was stored that is the truth. When some were
not, the I/O manager writes the stored cells' materializations itself and then fails the step,
so Dagster writes nothing more: the cells without data are not marked materialized (the failure
names them), and the steps after it in that run are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dagster import AssetMaterialization, AssetObservation, OutputContext

from acts_pipeline.core.cells import Cell
from acts_pipeline.dagster_private import (
    EXTERNALLY_MANAGED_ASSETS_TAG,
    AssetFailedToMaterializeData,
    AssetMaterializationFailure,
    AssetMaterializationFailureReason,
    AssetMaterializationFailureType,
    DagsterEvent,
    DagsterEventBatchMetadata,
    DagsterEventType,
    generate_event_batch_id,
)

#: Put on a run's tags to have its asset events emitted per cell by the MongoDB I/O manager.
PER_CELL_EVENTS_TAGS = {EXTERNALLY_MANAGED_ASSETS_TAG: "true"}


def events_are_per_cell(context: OutputContext) -> bool:
    try:
        tags = context.step_context.dagster_run.tags
    except Exception:  # noqa: BLE001 - an output context built outside a run has no run
        return False
    return str(tags.get(EXTERNALLY_MANAGED_ASSETS_TAG, "")).lower() == "true"


#: What a missing cell's events say when the step gave no reason for it.
NO_REASON = "the step produced no document for it (its log says why)"


def cell_events(context: OutputContext, stored: Mapping[Cell, Mapping[str, Any]],
                missing: Iterable[Cell], reasons: Mapping[str, str]) -> Iterator[DagsterEvent]:
    """A materialization per stored cell, and per missing one a failure event and an observation
    saying why (`reasons`, keyed `minute|symbol`).

    Open-source event storages drop the failure event, and the UI shows the cell as missing; the
    observation is kept, so the cell's own page in the UI says that it failed and why.

    The events are built with `DagsterEvent.from_step`, which writes them to the run's event log
    (a bare `DagsterEvent` handed back by an I/O manager is passed along, not stored). The
    materializations share one batch id, so with `DAGSTER_EVENT_BATCH_SIZE` set the instance
    writes them in batches instead of one transaction per cell.
    """
    step_context = context.step_context
    batch_id = generate_event_batch_id()
    last = len(stored) - 1
    for index, (cell, metadata) in enumerate(stored.items()):
        materialization = AssetMaterialization(
            asset_key=context.asset_key, partition=cell.partition_key, metadata=dict(metadata))
        yield DagsterEvent.asset_materialization(
            step_context, materialization, DagsterEventBatchMetadata(batch_id, index == last))
    for cell in missing:
        reason = reasons.get(str(cell), NO_REASON)
        yield DagsterEvent.asset_observation(step_context, AssetObservation(
            asset_key=context.asset_key, partition=cell.partition_key,
            description=f"failed to materialize: {reason}",
            metadata={"failed_to_materialize": reason}))
        failure = AssetMaterializationFailure(
            asset_key=context.asset_key,
            partition=cell.partition_key,
            failure_type=AssetMaterializationFailureType.FAILED,
            reason=AssetMaterializationFailureReason.FAILED_TO_MATERIALIZE,
            description=f"no data stored for {cell}: {reason}",
        )
        yield DagsterEvent.from_step(
            DagsterEventType.ASSET_FAILED_TO_MATERIALIZE, step_context, AssetFailedToMaterializeData(failure),
            message=f"{context.asset_key.to_user_string()} {cell} failed to materialize: {reason}")
