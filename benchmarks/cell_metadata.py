"""Event-log bytes of the per-cell metadata: real minute runs with the metadata before aa86761 (the
batch's write counts) against the metadata after it (the cell's data, the minute table, an
observation per failed cell), in the same instance, alternated.

    python benchmarks/cell_metadata.py [--symbols 100] [--minutes 2] [--lead 30] [--warm-up 1] [--keep]

- **Servers**: the offline exchange simulator and the embedded MongoDB-compatible server, each
  its own process (`acts_pipeline.platform.processes`); `ACTS_BINANCE_API_URL` and `ACTS_MONGO_URI` point
  at them.
- **Instance**: a temporary DAGSTER_HOME holding a copy of the project's `dagster.yaml` (its
  `BatchedSqliteEventLogStorage`), with `DAGSTER_EVENT_BATCH_SIZE=10000` as `acts-pipeline dev`
  sets it. N TRADING symbols the simulator lists (`symbols_for`: USDT-quoted first) are
  registered as the `symbols` dynamic partitions.
- **Runs**: real minute runs, in this process, with dagster's `materialize()` of the assets of
  `minute_sensor`'s request for the current minute (`minute_run_request(minute, symbols)`: at
  100 symbols the three assets; above the klines budget, snapshot and features only), its tags
  (the partition range over every symbol, the per-cell events tag) and the code location's
  resources (`resources_from_environment()`, as the code location binds them).
  Each run starts `--lead` seconds (30, the sensor's `RUN_LEAD`) before its minute's close, so
  the snapshot step waits for the close and fetches the books then, as in the product. First
  `--warm-up` uncounted run(s) (the new code: they pay the instance's one-time rows, asset keys
  and the like), then `--minutes` runs of each variant, alternated: baseline, new, baseline, new.
  Each run is one wall minute. The asset checks are not run (the same events in both variants;
  leaving them out makes the ratio of the whole log larger, not smaller).
- **Baseline** (the product before aa86761), by patching for the duration of its runs only:
  `acts_pipeline.storage.io_manager.cell_metadata` becomes a copy of the old per-cell metadata (the batch's
  write summary `collection, documents_written, inserted, replaced, cells_without_data`, merged
  with the old `_cell_metadata`: `captured_at` as an ISO string, `seconds_after_close`,
  `bids_levels`/`asks_levels`). The old code computed the summary from the bulk write's result:
  `MongoStore.upsert` is wrapped to keep its last result per collection, which the copy reads
  (`cells_without_data` is the run's N cells minus the documents written: a minute run's range is
  one minute x N symbols). What aa86761 added to `order_book_features` goes through its context:
  the minute table is `context.log_event(AssetObservation(...))` and the reasons of failed cells
  are `context.add_output_metadata({"failed_cells": ...})`; `AssetExecutionContext.log_event`
  and `.add_output_metadata` are wrapped to drop exactly those two calls when the asset is
  `order_book_features` (the other assets' `failed_cells` metadata predates aa86761 and is
  kept). So the asset's body runs unchanged and returns the same features, as the old
  `compute_features(order_book_snapshot)` did (the table is still computed, not logged).
  `acts_pipeline.storage.io_manager.cell_events` is wrapped to drop the observation per failed cell and to
  give every failed cell the one old reason, as before. Nothing else differs.
- **Figures**, after each run: the SQLite write-ahead logs are checkpointed
  (`PRAGMA wal_checkpoint(TRUNCATE)`) and the `.db` files under `$DAGSTER_HOME/history`
  (`runs.db`, the index shard `runs/index.db`, the run shards `runs/<run id>.db`) are summed;
  the run added the difference, divided by the cells it stored (materializations in its shard:
  assets x N when nothing failed). From the run's shard: `sum(length(event))` of its
  `ASSET_MATERIALIZATION` rows per cell (also per asset), of its partition-less
  `ASSET_OBSERVATION` row (the minute table), of its per-cell observations (failed cells), and
  of all its rows. The materializations and observations are written twice, in the run's shard
  and in the index shard; the history bytes count both, with their indexes and page slack.
  SQLite keeps a row of about 2 to 4 KB alone in a 4 KB page (two do not fit in one), so a cell's
  event of 2.4 KB and one of 2.5 KB take the same disk space: on SQLite the history bytes move
  with the number of events and pages, not with a few bytes more per event (Postgres packs rows
  tighter; there the event bytes are the better guide).

It prints the machine, the product's revision and the load average at start and end, one table
(variant, runs, cells, history bytes per cell, materialization event bytes per cell, observation
bytes per run, all event bytes per run), the materialization bytes per asset, and the ratios
new / baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _platform import (  # noqa: E402
    PROJECT, git_revision, history_db_bytes, log, machine_line, print_grid, print_run_header, symbols_for)

BASELINE, NEW = "baseline (write counts)", "new (the data)"
ASSETS = ("order_book_snapshot", "order_book_features", "klines_1m")


# ------------------------------------------------------------------------------------------------
# the baseline: the per-cell metadata before aa86761


def old_cell_metadata_of_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """`acts_pipeline.storage._cell_metadata` (then in storage.py) as it was before aa86761 (a copy)."""
    metadata: dict[str, Any] = {}
    if "captured_at" in document:
        metadata["captured_at"] = document["captured_at"].isoformat()
        metadata["seconds_after_close"] = round(
            (document["captured_at"] - document["minute"]).total_seconds() - 60, 3)
    for side in ("bids", "asks"):
        if side in document:
            metadata[f"{side}_levels"] = len(document[side])
    return metadata


@contextlib.contextmanager
def baseline_code(n_symbols: int) -> Iterator[None]:
    """The product as before aa86761, for the runs inside the block (see the module doc)."""
    from dagster import AssetExecutionContext, AssetObservation

    import acts_pipeline.storage.io_manager as storage
    from acts_pipeline.orchestration.assets import order_book_features

    writes: dict[str, tuple[Any, int]] = {}  # collection -> (last WriteResult, documents in it)
    real_upsert = storage.MongoStore.upsert

    def upsert(self, name, documents):
        result = real_upsert(self, name, documents)
        writes[name] = (result, len(documents))
        return result

    def cell_metadata(collection: str, document: Mapping[str, Any]) -> dict[str, Any]:
        # handle_output before aa86761: {**summary, **_cell_metadata(doc)}, the summary from the
        # output's bulk write (the last upsert of that collection: older spooled batches go first)
        result, documents = writes[collection]
        summary = {"collection": collection, "documents_written": result.written,
                   "inserted": result.inserted, "replaced": result.replaced,
                   "cells_without_data": n_symbols - documents}
        return {**summary, **old_cell_metadata_of_document(document)}

    real_cell_events = storage.cell_events

    def cell_events(context, stored, missing, reasons):
        # before aa86761: no observation per failed cell; one reason for all (NO_REASON, the old text)
        for event in real_cell_events(context, stored, missing, {}):
            if not event.is_asset_observation:
                yield event

    features_key = order_book_features.key
    real_log_event = AssetExecutionContext.log_event
    real_add_output_metadata = AssetExecutionContext.add_output_metadata

    def log_event(self, event):
        if isinstance(event, AssetObservation) and self.asset_key == features_key:
            return None  # the minute table, added by aa86761
        return real_log_event(self, event)

    def add_output_metadata(self, metadata, output_name=None, mapping_key=None):
        if self.asset_key == features_key:  # its `failed_cells`, added by aa86761
            metadata = {k: v for k, v in metadata.items() if k != "failed_cells"}
            if not metadata:
                return None
        return real_add_output_metadata(self, metadata, output_name=output_name, mapping_key=mapping_key)

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(storage.MongoStore, "upsert", upsert))
        stack.enter_context(mock.patch.object(storage, "cell_metadata", cell_metadata))
        stack.enter_context(mock.patch.object(storage, "cell_events", cell_events))
        stack.enter_context(mock.patch.object(AssetExecutionContext, "log_event", log_event))
        stack.enter_context(mock.patch.object(AssetExecutionContext, "add_output_metadata", add_output_metadata))
        yield


# ------------------------------------------------------------------------------------------------
# measuring


@dataclass
class RunFigures:
    variant: str
    minute: datetime
    run_id: str
    success: bool
    history_bytes: int
    cells: int = 0                       # materializations in the run's shard
    materialization_bytes: int = 0
    per_asset: dict[str, tuple[int, int]] = field(default_factory=dict)  # asset -> (events, bytes)
    table_observations: int = 0
    table_observation_bytes: int = 0
    failed_cell_observations: int = 0
    failed_cell_observation_bytes: int = 0
    events: int = 0
    event_bytes: int = 0
    seconds: float = 0.0
    sample_metadata: dict[str, list[str]] = field(default_factory=dict)


def read_shard(home: Path, figures: RunFigures) -> None:
    from dagster._serdes import deserialize_value

    shard = home / "history" / "runs" / f"{figures.run_id}.db"
    with contextlib.closing(sqlite3.connect(f"file:{shard}?mode=ro", uri=True)) as db:
        for asset_key, count, size in db.execute(
                "SELECT asset_key, count(*), sum(length(event)) FROM event_logs "
                "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY asset_key"):
            name = asset_key.strip('[]"')
            figures.per_asset[name] = (count, size)
            figures.cells += count
            figures.materialization_bytes += size
        figures.table_observations, figures.table_observation_bytes = db.execute(
            "SELECT count(*), coalesce(sum(length(event)), 0) FROM event_logs "
            "WHERE dagster_event_type = 'ASSET_OBSERVATION' AND partition IS NULL").fetchone()
        figures.failed_cell_observations, figures.failed_cell_observation_bytes = db.execute(
            "SELECT count(*), coalesce(sum(length(event)), 0) FROM event_logs "
            "WHERE dagster_event_type = 'ASSET_OBSERVATION' AND partition IS NOT NULL").fetchone()
        figures.events, figures.event_bytes = db.execute(
            "SELECT count(*), sum(length(event)) FROM event_logs").fetchone()
        for name in ASSETS:
            row = db.execute("SELECT event FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                             "AND asset_key = ? LIMIT 1", (f'["{name}"]',)).fetchone()
            if row:
                entry = deserialize_value(row[0])
                figures.sample_metadata[name] = list(entry.asset_materialization.metadata)


def next_start(lead: timedelta) -> datetime:
    """Sleep until `lead` before the close of the next minute that still has that much left;
    return that minute."""
    from acts_pipeline.core.cells import floor_minute, minute_close

    now = datetime.now(UTC)
    minute = floor_minute(now)
    if minute_close(minute) - now < lead:
        minute += timedelta(minutes=1)
    start = minute_close(minute) - lead
    while (left := (start - datetime.now(UTC)).total_seconds()) > 0:
        time.sleep(min(left, 1.0))
    return minute


def minute_run(instance, home: Path, variant: str, symbols: list[str], lead: timedelta) -> RunFigures:
    from dagster import materialize

    from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
    from acts_pipeline.core.cells import format_minute
    from acts_pipeline.orchestration.sensors import minute_run_request
    from acts_pipeline.orchestration.environment import resources_from_environment

    before = history_db_bytes(home)
    minute = next_start(lead)
    resources = resources_from_environment()
    request = minute_run_request(minute, symbols, resources["exchange"].levels())
    assets = [a for a in (order_book_snapshot, order_book_features, klines_1m) if a.key in request.asset_selection]
    started = time.monotonic()
    with baseline_code(len(symbols)) if variant == BASELINE else contextlib.nullcontext():
        result = materialize(assets, instance=instance, tags=request.tags, raise_on_error=False,
                             resources=resources)
    seconds = time.monotonic() - started
    figures = RunFigures(variant, minute, result.run_id, result.success, history_db_bytes(home) - before,
                         seconds=seconds)
    read_shard(home, figures)
    log(f"{variant}: minute {format_minute(minute)} run {result.run_id[:8]} "
        f"{'succeeded' if result.success else 'FAILED'} in {seconds:.1f} s: {figures.cells} cells, "
        f"history +{figures.history_bytes:,} B, materializations {figures.materialization_bytes:,} B, "
        f"minute table {figures.table_observation_bytes:,} B, failed cells {figures.failed_cell_observations}")
    return figures


# ------------------------------------------------------------------------------------------------
# report


@dataclass
class Totals:
    runs: int = 0
    cells: int = 0
    history_bytes: int = 0
    materialization_bytes: int = 0
    observation_bytes: int = 0
    failed_cell_observations: int = 0
    event_bytes: int = 0
    per_asset: dict[str, list[int]] = field(default_factory=dict)

    def add(self, r: RunFigures) -> None:
        self.runs += 1
        self.cells += r.cells
        self.history_bytes += r.history_bytes
        self.materialization_bytes += r.materialization_bytes
        self.observation_bytes += r.table_observation_bytes + r.failed_cell_observation_bytes
        self.failed_cell_observations += r.failed_cell_observations
        self.event_bytes += r.event_bytes
        for name, (count, size) in r.per_asset.items():
            acc = self.per_asset.setdefault(name, [0, 0])
            acc[0] += count
            acc[1] += size

    @property
    def history_per_cell(self) -> float:
        return self.history_bytes / self.cells

    @property
    def materialization_per_cell(self) -> float:
        return self.materialization_bytes / self.cells


def report(runs: list[RunFigures], n_symbols: int, n_assets: int) -> None:
    print("\nper run:")
    print_grid(["variant", "minute", "ok", "s", "cells", "history B", "history B/cell", "mat. event B/cell",
                "minute table B", "failed-cell obs.", "all events", "all event B"],
               [[r.variant, f"{r.minute:%H:%M}", "yes" if r.success else "NO", f"{r.seconds:.1f}", r.cells,
                 f"{r.history_bytes:,}", f"{r.history_bytes / max(r.cells, 1):,.0f}",
                 f"{r.materialization_bytes / max(r.cells, 1):,.0f}", f"{r.table_observation_bytes:,}",
                 r.failed_cell_observations, r.events, f"{r.event_bytes:,}"] for r in runs])

    totals = {v: Totals() for v in (BASELINE, NEW)}
    for r in runs:
        totals[r.variant].add(r)
    print(f"\n{n_symbols} symbols x {n_assets} assets = {n_symbols * n_assets} cells per minute run:")
    print_grid(["variant", "runs", "cells", "history bytes per cell", "materialization event bytes per cell",
                "observation bytes per run", "all event bytes per run"],
               [[v, t.runs, f"{t.cells:,}", f"{t.history_per_cell:,.0f}", f"{t.materialization_per_cell:,.0f}",
                 f"{t.observation_bytes / t.runs:,.0f}", f"{t.event_bytes / t.runs:,.0f}"]
                for v, t in totals.items()])
    print("\nmaterialization event bytes per cell, by asset:")
    b, n = totals[BASELINE], totals[NEW]
    print_grid(["asset", BASELINE, NEW, "new / baseline"],
               [[name, f"{b.per_asset[name][1] / b.per_asset[name][0]:,.0f}",
                 f"{n.per_asset[name][1] / n.per_asset[name][0]:,.0f}",
                 f"{(n.per_asset[name][1] / n.per_asset[name][0]) / (b.per_asset[name][1] / b.per_asset[name][0]):.3f}"]
                for name in ASSETS if name in b.per_asset and name in n.per_asset])
    print("\nmetadata keys of one cell:")
    for variant in (BASELINE, NEW):
        sample = next(r for r in runs if r.variant == variant).sample_metadata
        for name, keys in sample.items():
            print(f"  {variant:<24} {name:<20} {', '.join(keys)}")
    history_ratio = n.history_per_cell / b.history_per_cell
    event_ratio = n.materialization_per_cell / b.materialization_per_cell
    print(f"\nnew / baseline, history bytes per cell (all of the run's growth, minute table included): "
          f"{history_ratio:.3f} ({100 * (history_ratio - 1):+.1f} %)")
    print(f"new / baseline, materialization event bytes per cell: {event_ratio:.3f} "
          f"({100 * (event_ratio - 1):+.1f} %)")
    all_ratio = (n.event_bytes / n.runs) / (b.event_bytes / b.runs)
    print(f"new / baseline, all event bytes per run (run shard): {all_ratio:.3f} ({100 * (all_ratio - 1):+.1f} %)")
    print(f"per day at {n_symbols} symbols (1,440 minute runs): baseline "
          f"{b.history_bytes / b.runs * 1440 / 1e9:.2f} GB, "
          f"new {n.history_bytes / n.runs * 1440 / 1e9:.2f} GB of history")
    failed = sum(r.failed_cell_observations for r in runs)
    incomplete = [r for r in runs if r.cells != n_symbols * n_assets or not r.success]
    if failed or incomplete:
        print(f"NOTE: {failed} failed-cell observation(s); {len(incomplete)} run(s) did not store every cell "
              "(the figures are per stored cell)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--minutes", type=int, default=2, help="counted minute runs of each variant")
    parser.add_argument("--warm-up", type=int, default=1, help="uncounted runs first (new code)")
    parser.add_argument("--lead", type=float, default=30.0,
                        help="start each run this many seconds before its minute's close (at least 5)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (instance, logs, database)")
    args = parser.parse_args(argv)
    if args.lead < 5 or args.lead > 55:
        raise SystemExit("--lead must be between 5 and 55 seconds")
    warnings.filterwarnings("ignore")

    tmp = Path(tempfile.mkdtemp(prefix="acts-cell-metadata-"))
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")

    from acts_pipeline.platform.event_log import EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_VARIABLE
    from acts_pipeline.platform.processes import mongo_uri_of, simulator_api_url, start_embedded_mongo, start_simulator

    wall = time.monotonic()
    print_run_header("cell_metadata.py", argv if argv is not None else sys.argv[1:])

    symbols = symbols_for(args.symbols)
    simulator = start_simulator(log_path=tmp / "simulator.log")
    mongo = None
    runs: list[RunFigures] = []
    try:
        mongo = start_embedded_mongo(tmp / "mongo", log_path=tmp / "secantusd.log")
        os.environ.update({"DAGSTER_HOME": str(home), EVENT_BATCH_SIZE_VARIABLE: EVENT_BATCH_SIZE,
                           "ACTS_BINANCE_API_URL": simulator_api_url(simulator),
                           "ACTS_MONGO_URI": mongo_uri_of(mongo), "ACTS_SPOOL_DIR": str(tmp / "spool")})
        from dagster import DagsterInstance

        from acts_pipeline.orchestration.partitions import symbol_partitions

        with DagsterInstance.from_config(str(home)) as instance:
            instance.add_dynamic_partitions(symbol_partitions.name, symbols)
            lead = timedelta(seconds=args.lead)
            schedule = [NEW] * args.warm_up + [BASELINE, NEW] * args.minutes
            log(f"{len(schedule)} minute runs ({args.warm_up} warm-up), {len(symbols)} symbols, instance {home}")
            for index, variant in enumerate(schedule):
                figures = minute_run(instance, home, variant, symbols, lead)
                if index >= args.warm_up:
                    runs.append(figures)
        n_assets = max(len(r.per_asset) for r in runs)
        report(runs, len(symbols), n_assets)
    finally:
        if mongo is not None:
            mongo.stop()
        simulator.stop()
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(machine_line(f"end {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"))
    print(f"total run time {time.monotonic() - wall:.0f} s, product at {git_revision()}")
    return 0 if all(r.success for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
