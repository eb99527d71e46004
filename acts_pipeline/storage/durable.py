"""The write that survives MongoDB outages: a local durable spool, and the retry-and-replay loop.

A snapshot can only be taken at its minute's close; if MongoDB is unreachable at that moment the
book must not be lost. So every batch of documents is first written to a file in the spool
(atomically: temporary file, fsync, rename), then upserted into MongoDB, and only then deleted.
While MongoDB is down the write is retried for a while (`DurableWriter`); a batch that could not
be written stays in the spool and is written, oldest first, by the next write that gets through
(any later run), or by `acts-pipeline spool flush` (`flush_spool`).

Replaying is safe because every write is an upsert by `(symbol, minute)`: a batch that reached
MongoDB but whose file was not yet deleted (a crash in between) is written again as the same
documents, never duplicated.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS

from acts_pipeline.storage.client import MongoStore, StorageError, WriteResult

log = logging.getLogger(__name__)

_JSON_OPTIONS = CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=UTC)


@dataclass(frozen=True)
class SpooledBatch:
    path: Path
    collection: str
    documents: list[dict[str, Any]]


class Spool:
    """A folder of pending batches, one JSON file each, named so that they sort oldest first."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def put(self, collection: str, documents: Sequence[Mapping[str, Any]]) -> Path:
        """Persist a batch durably before it is sent; returns its file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}-{collection}.json"
        final = self.folder / name
        temporary = self.folder / f".{name}.tmp"
        payload = json_util.dumps({"collection": collection, "documents": list(documents)},
                                  json_options=_JSON_OPTIONS)
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        # the rename itself must survive a power loss too: the folder's entry is written now
        folder = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        return final

    def done(self, path: Path) -> None:
        """The batch reached MongoDB: forget it (another process may have done so already)."""
        path.unlink(missing_ok=True)

    def pending(self) -> Iterator[SpooledBatch]:
        """Pending batches, oldest first. An unreadable file is reported and set aside (renamed
        `<name>.unreadable`, kept for a person to look at): it is no longer pending, so it does not
        hold every later write up nor count as spooled for ever."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.json")):
            try:
                raw = json_util.loads(path.read_text(encoding="utf-8"), json_options=_JSON_OPTIONS)
            except FileNotFoundError:
                continue  # written meanwhile by another process
            except ValueError as exc:
                aside = path.with_name(path.name + ".unreadable")
                path.replace(aside)
                log.error("spooled batch %s is unreadable and was set aside as %s: %s", path, aside.name, exc)
                continue
            yield SpooledBatch(path, raw["collection"], raw["documents"])

    def count(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0


def flush_spool(store: MongoStore, spool: Spool, *, skip: Path | None = None,
                on_written: Callable[[SpooledBatch], None] | None = None) -> int:
    """Write every pending spooled batch, oldest first (`on_written` is told of each once it is in
    MongoDB); returns how many were written."""
    written = 0
    for batch in spool.pending():
        if batch.path == skip:
            continue
        store.upsert(batch.collection, batch.documents)
        spool.done(batch.path)
        if on_written is not None:
            on_written(batch)
        written += 1
        log.info("wrote spooled batch %s (%d documents)", batch.path.name, len(batch.documents))
    return written


class WriteGaveUp(StorageError):
    """MongoDB stayed unreachable for the writer's whole patience; the batch is kept in the spool."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


class DurableWriter:
    """Writes batches so that none is lost while MongoDB is down: spooled first, then the older
    spooled batches and this one are written, retried every `retry_interval` seconds for
    `patience` seconds."""

    def __init__(self, store: MongoStore, spool: Spool, *, patience: float, retry_interval: float):
        self.store = store
        self.spool = spool
        self.patience = patience
        self.retry_interval = retry_interval

    def write(self, collection: str, documents: Sequence[Mapping[str, Any]]) -> WriteResult:
        """Spool the batch, write older spooled batches then this one, and unspool it.

        The documents are on disk from the first moment, so giving up (`WriteGaveUp`) loses
        nothing: the next write that reaches MongoDB replays them.
        """
        path = self.spool.put(collection, documents)
        give_up_at = time.monotonic() + self.patience
        attempt = 0
        while True:
            attempt += 1
            try:
                flush_spool(self.store, self.spool, skip=path)
                result = self.store.upsert(collection, documents)
                break
            except StorageError as exc:
                if time.monotonic() + self.retry_interval > give_up_at:
                    raise WriteGaveUp(
                        f"{exc}; gave up after {attempt} attempts over {self.patience:g} s. "
                        f"The documents are kept in {path} and will be written by the next run that "
                        "reaches MongoDB (or `acts-pipeline spool flush`)", path) from None
                log.warning("MongoDB write failed (%s); retrying in %g s, batch kept in %s",
                            exc, self.retry_interval, path)
                time.sleep(self.retry_interval)
        self.spool.done(path)
        return result
