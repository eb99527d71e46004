"""`features_history`: the order-book features of any past day, recomputed from its stored snapshots.

A day whose Parquet archive is current (MongoDB has not written the day's snapshots since it was
archived, `storage.written_days`) is read from that file alone. Otherwise it is read from MongoDB a
minute at a time (`stream_documents`), then, for the snapshots MongoDB no longer holds (its
retention deleted them after the day was archived), from the day's Parquet file; always in
batches of `BATCH_SNAPSHOTS` snapshots (a day of 500 symbols is 720,000 books: never in memory at
once). Each batch goes through the live asset's path: the snapshot handler,
`core.features.compute_features`, the frame handler, a write by (symbol, minute) that inserts or
replaces.
"""

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    BackfillPolicy,
    Backoff,
    RetryPolicy,
    asset,
)

from acts_pipeline.core.cells import format_minute
from acts_pipeline.core.features import compute_features
from acts_pipeline.orchestration.archive_assets import ArchiveResource
from acts_pipeline.orchestration.history_partitions import day_partitions
from acts_pipeline.storage.client import MongoStore
from acts_pipeline.storage.collections import ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS
from acts_pipeline.storage.handlers import DataFrameHandler, SnapshotHandler, as_utc
from acts_pipeline.storage.archive import Archive, ArchivedFile, ArchiveError
from acts_pipeline.storage.history_io import archive_only_keys, archived_snapshots, stream_documents
from acts_pipeline.storage.io_manager import COLLECTION_METADATA_KEY, MongoResource

#: Snapshots computed and written together (about 30 MB of books at 100 levels a side).
BATCH_SNAPSHOTS = 2048
DAY = timedelta(days=1)
DAY_FORMAT = "%Y-%m-%d"
#: A day is idempotent to redo (its writes replace); a retried step redoes the run's days after a database blip.
STORAGE_RETRY_POLICY = RetryPolicy(max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL)


def day_start(partition_key: str) -> datetime:
    return datetime.strptime(str(partition_key), DAY_FORMAT).replace(tzinfo=UTC)


def recompute_features(store: MongoStore, batches: Iterable[list[dict]]) -> dict:
    """Computes and writes (insert or replace) the features of the snapshot documents of every
    batch; what it did (counts, first and last minute, symbols).

    A batch's features are written on a thread of their own while the next batch is read and
    computed: the server's insert and our work overlap (one write in flight; each is waited for
    before the next is sent, and all before this returns, an error included). A batch is
    inserted, and the documents already there replaced (`insert_or_replace`), while most are new
    (a day backfilled); once a written batch was mostly replacements (a day recomputed again),
    the next ones are upserted. On the embedded server, 2,500 new features documents took 0.6 to
    0.9 s of its CPU inserted against 1.8 s upserted; 2,500 existing ones 1.0 to 1.4 s upserted
    against 1.8 s for the refused insert and the upserts."""
    snapshots = inserted = replaced = 0
    symbols: set[str] = set()
    first = last = None
    write = store.insert_or_replace

    def written(pending: Future | None) -> None:
        nonlocal inserted, replaced, write
        if pending is None:
            return
        result = pending.result()
        inserted += result.inserted
        replaced += result.replaced
        write = store.upsert if result.replaced > result.inserted else store.insert_or_replace

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="features-write") as writer:
        pending: Future | None = None
        for documents in batches:
            frame = compute_features(SnapshotHandler().from_documents(documents))
            features = DataFrameHandler().to_documents(frame)
            written(pending)
            pending = writer.submit(write, ORDER_BOOK_FEATURES, features)
            snapshots += len(documents)
            symbols.update(d["symbol"] for d in documents)
            # Batches from MongoDB come by minute, from the archive by symbol: look at every minute.
            minutes = [d["minute"] for d in documents]
            earliest, latest = as_utc(min(minutes)), as_utc(max(minutes))
            first = min(first or earliest, earliest)
            last = max(last or latest, latest)
        written(pending)
    return {"snapshots": snapshots, "features_inserted": inserted, "features_replaced": replaced,
            "symbols": symbols, "first": first, "last": last}


def current_snapshot_file(store: MongoStore, archive: Archive, day: date) -> ArchivedFile | None:
    """The day's archived snapshot file when it is all MongoDB holds of the day and more (MongoDB
    has not written the day since it was archived, `storage.written_days`; the file also keeps
    what retention deleted): reading it spares the embedded server every snapshot document,
    0.5 ms of its CPU each at 100 levels a side. None otherwise: MongoDB must be read."""
    return archive.current_files(store, ORDER_BOOK_SNAPSHOTS, [day]).get(day)


def archived_features(archive: Archive, day: date) -> bool:
    """Whether the archive holds a features file of `day`; False when it cannot be read."""
    try:
        entry = archive.entry(day, ORDER_BOOK_FEATURES)
    except (OSError, ValueError):
        return False
    return entry is not None and entry.path is not None


