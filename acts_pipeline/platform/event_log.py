"""Dagster's SQLite event log, writing a batch of materializations in one transaction.

A minute run at 500 symbols records 1,500 materializations (one per stored (asset, symbol) cell,
see `acts_pipeline.storage.cell_events`). Dagster's `SqliteEventLogStorage.store_event` writes each one with two fresh
SQLAlchemy engines and two committed transactions (the run's shard, then the cross-run index
shard, with its asset-key row updated every time), and the base `store_event_batch` just loops
over it: about 8 ms of CPU per cell, 12 core-seconds a minute at 500 symbols
(`benchmarks/minute_collection.py`).

`BatchedSqliteEventLogStorage.store_event_batch` writes the same rows, in the same tables, in
one transaction per shard: every event in the run shard with one multi-row insert; in the index
shard each event (one insert each, for its id), its indexed tags in one insert, and the asset
key's "last materialization" row once per asset, from the last event of the batch (what the
per-event loop leaves there too). Batches holding anything but materializations go through the
per-event path unchanged.

Dagster hands batches to the storage only when `DAGSTER_EVENT_BATCH_SIZE` is set in the run
process's environment (`acts-pipeline dev` sets it; production sets it on the daemon and code
server); the I/O manager tags the cell materializations of one output as one batch. Without the
variable, events are stored one by one as usual. On PostgreSQL (`deploy/dagster.yaml`) this class
is not used: dagster-postgres's own `store_event_batch` already writes a batch of
materializations as one multi-row insert and one index transaction.

Configure it in `dagster.yaml` in place of the default SQLite event log:

    event_log_storage:
      module: acts_pipeline.platform.event_log
      class: BatchedSqliteEventLogStorage

`base_dir` defaults to `$DAGSTER_HOME/history/runs`, where the default storage keeps it, so an
existing instance keeps its history.

Building it also makes the process's SQLite storages check their schema against alembic scripts
loaded once (`acts_pipeline.dagster_private.load_alembic_scripts_once`): about 60 ms of CPU less
for every `DagsterInstance` created after the first, which the code server does for each sensor
evaluation.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import Field, StringSource

from acts_pipeline.dagster_private import (
    ConfigurableClassData,
    DagsterEventType,
    EventLogEntry,
    SqlEventLogStorageTable,
    SqliteEventLogStorage,
    load_alembic_scripts_once,
)

#: The environment variable Dagster reads to hand events to `store_event_batch`, and the value
#: `acts-pipeline dev` gives it (a minute run's largest batch is one output's cells: one per symbol).
EVENT_BATCH_SIZE_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = "10000"


def default_base_dir() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError("BatchedSqliteEventLogStorage needs `base_dir` in its config or DAGSTER_HOME set")
    return os.path.join(home, "history", "runs")


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log storage whose `store_event_batch` uses one transaction per shard."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        # Every later SQLite storage of this process (the next sensor evaluation's instance, each
        # run's shard) checks its schema without reloading alembic's scripts: `dagster_private`.
        load_alembic_scripts_once()
        super().__init__(base_dir=base_dir or default_base_dir(), inst_data=inst_data)

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **dict(config_value or {}))

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not events:
            return
        if not all(_is_materialization(event) for event in events):
            super().store_event_batch(events)
            return
        # Each event is serialized once, for both shards (the base class's per-event path, and
        # `prepare_insert_event`, serialize it again for the index and compile a statement with
        # its values inlined: two thirds of the cost of a batch, by profile).
        rows = [self._event_to_row(event) for event in events]
        by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_run[row["run_id"]].append(row)
        for run_id, run_rows in by_run.items():
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), run_rows)

        insert = SqlEventLogStorageTable.insert()  # one statement, compiled once, for every row
        with self.index_transaction() as conn:
            event_ids: list[int] = []
            for row in rows:
                result = conn.execute(insert, row)
                try:
                    event_ids.append(result.inserted_primary_key[0])
                finally:
                    result.close()
            self._store_asset_event_tags(conn, events, event_ids)
            last_of_asset = {}
            for event, event_id in zip(events, event_ids, strict=True):
                last_of_asset[event.get_dagster_event().asset_key] = (event, event_id)
            for event, event_id in last_of_asset.values():
                self._store_asset_event(conn, event, event_id)


def _is_materialization(event: EventLogEntry) -> bool:
    return event.is_dagster_event and event.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION
