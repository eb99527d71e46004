"""The Dagster side of storage: the `MongoResource` and the thin `MongoIOManager`.

The I/O manager maps an asset and its partitions to cells of the collection its
`mongo_collection` metadata names, picks the type handler of the output's declared type, hands
the documents to the durable writer, and reports what it stored per cell (`cell_events`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dagster import ConfigurableIOManager, ConfigurableResource, Failure, InputContext, OutputContext
from pydantic import Field, PrivateAttr

from acts_pipeline import settings
from acts_pipeline.storage.cell_events import NO_REASON, cell_events, events_are_per_cell
from acts_pipeline.core.cells import Cell, cells_of
from acts_pipeline.storage.client import MongoStore, StorageError
from acts_pipeline.storage.collections import TRACKING_COLLECTION
from acts_pipeline.storage.durable import DurableWriter, Spool, WriteGaveUp
from acts_pipeline.storage.handlers import as_utc, handler_for
from acts_pipeline.storage.ui_metadata import cell_metadata

log = logging.getLogger(__name__)

#: The asset metadata naming the collection an asset is stored in.
COLLECTION_METADATA_KEY = "mongo_collection"
#: Output metadata an asset adds to say why cells of its range have no document.
FAILED_CELLS_METADATA_KEY = "failed_cells"


class MongoResource(ConfigurableResource):
    """The MongoDB database ACTS stores into."""

    uri: str | None = Field(
        default=None,
        description="MongoDB connection string, mongodb:// or mongodb+srv:// (ACTS_MONGO_URI; "
        "`acts-pipeline dev` starts an embedded server and sets it). Never shown: bind it with EnvVar.")
    database: str = Field(default=settings.DEFAULT_MONGO_DB, description="Database name (ACTS_MONGO_DB).")
    timeout_ms: int = Field(default=5000, description="Server selection and socket timeout of each operation.")

    _store: MongoStore | None = PrivateAttr(default=None)

    def get_store(self) -> MongoStore:
        if self._store is None:
            self._store = MongoStore.connect(
                settings.parse_mongo_uri(self.uri), settings.parse_mongo_db(self.database), timeout_ms=self.timeout_ms)
        return self._store


def _asset_name(context: OutputContext | InputContext) -> str:
    return context.asset_key.to_user_string() if context.has_asset_key else "this output"


def _collection_of(context: OutputContext | InputContext, metadata: Mapping[str, Any] | None) -> str:
    name = (metadata or {}).get(COLLECTION_METADATA_KEY)
    if not name:
        raise ValueError(
            f"{_asset_name(context)} has no '{COLLECTION_METADATA_KEY}' metadata: the MongoDB I/O manager "
            "needs it to know which collection the asset lives in"
        )
    return str(name)


def _declared_type(context: OutputContext, obj: Any) -> Any:
    """The output's type as the asset declares it; without an annotation, the object's own type
    (so an unannotated list is refused: its items are unknown)."""
    declared = context.dagster_type.typing_type if context.dagster_type is not None else Any
    return type(obj) if declared is Any else declared


def _failure_reasons(context: OutputContext) -> dict[str, str]:
    """Why the step produced no document for some cells: the `failed_cells` output metadata
    (`minute|symbol` -> reason) the assets add."""
    failed = context.output_metadata.get(FAILED_CELLS_METADATA_KEY)
    data = getattr(failed, "data", failed)
    return dict(data) if isinstance(data, Mapping) else {}


def _first_minutes(cells: set[Cell]) -> dict[str, datetime]:
    firsts: dict[str, datetime] = {}
    for cell in cells:
        if cell.symbol not in firsts or cell.minute < firsts[cell.symbol]:
            firsts[cell.symbol] = cell.minute
    return firsts


class MongoIOManager(ConfigurableIOManager):
    """Stores each asset partition's documents in the asset's MongoDB collection, one document
    per (minute, symbol) cell, and loads a partition range back for downstream assets."""

    mongo: MongoResource
    spool_dir: str | None = Field(
        default=None,
        description="Where batches wait on disk until MongoDB has them (ACTS_SPOOL_DIR); shared by "
        "every run process of the instance. Unset: acts_spool in DAGSTER_HOME.")
    write_patience_seconds: float = Field(
        default=240.0,
        description="How long one write keeps trying while MongoDB is down before the step gives up "
        "(the batch stays spooled, and the next run that reaches MongoDB writes it).")
    retry_interval_seconds: float = Field(default=3.0, description="Pause between two write attempts.")

    def _writer(self) -> DurableWriter:
        spool = Spool(settings.parse_spool_dir(self.spool_dir))
        return DurableWriter(self.mongo.get_store(), spool, patience=self.write_patience_seconds,
                             retry_interval=self.retry_interval_seconds)

    def _record_tracked(self, cells: set[Cell]) -> None:
        """Each symbol of a stored batch of snapshots counts from the batch's first minute (an
        earlier one already noted stays): every cell the run was asked for, so a symbol whose
        first minute failed shows that gap."""
        by_minute: dict[datetime, list[str]] = {}
        for symbol, minute in _first_minutes(cells).items():
            by_minute.setdefault(minute, []).append(symbol)
        try:
            for minute, symbols in by_minute.items():
                self.mongo.get_store().record_tracked(symbols, minute)
        except StorageError as exc:
            # The snapshots are stored; a later run notes its own minute.
            log.warning("first minutes of %d symbols not noted: %s", len(cells), exc)

    def handle_output(self, context: OutputContext, obj: Any):
        if obj is None:
            return
        collection = _collection_of(context, context.definition_metadata)
        try:
            handler = handler_for(_declared_type(context, obj))
        except TypeError as exc:
            raise TypeError(f"{_asset_name(context)}: {exc}") from None
        documents = handler.to_documents(obj)
        cells = [Cell(as_utc(d["minute"]), d["symbol"]) for d in documents]
        if context.has_asset_partitions:
            # A document outside the run's partitions would be data labelled with a cell this
            # run was never asked for: refuse it rather than store it.
            allowed = set(cells_of(context.asset_partition_keys))
            stray = [c for c in cells if c not in allowed]
            if stray:
                raise ValueError(
                    f"{context.asset_key.to_user_string()} produced {len(stray)} documents outside the "
                    f"run's partitions, e.g. {stray[0]}")
        else:
            allowed = set(cells)
        try:
            result = self._writer().write(collection, documents)
        except WriteGaveUp as exc:
            # Not retried as a step: the batch is safe on disk, and a retried snapshot step
            # would fetch (and spool) a later book for the same minute.
            raise Failure(str(exc), allow_retries=False) from None
        log.info("%s: %d inserted, %d replaced", collection, result.inserted, result.replaced)
        if collection == TRACKING_COLLECTION and documents:
            self._record_tracked(allowed)
        summary = {"collection": collection, "documents_written": result.written,
                   "inserted": result.inserted, "replaced": result.replaced,
                   "cells_without_data": len(allowed) - len(set(cells))}
        stored = {cell: cell_metadata(collection, doc) for cell, doc in zip(cells, documents, strict=True)}
        missing = sorted(allowed - stored.keys())
        if events_are_per_cell(context):
            # Each cell shows its own data; the write counts are the run's, in its log.
            yield from cell_events(context, stored, missing, _failure_reasons(context))
        elif missing and context.has_asset_partitions:
            # A run launched without the per-cell tag (the UI's Materialize, a backfill, `dagster
            # asset materialize`): once this returns, Dagster would record every cell of the range
            # as materialized, the ones without data too. The stored cells are recorded here, one
            # by one, and the step fails, so Dagster records nothing more: the cells without data
            # stay unmaterialized (the run shows them failed), and the failure names them.
            # The steps after it in this run do not run; a re-run (or the sensors' catch-up) does them.
            reasons = _failure_reasons(context)
            yield from cell_events(context, stored, missing, reasons)
            named = "; ".join(f"{cell}: {reasons.get(str(cell), NO_REASON)}" for cell in missing[:5])
            more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
            raise Failure(
                f"{context.asset_key.to_user_string()}: {len(missing)} of {len(allowed)} cells have no data and are "
                f"not marked materialized: {named}{more}. The other {len(stored)} are stored and marked "
                "materialized; the steps after this one in the run do not run.",
                metadata={**summary, "cells_stored": len(stored), "cells_without_data": len(missing)},
                allow_retries=False)
        else:
            context.add_output_metadata(summary)

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        collection = _collection_of(context, upstream.definition_metadata if upstream else None)
        handler = handler_for(context.dagster_type.typing_type)
        store = self.mongo.get_store()
        if context.has_asset_partitions:
            documents = store.find_cells(collection, cells_of(context.asset_partition_keys))
        else:
            documents = store.find_all(collection)
        return handler.from_documents(documents)
