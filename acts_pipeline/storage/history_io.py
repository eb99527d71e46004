"""The MongoDB reads and writes of the history backfills that `MongoStore` has no method for.

- `stream_documents`: a range of minutes of a cell collection, asked a minute at a time and handed
  over in bounded batches, so a day of 500 symbols (720,000 snapshots) is never in memory at once,
  neither in the server nor here;
- `insert_new`: an insert that never replaces (a backfill from the recorder's books must not
  overwrite a snapshot a run stored);
- `first_minute`: the oldest minute a collection holds (where the recorder's retention starts);
- `archived_snapshots`: a day's snapshots from its Parquet file (all of them, or those only the
  archive still holds after MongoDB's retention), as snapshot documents, in bounded batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pymongo import ASCENDING
from pymongo.errors import BulkWriteError

from acts_pipeline.storage.archive import Archive, Keys, mongo_keys
from acts_pipeline.storage.bson_levels import find_decoded
from acts_pipeline.storage.client import DUPLICATE_KEY, MongoStore, _reported
from acts_pipeline.storage.collections import ORDER_BOOK_SNAPSHOTS
from acts_pipeline.storage.handlers import as_utc


#: The span of one query of `stream_documents`: a minute of every symbol (500 snapshots at 500
#: symbols), what a live minute run reads too.
QUERY_SPAN = timedelta(minutes=1)


def stream_documents(store: MongoStore, name: str, start: datetime, end: datetime, *,
                     batch_size: int, span: timedelta = QUERY_SPAN) -> Iterator[list[dict[str, Any]]]:
    """The documents of `name` whose `minute` is in `[start, end)`, by minute (the minute index),
    in lists of at most `batch_size`, without their `_id`; a snapshot's `bids` and `asks` as
    `(levels, 2)` float64 arrays, decoded by `bson_levels` (a run of `features_history` spent
    0.49 ms of its CPU a snapshot with the driver's lists, 0.14 ms with these).

    Asked one `span` at a time: the embedded server builds a query's whole result before it
    answers, and answers nothing else meanwhile, not even the driver's heartbeat, which gives up
    on the server and cancels the read (`operation cancelled`) when that takes longer than its
    timeout. An hour of 500 symbols' snapshots (30,000) in one query did, on a loaded machine; a
    minute (500) is answered in well under a second, for the same server CPU in all
    (`benchmarks/features_history.py`). Read with no projection, `_id` dropped here: the embedded
    server deep-copies every document it applies a projection to, even `{"_id": False}`, which
    took 1.5 to 2.5 times its CPU for snapshots of 100 levels a side. MongoDB sends the few bytes
    of `_id` at no cost."""
    batch: list[dict[str, Any]] = []
    with _reported(f"reading {name}"):
        collection = store.collection(name)
        while start < end:
            stop = min(end, start + span)
            for document in find_decoded(collection, {"minute": {"$gte": start, "$lt": stop}}, sort="minute"):
                batch.append(document)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
            start = stop
    if batch:
        yield batch


def insert_new(store: MongoStore, name: str, documents: Sequence[Mapping[str, Any]]) -> list[tuple[str, datetime]]:
    """Inserts those of `documents` whose cell `(symbol, minute)` `name` does not hold yet, and
    leaves the others as stored; returns the cells it inserted. One unordered insert: the unique
    index refuses each cell already there (also one stored by a run in the meantime)."""
    if not documents:
        return []
    batch = [dict(d) for d in documents]
    refused: set[int] = set()
    with store.writing_cells(name, (d["minute"] for d in batch)), _reported(f"writing {len(batch)} documents to {name}"):
        try:
            store.collection(name).insert_many(batch, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            refused = {e["index"] for e in errors}
    return [(d["symbol"], as_utc(d["minute"])) for i, d in enumerate(documents) if i not in refused]


def first_minute(store: MongoStore, name: str) -> datetime | None:
    """The oldest `minute` in `name` (by its minute index), None when it is empty."""
    with _reported(f"reading {name}"):
        oldest = store.collection(name).find_one({}, {"_id": False, "minute": True}, sort=[("minute", ASCENDING)])
    return as_utc(oldest["minute"]) if oldest else None


def archive_only_keys(store: MongoStore, archive: Archive, day: date) -> tuple[str | None, Keys]:
    """The day's snapshot file in the archive (relative path; None if the day was not archived)
    and the keys `(symbol, minute in ms)` it holds that MongoDB no longer does."""
    entry = archive.entry(day, ORDER_BOOK_SNAPSHOTS)
    if entry is None or entry.path is None:
        return None, set()
    return entry.path, archive.keys(entry.path) - mongo_keys(store, ORDER_BOOK_SNAPSHOTS, day)


def _sides(batch: pa.RecordBatch, prices: str, quantities: str) -> list[np.ndarray]:
    """One side of every row of `batch` as (k, 2) `[price, qty]` arrays (the archive's two list
    columns back to MongoDB's pairs), sliced from the columns' flat values, no Python float."""
    price_lists, quantity_lists = batch.column(prices), batch.column(quantities)
    offsets = price_lists.offsets.to_numpy()
    price_values = price_lists.values.to_numpy(zero_copy_only=False)
    quantity_values = quantity_lists.values.to_numpy(zero_copy_only=False)
    return [np.column_stack((price_values[a:b], quantity_values[a:b])) for a, b in zip(offsets[:-1], offsets[1:])]


def archived_snapshots(archive: Archive, relative: str, keys: Keys | None, *,
                       batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """The snapshot rows of the archive file `relative` whose key is in `keys` (None: every row),
    as the documents MongoDB held (`bids`/`asks` as `[price, qty]` arrays), in lists of at most
    `batch_size`."""
    if keys is not None and not keys:
        return
    with archive.fs.open(archive.full_path(relative), "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size):
            if keys is not None:
                symbols = batch.column("symbol").to_pylist()
                minutes_ms = batch.column("minute").cast(pa.int64()).to_pylist()
                wanted = [i for i, key in enumerate(zip(symbols, minutes_ms)) if key in keys]
                if not wanted:
                    continue
                batch = batch.take(pa.array(wanted))
            bids = _sides(batch, "bid_prices", "bid_qtys")
            asks = _sides(batch, "ask_prices", "ask_qtys")
            columns = {name: batch.column(name).to_pylist() for name in
                       ("symbol", "minute", "captured_at", "requested_at", "last_update_id", "depth_limit",
                        "source", "event_time")}
            documents = []
            for i in range(batch.num_rows):
                document = {name: values[i] for name, values in columns.items()}
                if document["event_time"] is None:
                    del document["event_time"]
                documents.append({**document, "bids": bids[i], "asks": asks[i]})
            yield documents
