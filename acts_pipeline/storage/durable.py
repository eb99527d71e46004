"""A local, durable spool of writes that have not reached MongoDB yet.

A snapshot can only be taken at its minute's close; if MongoDB is unreachable at that moment the
book must not be lost. So every batch of documents is first written to a file here (atomically:
temporary file, fsync, rename), then upserted into MongoDB, and only then deleted. A batch that
could not be written stays in the spool and is written, oldest first, by the next write that
gets through (any later run), or by `acts-pipeline spool flush`.

Replaying is safe because every write is an upsert by `(symbol, minute)`: a batch that reached
MongoDB but whose file was not yet deleted (a crash in between) is written again as the same
documents, never duplicated.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS

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
        return final

    def done(self, path: Path) -> None:
        """The batch reached MongoDB: forget it (another process may have done so already)."""
        path.unlink(missing_ok=True)

    def pending(self) -> Iterator[SpooledBatch]:
        """Pending batches, oldest first. An unreadable file is reported and left in place."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.json")):
            try:
                raw = json_util.loads(path.read_text(encoding="utf-8"), json_options=_JSON_OPTIONS)
            except FileNotFoundError:
                continue  # written meanwhile by another process
            except ValueError as exc:
                log.error("spooled batch %s is unreadable and was left in place: %s", path, exc)
                continue
            yield SpooledBatch(path, raw["collection"], raw["documents"])

    def count(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0