@asset(
    partitions_def=day_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=STORAGE_RETRY_POLICY,
    output_required=False,
    metadata={COLLECTION_METADATA_KEY: ORDER_BOOK_FEATURES},
    group_name="history",
    kinds={"python", "pandas", "mongodb"},
)
def features_history(context: AssetExecutionContext, mongo: MongoResource,
                     archive: ArchiveResource) -> Iterator[AssetMaterialization]:
    """Order-book features (top of book, spread, weighted mid, depth and bias over 1..100 levels,
    notional within 10/50/100 bps, level counts, crossed flag) recomputed for every snapshot
    stored on a UTC day, all symbols: the backfill of `order_book_features`.

    One partition per closed UTC day. Select any range of days and *Materialize*: one run goes
    through the days in order, and each day turns materialized as soon as its features are
    written. The features are exactly what the minute runs compute (the same function, the same
    documents in `order_book_features`, one per (symbol, minute)), so a re-run replaces them and
    never duplicates them; the exchange is not touched. The snapshots are those MongoDB holds,
    and, for a day MongoDB's retention has already thinned (`ACTS_SNAPSHOT_RETENTION_DAYS`), those
    only the day's Parquet archive still holds; a day whose archive MongoDB has not written since
    is read from the archive alone (the same snapshots, without the database's cost). A minute
    with no snapshot in either gets no features (fill snapshots first with `snapshots_from_boundary_books`, within the recorder's
    retention). Snapshots are read a minute at a time, in batches of 2,048 books, so memory stays
    bounded however many symbols a day holds.

    Each day's materialization says how many snapshots were read (from MongoDB, from the archive)
    and features written (new and replaced), the symbols, the first and last minute, and the
    seconds it took.
    """
    store = mongo.get_store()
    target = archive.get_archive()
    for day in sorted(day_start(k) for k in context.partition_keys):
        started = time.monotonic()
        totals = {"snapshots": 0, "features_inserted": 0, "features_replaced": 0}
        symbols: set[str] = set()
        first = last = None

        def add(done: dict) -> None:
            nonlocal first, last
            for name in totals:
                totals[name] += done[name]
            symbols.update(done["symbols"])
            first = min(filter(None, (first, done["first"])), default=None)
            last = max(filter(None, (last, done["last"])), default=None)

        note = None
        archived = None
        try:
            archived = current_snapshot_file(store, target, day.date())
            if archived is not None and archived.path is not None:
                add(recompute_features(store, archived_snapshots(target, archived.path, None,
                                                                 batch_size=BATCH_SNAPSHOTS)))
        except (OSError, ArchiveError) as exc:
            # Nothing lost: features written so far are replaced by MongoDB's snapshots' below.
            context.log.warning(f"features_history {day:%Y-%m-%d}: the archive's current file could not be read "
                                f"({exc}); reading MongoDB instead")
            archived = None
            totals = dict.fromkeys(totals, 0)
            symbols, first, last = set(), None, None
        from_mongo = 0
        if archived is None:
            add(recompute_features(store, stream_documents(store, ORDER_BOOK_SNAPSHOTS, day, day + DAY,
                                                           batch_size=BATCH_SNAPSHOTS)))
            from_mongo = totals["snapshots"]
            try:
                relative, keys = archive_only_keys(store, target, day.date())
                if keys:
                    add(recompute_features(store, archived_snapshots(target, relative, keys,
                                                                     batch_size=BATCH_SNAPSHOTS)))
            except (OSError, ArchiveError) as exc:
                note = f"the archive could not be read ({exc}): features of MongoDB's snapshots only"
                context.log.warning(f"features_history {day:%Y-%m-%d}: {note}")
        seconds = round(time.monotonic() - started, 1)
        context.log.info(f"features_history {day:%Y-%m-%d}: features of {totals['snapshots']:,} snapshots "
                         f"({from_mongo:,} from MongoDB, {totals['snapshots'] - from_mongo:,} from the archive; "
                         f"{totals['features_inserted']:,} new, {totals['features_replaced']:,} replaced) in {seconds} s")
        metadata = {**totals, "read_from": "the archive (current: MongoDB has not written the day since)"
                    if archived is not None else "MongoDB (and the archive's rows MongoDB no longer holds)",
                    "snapshots_from_mongodb": from_mongo,
                    "snapshots_from_archive": totals["snapshots"] - from_mongo, "symbols": len(symbols),
                    "first_minute": format_minute(first) if first else "-",
                    "last_minute": format_minute(last) if last else "-", "seconds": seconds}
        if note or not totals["snapshots"]:
            metadata["note"] = note or "no snapshot of this day in MongoDB or the archive: no features to compute"
        if totals["snapshots"] and archived_features(target, day.date()):
            # The archived file now predates MongoDB's features of the day (`storage.written_days`).
            metadata["archive"] = (f"the day's features file in the archive predates this run: materialize "
                                   f"daily_archive {day:%Y-%m-%d} to bring it up to date (until then "
                                   "acts_pipeline.read reads the day from MongoDB, and retention keeps it)")
        yield AssetMaterialization(asset_key=context.asset_key, partition=day.strftime(DAY_FORMAT), metadata=metadata)


ASSETS = [features_history]
