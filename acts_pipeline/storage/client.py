"""MongoDB storage: a small client that knows the database, and the Dagster I/O manager.

Roles are kept apart as in Dagster's own database I/O managers:

- `MongoStore` knows MongoDB: it connects, ensures each collection's unique `(symbol, minute)`
  index on first use, upserts documents in one bulk round trip, and reads cells back.
- `acts_pipeline.documents` converts between Python types and documents.
- `MongoIOManager` maps an asset and its partitions to cells of a collection, named by the
  asset's `mongo_collection` metadata.

Writes are upserts by `(symbol, minute)`: re-running a partition (a retry, a backfill, a
re-execution from the UI) replaces its documents, never duplicates them, and leaves every other
cell as it was.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pymongo
from dagster import ConfigurableIOManager, Failure, ConfigurableResource, InputContext, OutputContext
from pydantic import PrivateAttr
from pymongo import ASCENDING, ReplaceOne, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError

from acts_pipeline import settings
from acts_pipeline.cell_status import cell_events, events_are_per_cell
from acts_pipeline.documents import as_utc, handler_for
from acts_pipeline.partitions import Cell, cells_of
from acts_pipeline.spool import Spool
from acts_pipeline.ui_metadata import cell_metadata

log = logging.getLogger(__name__)

COLLECTION_METADATA_KEY = "mongo_collection"
#: Output metadata an asset adds to say why cells of its range have no document.
FAILED_CELLS_METADATA_KEY = "failed_cells"
UNIQUE_KEY = [("symbol", ASCENDING), ("minute", ASCENDING)]
#: Cell collections are also indexed by `minute` alone: a minute (or a range of minutes) for
#: all symbols is what the minute run reads back and what the checks count.
MINUTE_INDEX = [("minute", ASCENDING)]
#: Up to this many symbols, a cell read names them (`$in`); beyond, it reads the minutes' range
#: by the minute index and keeps the wanted cells. A long `$in` makes the embedded server test
#: every document against every symbol: 500 symbols of one minute took 3.9 s of its CPU, the
#: minute range 0.28 s. MongoDB serves both shapes from an index.
FEW_SYMBOLS = 50
#: symbol -> the first minute a run collected it for: coverage counts a symbol from there.
SYMBOL_REGISTRY = "symbol_registry"
#: The unique key of each collection that is not keyed by (symbol, minute).
_UNIQUE_KEYS = {SYMBOL_REGISTRY: [("symbol", ASCENDING)]}


class StorageError(RuntimeError):
    """MongoDB could not be reached or refused a write; the message names the collection."""


def _brief(exc: Exception) -> str:
    """The first clause of a driver error: pymongo appends the whole topology description."""
    return f"{type(exc).__name__}: {str(exc).split(', Timeout:')[0].split(' (configured timeouts')[0][:300]}"


@contextmanager
def _reported(what: str) -> Iterator[None]:
    """Driver errors of `what` as a `StorageError`: callers handle one error type, and the
    message stays short and free of the connection string."""
    try:
        yield
    except PyMongoError as exc:
        raise StorageError(f"{what} failed: {_brief(exc)}") from None


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    replaced: int

    @property
    def written(self) -> int:
        return self.inserted + self.replaced


class MongoStore:
    """One database of documents keyed by `(symbol, minute)`."""

    def __init__(self, database: Database):
        self.database = database
        self._indexed: set[str] = set()

    @classmethod
    def connect(cls, uri: str, database: str, *, timeout_ms: int = 5000) -> MongoStore:
        client: pymongo.MongoClient = pymongo.MongoClient(
            uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
            appname="acts-pipeline")
        return cls(client[database])

    def ping(self) -> None:
        """Fail fast, without echoing credentials, when the server cannot be reached."""
        with _reported("reaching MongoDB"):
            self.database.client.admin.command("ping")

    def collection(self, name: str) -> Collection:
        """The collection, with its indexes ensured on first use in this process: the unique key,
        and for cell collections the minute index."""
        collection = self.database[name]
        if name not in self._indexed:
            key = _UNIQUE_KEYS.get(name, UNIQUE_KEY)
            with _reported(f"creating the indexes of {name}"):
                collection.create_index(key, unique=True, name="_".join(field for field, _ in key) + "_unique")
                if key == UNIQUE_KEY:
                    collection.create_index(MINUTE_INDEX, name="minute")
            self._indexed.add(name)
        return collection

    def upsert(self, name: str, documents: Sequence[Mapping[str, Any]]) -> WriteResult:
        """Replace-or-insert every document by its `(symbol, minute)`, in one bulk request."""
        if not documents:
            return WriteResult(0, 0)
        requests = [
            ReplaceOne({"symbol": d["symbol"], "minute": d["minute"]}, dict(d), upsert=True)
            for d in documents
        ]
        with _reported(f"writing {len(documents)} documents to {name}"):
            result = self.collection(name).bulk_write(requests, ordered=False)
        return WriteResult(inserted=result.upserted_count, replaced=result.matched_count)

    def find_cells(self, name: str, cells: Iterable[Cell]) -> list[dict[str, Any]]:
        """The stored documents of `cells`, ordered by minute then symbol; absent cells are absent."""
        wanted = set(cells)
        if not wanted:
            return []
        minutes = sorted({c.minute for c in wanted})
        symbols = sorted({c.symbol for c in wanted})
        query: dict[str, Any] = {"minute": {"$gte": minutes[0], "$lte": minutes[-1]}}
        if len(symbols) <= FEW_SYMBOLS:
            query["symbol"] = {"$in": symbols}
        with _reported(f"reading {name}"):
            documents = [
                d for d in self.collection(name).find(query, {"_id": False})
                if Cell(as_utc(d["minute"]), d["symbol"]) in wanted
            ]
        documents.sort(key=lambda d: (as_utc(d["minute"]), d["symbol"]))
        return documents

    def record_tracked(self, symbols: Iterable[str], minute: datetime) -> None:
        """Note `minute` as the first collected minute of each symbol, unless it has an earlier one."""
        requests = [UpdateOne({"symbol": s}, {"$min": {"tracked_since": minute}}, upsert=True) for s in symbols]
        if requests:
            with _reported(f"writing {SYMBOL_REGISTRY}"):
                self.collection(SYMBOL_REGISTRY).bulk_write(requests, ordered=False)

    def tracked_since(self) -> dict[str, datetime]:
        with _reported(f"reading {SYMBOL_REGISTRY}"):
            return {d["symbol"]: as_utc(d["tracked_since"])
                    for d in self.collection(SYMBOL_REGISTRY).find({}, {"_id": False})}

    def stored_minutes(self, name: str, start: datetime, end: datetime) -> dict[str, set[datetime]]:
        """Per symbol, the minutes in `[start, end)` that have a document in `name`."""
        minutes: dict[str, set[datetime]] = {}
        with _reported(f"reading {name}"):
            cursor = self.collection(name).find({"minute": {"$gte": start, "$lt": end}},
                                                {"_id": False, "symbol": True, "minute": True})
            for document in cursor:
                minutes.setdefault(document["symbol"], set()).add(as_utc(document["minute"]))
        return minutes


class MongoResource(ConfigurableResource):
    """The MongoDB database ACTS stores into. Unset fields come from `ACTS_MONGO_URI` and
    `ACTS_MONGO_DB` when the resource is built."""

    uri: str | None = None
    database: str | None = None
    timeout_ms: int = 5000

    _store: MongoStore | None = PrivateAttr(default=None)

    def get_store(self) -> MongoStore:
        if self._store is None:
            self._store = MongoStore.connect(
                self.uri or settings.mongo_uri(), self.database or settings.mongo_db(), timeout_ms=self.timeout_ms)
        return self._store


def _collection_of(context: OutputContext | InputContext, metadata: Mapping[str, Any] | None) -> str:
    name = (metadata or {}).get(COLLECTION_METADATA_KEY)
    if not name:
        key = context.asset_key.to_user_string() if context.has_asset_key else "this output"
        raise ValueError(
            f"{key} has no '{COLLECTION_METADATA_KEY}' metadata: the MongoDB I/O manager needs it "
            "to know which collection the asset lives in"
        )
    return str(name)


def flush_spool(store: MongoStore, spool: Spool, *, skip: Path | None = None) -> int:
    """Write every pending spooled batch, oldest first; returns how many were written."""
    written = 0
    for batch in spool.pending():
        if batch.path == skip:
            continue
        store.upsert(batch.collection, batch.documents)
        spool.done(batch.path)
        written += 1
        log.info("wrote spooled batch %s (%d documents)", batch.path.name, len(batch.documents))
    return written


def _failure_reasons(context: OutputContext) -> dict[str, str]:
    """Why the step produced no document for some cells: the `failed_cells` output metadata
    (`minute|symbol` -> reason) the assets add."""
    failed = context.output_metadata.get(FAILED_CELLS_METADATA_KEY)
    data = getattr(failed, "data", failed)
    return dict(data) if isinstance(data, Mapping) else {}


class MongoIOManager(ConfigurableIOManager):
    """Stores each asset partition's documents in the asset's MongoDB collection, one document
    per (minute, symbol) cell, and loads a partition range back for downstream assets."""

    mongo: MongoResource
    #: Where batches wait until MongoDB has them; unset: `ACTS_SPOOL_DIR` (see settings).
    spool_dir: str | None = None
    #: How long one write keeps trying while MongoDB is down before the step gives up (the
    #: batch stays spooled and the next run that reaches MongoDB writes it).
    write_patience_seconds: float = 240.0
    retry_interval_seconds: float = 3.0

    def _spool(self) -> Spool:
        return Spool(Path(self.spool_dir) if self.spool_dir else settings.spool_dir())

    def _write_durably(self, collection: str, documents: list[dict[str, Any]]) -> WriteResult:
        """Spool the batch, write older spooled batches then this one, and unspool it.

        MongoDB being down is waited out for `write_patience_seconds`; the documents are on
        disk from the first moment, so giving up loses nothing.
        """
        spool = self._spool()
        path = spool.put(collection, documents)
        store = self.mongo.get_store()
        give_up_at = time.monotonic() + self.write_patience_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                flush_spool(store, spool, skip=path)
                result = store.upsert(collection, documents)
                break
            except StorageError as exc:
                if time.monotonic() + self.retry_interval_seconds > give_up_at:
                    # Not retried as a step: the batch is safe on disk, and a retried snapshot
                    # step would fetch (and spool) a later book for the same minute.
                    raise Failure(
                        f"{exc}; gave up after {attempt} attempts over {self.write_patience_seconds:g} s. "
                        f"The documents are kept in {path} and will be written by the next run that "
                        "reaches MongoDB (or `acts-pipeline spool flush`)", allow_retries=False) from None
                log.warning("MongoDB write failed (%s); retrying in %g s, batch kept in %s",
                            exc, self.retry_interval_seconds, path)
                time.sleep(self.retry_interval_seconds)
        spool.done(path)
        return result

    def handle_output(self, context: OutputContext, obj: Any):
        if obj is None:
            return
        collection = _collection_of(context, context.definition_metadata)
        documents = handler_for(type(obj)).to_documents(obj)
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
        result = self._write_durably(collection, documents)
        log.info("%s: %d inserted, %d replaced", collection, result.inserted, result.replaced)
        summary = {"collection": collection, "documents_written": result.written,
                   "inserted": result.inserted, "replaced": result.replaced,
                   "cells_without_data": len(allowed) - len(set(cells))}
        if events_are_per_cell(context):
            # Each cell shows its own data; the write counts are the run's, in its log.
            stored = {cell: cell_metadata(collection, doc) for cell, doc in zip(cells, documents, strict=True)}
            missing = sorted(allowed - stored.keys())
            yield from cell_events(context, stored, missing, _failure_reasons(context))
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
            documents = list(store.collection(collection).find({}, {"_id": False}).sort(UNIQUE_KEY))
        return handler.from_documents(documents)

