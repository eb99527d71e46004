"""Which cells of a recent window are stored, without reading the whole window every minute.

The completeness check (`snapshots_are_complete`) reports the missing (minute, symbol) cells of
the last 15 minutes after every minute run. Reading the window's documents each time made the
embedded server fetch every book of 15 minutes, every minute: at 1262 symbols, 18,716
documents and 4.2 s of its CPU (`benchmarks/completeness_window.py`; a count costs as much, the
server fetches each document either way), for 14 minutes it had read the minute before. Through
`SeenCells`: 1,243 documents, 0.75 s.

`SeenCells` keeps, per cell collection and minute, the symbols whose documents were read there
(collection `cells_seen`, one small document per minute). A window is then read as:

- the minutes not seen before, and the minutes the caller has just written (`fresh`), in full;
- of the other minutes, only the expected cells that were not seen stored (gaps are rare, and a
  cell filled later by a catch-up or a backfill is found this way), by symbol and minute.

What it returns is what `MongoStore.stored_minutes` would: a cell seen stored stays stored
unless it is deleted, and every deletion of cells (`MongoStore.delete_cells`, the archive's
retention) forgets the minutes it touched (`MongoStore.forget_seen`). A document deleted behind
the platform's back (by hand in the database) is seen missing once its minute's record is gone:
records older than the window by more than `KEEP` are deleted by the next read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from pymongo import ReplaceOne

from acts_pipeline.core.cells import Cell
from acts_pipeline.storage.client import MongoStore, _reported
from acts_pipeline.storage.collections import CELLS_SEEN
from acts_pipeline.storage.handlers import as_utc

MINUTE = timedelta(minutes=1)
#: How long before a window's start a minute's record is kept (a run's check may look at a window
#: ending minutes before the newest; older records are deleted when a window is read).
KEEP = timedelta(hours=1)


def _key(name: str, minute: datetime) -> str:
    return f"{name}|{as_utc(minute).isoformat()}"


def _spans(minutes: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted minutes as `[start, end)` runs of consecutive minutes."""
    spans: list[list[datetime]] = []
    for minute in sorted(minutes):
        if spans and spans[-1][1] == minute:
            spans[-1][1] = minute + MINUTE
        else:
            spans.append([minute, minute + MINUTE])
    return [(a, b) for a, b in spans]


class SeenCells:
    """The cells of collection `name` seen stored, as the completeness check reads them."""

    def __init__(self, store: MongoStore, name: str):
        self.store = store
        self.name = name
        #: Cells the last `stored_minutes` found in `name` (for tests and benchmarks).
        self.documents_read = 0

    def stored_minutes(self, start: datetime, end: datetime, expected: Mapping[str, datetime],
                       fresh: Iterable[datetime] = ()) -> dict[str, set[datetime]]:
        """Per symbol, the minutes in `[start, end)` that have a document in the collection, for
        the symbols of `expected` (symbol -> the first minute it is expected at). `fresh`: minutes
        just written, read in full whatever was seen there."""
        self.documents_read = 0
        minutes = []
        minute = start
        while minute < end:
            minutes.append(minute)
            minute += MINUTE
        seen = self._seen(start, end)
        to_read = {m for m in minutes if m not in seen} | {as_utc(m) for m in fresh if start <= as_utc(m) < end}
        stored: dict[datetime, set[str]] = {m: set() for m in minutes}
        for span_start, span_end in _spans(to_read):
            for symbol, found in self._read(span_start, span_end).items():
                for m in found:
                    stored[m].add(symbol)
        changed = set(to_read)
        for minute in sorted(set(minutes) - to_read):
            unseen = [s for s, since in expected.items() if since <= minute and s not in seen[minute]]
            stored[minute] = set(seen[minute])
            if unseen:
                found = self._find(minute, unseen)
                if found:
                    stored[minute] |= found
                    changed.add(minute)
        self._remember({m: stored[m] for m in changed}, start)
        out: dict[str, set[datetime]] = {}
        for minute, symbols in stored.items():
            for symbol in symbols:
                out.setdefault(symbol, set()).add(minute)
        return out

    def _seen(self, start: datetime, end: datetime) -> dict[datetime, set[str]]:
        with _reported(f"reading {CELLS_SEEN}"):
            documents = self.store.collection(CELLS_SEEN).find(
                {"collection": self.name, "minute": {"$gte": start, "$lt": end}}, {"_id": False, "minute": True,
                                                                                    "symbols": True})
            return {as_utc(d["minute"]): set(d["symbols"]) for d in documents}

    def _find(self, minute: datetime, symbols: list[str]) -> set[str]:
        """Those of `symbols` with a document at `minute` (`MongoStore.find_cells`: a few by name,
        many by reading the minute)."""
        found = {d["symbol"] for d in self.store.find_cells(self.name, [Cell(minute, s) for s in symbols], fields=())}
        self.documents_read += len(found)
        return found

    def _read(self, start: datetime, end: datetime) -> dict[str, set[datetime]]:
        found = self.store.stored_minutes(self.name, start, end)
        self.documents_read += sum(len(m) for m in found.values())
        return found

    def _remember(self, stored: Mapping[datetime, set[str]], start: datetime) -> None:
        requests = [ReplaceOne({"_id": _key(self.name, m)},
                               {"collection": self.name, "minute": m, "symbols": sorted(symbols)}, upsert=True)
                    for m, symbols in sorted(stored.items())]
        with _reported(f"writing {CELLS_SEEN}"):
            collection = self.store.collection(CELLS_SEEN)
            if requests:
                collection.bulk_write(requests, ordered=False)
            collection.delete_many({"collection": self.name, "minute": {"$lt": start - KEEP}})
