"""The MongoDB client: it connects, ensures each collection's indexes on first use, upserts
documents in one bulk round trip, and reads cells back. It knows documents, not Python types
(`handlers`) nor Dagster (`io_manager`).

Writes are upserts by each collection's unique key (`collections`): re-running a partition (a
retry, a backfill, a re-execution from the UI) replaces its documents, never duplicates them,
and leaves every other cell as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pymongo
from pymongo import ReplaceOne, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from acts_pipeline.core.cells import Cell
from acts_pipeline.storage import written_days
from acts_pipeline.storage.collections import (
    CELL_COLLECTIONS,
    CELL_KEY,
    CELLS_SEEN,
    SYMBOL_REGISTRY,
    WRITTEN_DAYS,
    spec_of,
)
from acts_pipeline.storage.handlers import as_utc

#: Up to this many symbols, a cell read names them (`$in`); beyond, it reads the minutes' range
#: by the minute index and keeps the wanted cells. A long `$in` makes the embedded server test
#: every document against every symbol: 500 symbols of one minute took 3.9 s of its CPU, the
#: minute range 0.28 s. MongoDB serves both shapes from an index.
FEW_SYMBOLS = 50


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


#: MongoDB's error code for a unique index violation.
DUPLICATE_KEY = 11000


def _without_id(document: dict[str, Any]) -> dict[str, Any]:
    document.pop("_id", None)
    return document


def _minutes(documents: Iterable[Mapping[str, Any]]) -> Iterator[datetime]:
    """The `minute` of each document that has one (cells do)."""
    for document in documents:
        minute = document.get("minute")
        if isinstance(minute, datetime):
            yield minute


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
        """The collection, with its indexes (`collections.spec_of`) ensured on first use in this
        process."""
        collection = self.database[name]
        if name not in self._indexed:
            spec = spec_of(name)
            with _reported(f"creating the indexes of {name}"):
                if spec.unique_index_name is not None:
                    collection.create_index(list(spec.unique_key), unique=True, name=spec.unique_index_name)
                for index_name, key in spec.indexes.items():
                    collection.create_index(list(key), name=index_name)
            self._indexed.add(name)
        return collection

    @contextmanager
    def writing_cells(self, name: str, minutes: Iterable[datetime]) -> Iterator[None]:
        """Around a write of `name`'s documents of `minutes`: the days they fall in are counted as
        written before the write and again after it, also when it failed
        (`storage.written_days`: what tells a reader that an archived day changed since). Every
        write of the archived cell collections goes through it; other collections are not counted."""
        if name not in CELL_COLLECTIONS:
            yield
            return
        days = written_days.days_of(minutes)
        ledger = self.collection(WRITTEN_DAYS)
        with _reported(f"writing {WRITTEN_DAYS}"):
            written_days.note_writes(ledger, name, days)
        try:
            yield
        except BaseException:
            try:
                written_days.note_writes(ledger, name, days)
            except PyMongoError:
                pass  # the count moved before the write: the day is already seen as changed
            raise
        with _reported(f"writing {WRITTEN_DAYS}"):
            written_days.note_writes(ledger, name, days)

    def written_versions(self, name: str, days: Iterable[date]) -> dict[date, int]:
        """How many writes of `name` each of `days` has taken (`storage.written_days`)."""
        with _reported(f"reading {WRITTEN_DAYS}"):
            return written_days.versions(self.collection(WRITTEN_DAYS), name, days)

    def upsert(self, name: str, documents: Sequence[Mapping[str, Any]]) -> WriteResult:
        """Replace-or-insert every document by its collection's unique key (a cell's `(symbol,
        minute)`), in one bulk request."""
        if not documents:
            return WriteResult(0, 0)
        with self.writing_cells(name, _minutes(documents)):
            return self._upsert(name, documents)

    def _upsert(self, name: str, documents: Sequence[Mapping[str, Any]]) -> WriteResult:
        key = [field for field, _ in spec_of(name).unique_key]
        requests = [ReplaceOne({k: d[k] for k in key}, dict(d), upsert=True) for d in documents]
        with _reported(f"writing {len(documents)} documents to {name}"):
            result = self.collection(name).bulk_write(requests, ordered=False)
        return WriteResult(inserted=result.upserted_count, replaced=result.matched_count)

    def find_cells(self, name: str, cells: Iterable[Cell], fields: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The stored documents of `cells`, ordered by minute then symbol; absent cells are absent.
        With `fields`, only those (and `symbol`, `minute`) are read.

        Whole documents are read without a projection and `_id` is dropped here: the embedded
        server deep-copies every document it applies a projection to, even `{"_id": False}` (the
        run's 500 snapshots, read back by the features step and the books check: 0.37 to 0.56 s of
        its CPU against 0.17 to 0.20 s unprojected, `benchmarks/cell_reads.py`). A projection to a
        few small fields is cheaper than none."""
        wanted = set(cells)
        projection: dict[str, bool] | None = None
        if fields is not None:
            projection = {"_id": False, **{f: True for f in ("symbol", "minute", *fields)}}
        if not wanted:
            return []
        minutes = sorted({c.minute for c in wanted})
        symbols = sorted({c.symbol for c in wanted})
        # One minute is an equality: with a range, the embedded server reads every document of
        # the minute before it tests the symbols (15 cells: 0.03 s as an equality, 0.25 s as a range).
        query: dict[str, Any] = {"minute": minutes[0] if len(minutes) == 1 else {"$gte": minutes[0], "$lte": minutes[-1]}}
        if len(symbols) <= FEW_SYMBOLS:
            query["symbol"] = {"$in": symbols}
        with _reported(f"reading {name}"):
            documents = [
                _without_id(d) for d in self.collection(name).find(query, projection)
                if Cell(as_utc(d["minute"]), d["symbol"]) in wanted
            ]
        documents.sort(key=lambda d: (as_utc(d["minute"]), d["symbol"]))
        return documents

    def find_all(self, name: str) -> list[dict[str, Any]]:
        """Every document of a cell collection, ordered by symbol then minute (no projection, as
        `find_cells`)."""
        with _reported(f"reading {name}"):
            return [_without_id(d) for d in self.collection(name).find({}).sort(list(CELL_KEY))]

    def record_tracked(self, symbols: Iterable[str], minute: datetime) -> None:
        """Note `minute` as the first collected minute of each symbol, unless it has an earlier one.

        Only the symbols that need it are written (read first: every minute run notes all its
        symbols, and 1262 no-op `$min` upserts a minute were a quarter of the embedded server's
        update work); the write is still a `$min`, so two runs at once cannot move it later."""
        since = self.tracked_since()
        requests = [UpdateOne({"symbol": s}, {"$min": {"tracked_since": minute}}, upsert=True)
                    for s in dict.fromkeys(symbols) if s not in since or since[s] > as_utc(minute)]
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

    def delete_cells(self, name: str, cells: Iterable[Cell]) -> int:
        """Deletes the documents of `cells` from `name`; how many. What the completeness check
        had seen stored in their minutes is forgotten (`forget_seen`)."""
        cells = list(cells)
        if not cells:
            return 0
        with self.writing_cells(name, (c.minute for c in cells)), _reported(f"deleting from {name}"):
            deleted = self.collection(name).delete_many(
                {"$or": [{"symbol": c.symbol, "minute": c.minute} for c in cells]}).deleted_count
        minutes = [c.minute for c in cells]
        self.forget_seen(name, min(minutes), max(minutes) + timedelta(minutes=1))
        return deleted

    def forget_seen(self, name: str, start: datetime, end: datetime) -> None:
        """Forgets what was seen stored in `name` over the minutes `[start, end)`
        (`storage.seen_cells`). Every deletion of cells calls it: the completeness check then
        reads those minutes again instead of trusting what it saw."""
        with _reported(f"writing {CELLS_SEEN}"):
            self.collection(CELLS_SEEN).delete_many({"collection": name, "minute": {"$gte": start, "$lt": end}})

    def delete_before(self, name: str, minute: datetime) -> int:
        """Deletes the documents of `name` whose `minute` is before `minute`; how many. (The
        recorder's retention: an explicit delete on the minute index works on every
        MongoDB-compatible server, where a TTL index does not, and costs no index of its own on
        every write.)"""
        with _reported(f"pruning {name}"):
            return self.collection(name).delete_many({"minute": {"$lt": minute}}).deleted_count

    def put_status(self, name: str, key: str, document: Mapping[str, Any]) -> None:
        """Replaces the status document `key` (its `name` field) of collection `name`."""
        with _reported(f"writing {name}"):
            self.collection(name).replace_one({"name": key}, {**document, "name": key}, upsert=True)

    def get_status(self, name: str, key: str) -> dict[str, Any] | None:
        with _reported(f"reading {name}"):
            return self.collection(name).find_one({"name": key}, {"_id": False})

    def insert_or_replace(self, name: str, documents: Sequence[Mapping[str, Any]]) -> WriteResult:
        """`upsert`, faster when most documents are new (a close's boundary books): one unordered
        insert, then the documents whose key was already there (a revision, a replayed batch) are
        replaced. Measured on the embedded server: 500 documents in 0.07 s against
        0.17 s as upserts."""
        if not documents:
            return WriteResult(0, 0)
        batch = [dict(d) for d in documents]
        with self.writing_cells(name, _minutes(documents)):
            with _reported(f"writing {len(batch)} documents to {name}"):
                try:
                    self.collection(name).insert_many(batch, ordered=False)
                    return WriteResult(inserted=len(batch), replaced=0)
                except BulkWriteError as exc:
                    errors = exc.details.get("writeErrors", [])
                    if any(e.get("code") != DUPLICATE_KEY for e in errors):
                        raise
                    existing = [documents[e["index"]] for e in errors]
            replaced = self._upsert(name, existing)
        return WriteResult(inserted=len(batch) - len(existing) + replaced.inserted, replaced=replaced.replaced)
