"""How `boundary_books` holds the recorder's books at each close, and how each one is read back.

The recorder decides the books of all the symbols of one websocket connection at once, a tenth of
a second after each close (`acts_pipeline.core.boundary`), and they must be in MongoDB right away:
the minute's run is waiting for them. So one document holds one such decision, one connection at
one close (a *batch*):

    {"_id": ObjectId("..."), "minute": 12:03, "close": 12:04, "connection": "ws-1",
     "decided_at": 12:04:00.112, "revised": false, "depth_limit": 100,
     "usable": ["BTCUSDT", "ETHUSDT"], "unusable": ["NEWUSDT"],
     "books": [{"symbol": "BTCUSDT", "in_sync": true, "reason": null, "complete": true,
                "last_update_id": 52811370139, "event_time": 12:03:59.941,
                "bids": <binary>, "asks": <binary>},
               ...,
               {"symbol": "NEWUSDT", "in_sync": false, "reason": "not yet synced"}]}

Measured on the embedded server (1262 books of 100 levels a side): one document per book with the
unique `(symbol, minute)` and the `minute` index, 0.22 s to insert; the same books in 4 batches,
0.03 to 0.06 s. Each secondary index costs that server about as much as the document itself.

Read back, a *boundary book* is one symbol at one close, flat (what `boundary_book_usable`, the
snapshot asset and the catch-up take):

    {"symbol": "BTCUSDT", "minute": 12:03, "close": 12:04, "connection": "ws-1",
     "decided_at": 12:04:00.112, "revised": false, "depth_limit": 100, "in_sync": true,
     "reason": null, "complete": true, "last_update_id": 52811370139,
     "event_time": 12:03:59.941, "bids": <binary>, "asks": <binary>}

A decision is never edited in place: a revision (the recorder learns after the fact that a book
it published may be wrong, `revised: true`, no book, the reason) is a later batch, and the latest
decision of a symbol at a close wins. So every write is an insert, and a batch replayed from the
spool (its `_id` is fixed when it is made) replaces itself instead of doubling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bson import ObjectId

from acts_pipeline.storage.client import MongoStore, WriteResult, _reported
from acts_pipeline.storage.collections import BOUNDARY_BOOKS, boundary_book_usable
from acts_pipeline.storage.handlers import as_utc

#: The fields a batch holds once for all its books.
BATCH_FIELDS = ("minute", "close", "connection", "decided_at", "revised", "depth_limit")
#: At most this many books in one document (400 books of 100 levels a side are 1.3 MB; MongoDB's
#: limit is 16 MB).
MAX_BOOKS_PER_BATCH = 500
#: The unique index of the per-book layout this one replaced; it would refuse a second batch of a
#: minute (its batches have no `symbol`), so `BoundaryBooks.prepare` drops it.
LEGACY_UNIQUE_INDEX = "symbol_minute_unique"


def batches(books: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The stored form of boundary books (flat, as `boundary_document` makes them): one batch per
    (minute, connection, decision), each with its own `_id`."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for book in books:
        groups.setdefault(tuple(book[f] for f in BATCH_FIELDS), []).append(book)
    documents = []
    for key, group in groups.items():
        for start in range(0, len(group), MAX_BOOKS_PER_BATCH):
            part = group[start:start + MAX_BOOKS_PER_BATCH]
            entries = [{k: v for k, v in book.items() if k not in BATCH_FIELDS} for book in part]
            documents.append({
                "_id": ObjectId(), **dict(zip(BATCH_FIELDS, key)),
                "usable": [book["symbol"] for book in part if boundary_book_usable(book)],
                "unusable": [book["symbol"] for book in part if not boundary_book_usable(book)],
                "books": entries,
            })
    return documents


def books_of(batch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The flat boundary books a stored batch holds (none for a document of another layout)."""
    common = {f: batch.get(f) for f in BATCH_FIELDS}
    return [{**common, **entry} for entry in batch.get("books", ())]


def _order(book: Mapping[str, Any]) -> tuple:
    return as_utc(book["decided_at"]), bool(book["revised"])


def latest(books: Iterable[Mapping[str, Any]]) -> dict[tuple[str, datetime], dict[str, Any]]:
    """Each (symbol, minute)'s latest decision: a revision wins over the book it withdraws."""
    current: dict[tuple[str, datetime], dict[str, Any]] = {}
    for book in books:
        key = (book["symbol"], as_utc(book["minute"]))
        if key not in current or _order(book) >= _order(current[key]):
            current[key] = dict(book)
    return current


class BoundaryBooks:
    """`boundary_books` read and written in the layout above, through a `MongoStore`."""

    def __init__(self, store: MongoStore):
        self.store = store

    def prepare(self) -> None:
        """Indexes in place, and the unique index of the per-book layout dropped if still there."""
        collection = self.store.collection(BOUNDARY_BOOKS)
        with _reported(f"preparing {BOUNDARY_BOOKS}"):
            if LEGACY_UNIQUE_INDEX in collection.index_information():
                collection.drop_index(LEGACY_UNIQUE_INDEX)

    def write(self, books: Iterable[Mapping[str, Any]]) -> WriteResult:
        """Stores flat boundary books (for tests and tools; the recorder spools `batches` first)."""
        return self.store.insert_or_replace(BOUNDARY_BOOKS, batches(books))

    def _find(self, query: Mapping[str, Any], projection: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with _reported(f"reading {BOUNDARY_BOOKS}"):
            return list(self.store.collection(BOUNDARY_BOOKS).find(query, projection))

    def at(self, minute: datetime, symbols: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The boundary books of `minute` (the book at its close) by symbol, of `symbols` or all."""
        wanted = None if symbols is None else set(symbols)
        books = latest(b for batch in self._find({"minute": minute}) for b in books_of(batch)
                       if wanted is None or b["symbol"] in wanted)
        return {symbol: book for (symbol, _), book in books.items()}

    def decided(self, minute: datetime) -> set[str]:
        """The symbols with a stored decision at `minute`'s close, book or not (a cheap read)."""
        batches_ = self._find({"minute": minute}, {"_id": False, "usable": True, "unusable": True})
        return {s for batch in batches_ for s in (*batch.get("usable", ()), *batch.get("unusable", ()))}

    def between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every boundary book of the minutes in `[start, end)`, by minute then symbol."""
        books = latest(b for batch in self._find({"minute": {"$gte": start, "$lt": end}}) for b in books_of(batch))
        return [books[key] for key in sorted(books, key=lambda k: (k[1], k[0]))]

    def usable_minutes(self, start: datetime, end: datetime) -> dict[str, set[datetime]]:
        """Per symbol, the minutes in `[start, end)` whose latest decision carries a usable book
        (read without the levels)."""
        found = self._find({"minute": {"$gte": start, "$lt": end}},
                           {"_id": False, "minute": True, "decided_at": True, "revised": True,
                            "usable": True, "unusable": True})
        found.sort(key=_order)
        minutes: dict[str, set[datetime]] = {}
        for batch in found:
            minute = as_utc(batch["minute"])
            for symbol in batch.get("usable", ()):
                minutes.setdefault(symbol, set()).add(minute)
            for symbol in batch.get("unusable", ()):
                minutes.get(symbol, set()).discard(minute)
        return {symbol: found_minutes for symbol, found_minutes in minutes.items() if found_minutes}

    def withdrawn(self, start: datetime, end: datetime) -> dict[tuple[str, datetime], str]:
        """The books of minutes in `[start, end)` that the recorder published and then withdrew
        (a revision), by (symbol, minute), with the reason. Final: once withdrawn, a close gets
        no book again. Reads the revisions only (small batches, no levels)."""
        found = self._find({"minute": {"$gte": start, "$lt": end}, "revised": True},
                           {"_id": False, "minute": True, "books.symbol": True, "books.reason": True})
        return {(book["symbol"], as_utc(batch["minute"])): book.get("reason") or "withdrawn by the recorder"
                for batch in found for book in batch.get("books", ())}

    def delete_before(self, minute: datetime) -> int:
        """Deletes the batches of minutes before `minute` (the retention); how many."""
        return self.store.delete_before(BOUNDARY_BOOKS, minute)
