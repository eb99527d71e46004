"""`snapshots_from_boundary_books`: a past day's missing snapshot cells filled from the stream
recorder's boundary books, within the recorder's retention.

Pure bookkeeping first (`DayFill`: which cells of the day were stored, filled, or stay missing and
why), then the asset reads and writes an hour at a time: the stored cells and the usable books
without their levels, then the levels of only the books it will store.
"""

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    BackfillPolicy,
    DefaultScheduleStatus,
    MetadataValue,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    asset,
    schedule,
)

from acts_pipeline.core.cells import format_minute
from acts_pipeline.core.features import compute_features
from acts_pipeline.orchestration.assets import _stream_snapshot
from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.orchestration.history_features import DAY_FORMAT, STORAGE_RETRY_POLICY, day_start
from acts_pipeline.orchestration.history_partitions import day_partitions
from acts_pipeline.orchestration.symbols import registered_symbols
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline.storage.client import MongoStore
from acts_pipeline.storage.collections import (
    BOUNDARY_BOOKS,
    ORDER_BOOK_FEATURES,
    ORDER_BOOK_SNAPSHOTS,
    boundary_book_usable,
)
from acts_pipeline.storage.handlers import DataFrameHandler, SnapshotHandler, as_utc
from acts_pipeline.storage.history_io import first_minute, insert_new
from acts_pipeline.storage.io_manager import COLLECTION_METADATA_KEY, MongoResource

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

#: Why a cell of the day stays without a snapshot.
OUTSIDE_RETENTION = "outside the recorder's retention (before its oldest kept book)"
NO_BOOK = "no boundary book (the recorder was not running, or not recording the symbol)"
UNUSABLE = "the recorder's book at the close was not usable (out of sync, or withdrawn)"
STORED_MEANWHILE = "stored by another run meanwhile (kept)"


@dataclass
class DayFill:
    """The cells of one day: already stored (by source), filled from boundary books, missing (by
    reason), per symbol for the table."""

    stored: Counter = field(default_factory=Counter)
    filled: int = 0
    missing: Counter = field(default_factory=Counter)
    filled_by_symbol: Counter = field(default_factory=Counter)
    missing_by_symbol: Counter = field(default_factory=Counter)

    def miss(self, symbol: str, reason: str, count: int = 1) -> None:
        self.missing[reason] += count
        self.missing_by_symbol[symbol] += count

    def metadata(self, symbols: int, oldest_book: datetime | None, seconds: float) -> dict:
        table = "\n".join(
            f"| {s} | {self.filled_by_symbol[s]} | {self.missing_by_symbol[s]} |"
            for s in sorted(set(self.filled_by_symbol) | set(self.missing_by_symbol),
                            key=lambda s: (-self.missing_by_symbol[s], -self.filled_by_symbol[s], s))[:50])
        return {
            "cells": symbols * 1440,
            "symbols": symbols,
            "already_stored": MetadataValue.json(dict(self.stored)),
            "filled_from_boundary_books": self.filled,
            "missing": sum(self.missing.values()),
            "missing_by_reason": MetadataValue.json(dict(self.missing)),
            "oldest_boundary_book": format_minute(oldest_book) if oldest_book else "none stored",
            "per_symbol": MetadataValue.md("| symbol | filled | still missing |\n|---|---|---|\n" + table
                                           if table else "every cell was already stored"),
            "seconds": round(seconds, 1),
        }


def fill_hour(store: MongoStore, books: BoundaryBooks, start: datetime, symbols: list[str],
              oldest_book: datetime | None, fill: DayFill) -> None:
    """Fills the missing cells of `symbols` in the hour from `start` that the recorder has a usable
    book for (a stored snapshot is never replaced), with their features; counts the rest in `fill`."""
    end = start + HOUR
    registered = set(symbols)
    stored = {}
    for document in store.collection(ORDER_BOOK_SNAPSHOTS).find(
            {"minute": {"$gte": start, "$lt": end}}, {"_id": False, "symbol": True, "minute": True, "source": True}):
        if document["symbol"] in registered:
            stored[(document["symbol"], as_utc(document["minute"]))] = document.get("source", "rest")
    for source in stored.values():
        fill.stored[source] += 1
    usable = books.usable_minutes(start, end) if oldest_book is not None and end > oldest_book else {}
    wanted: dict[datetime, list[str]] = {}
    unexplained = False
    for symbol in symbols:
        for index in range(60):
            minute = start + index * MINUTE
            if (symbol, minute) in stored:
                continue
            if minute in usable.get(symbol, ()):
                wanted.setdefault(minute, []).append(symbol)
            elif oldest_book is None or minute < oldest_book:
                fill.miss(symbol, OUTSIDE_RETENTION)
            else:
                unexplained = True  # no book at that close, or an unusable one: told apart below
    if unexplained:
        _explain(books, start, symbols, stored, usable, oldest_book, fill)
    snapshots = []
    for minute, wanted_symbols in sorted(wanted.items()):
        documents = books.at(minute, wanted_symbols)
        for symbol in wanted_symbols:
            document = documents.get(symbol)
            if boundary_book_usable(document):
                snapshots.append(_stream_snapshot(document))
            else:  # withdrawn between the two reads
                fill.miss(symbol, UNUSABLE)
    if not snapshots:
        return
    inserted = set(insert_new(store, ORDER_BOOK_SNAPSHOTS, SnapshotHandler().to_documents(snapshots)))
    new = [s for s in snapshots if (s.symbol, s.minute) in inserted]
    for snapshot in snapshots:
        if (snapshot.symbol, snapshot.minute) not in inserted:
            fill.miss(snapshot.symbol, STORED_MEANWHILE)
    if new:
        store.upsert(ORDER_BOOK_FEATURES, DataFrameHandler().to_documents(compute_features(new)))
    fill.filled += len(new)
    fill.filled_by_symbol.update(s.symbol for s in new)


def _explain(books: BoundaryBooks, start: datetime, symbols: list[str], stored: dict, usable: dict,
             oldest_book: datetime, fill: DayFill) -> None:
    """Counts each missing cell of the hour with no usable book inside the retention: did the
    recorder decide at that close (an unusable book) or store nothing for it?"""
    for index in range(60):
        minute = start + index * MINUTE
        if minute < oldest_book:
            continue
        pending = [s for s in symbols if (s, minute) not in stored and minute not in usable.get(s, ())]
        if not pending:
            continue
        decided = books.decided(minute)
        for symbol in pending:
            fill.miss(symbol, UNUSABLE if symbol in decided else NO_BOOK)


@asset(
    partitions_def=day_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=STORAGE_RETRY_POLICY,
    output_required=False,
    metadata={COLLECTION_METADATA_KEY: ORDER_BOOK_SNAPSHOTS},
    group_name="history",
    kinds={"python", "mongodb"},
)
def snapshots_from_boundary_books(context: AssetExecutionContext,
                                  mongo: MongoResource) -> Iterator[AssetMaterialization]:
    """Order-book snapshots of a past UTC day's missing cells, taken from the stream recorder's
    boundary books (its book of each symbol at each minute's close), with their features.

    One partition per closed UTC day, for every registered symbol. The recorder keeps its books
    `ACTS_RECORDER_RETENTION_DAYS` (default 7), so a day inside that retention can have its gaps
    filled (a run that failed, a platform that was stopped while the recorder kept recording).
    Only books the recorder vouched for are used (in sync at the close, complete within the
    depth), and a stored snapshot is never replaced: a cell that has one keeps it. A filled cell
    is a `stream` snapshot with the recorder's own timestamps (`event_time` of the last event
    applied, `captured_at` when the recorder decided the book), never the time of the backfill;
    its features are computed as the minute runs compute them.

    Each day's materialization says how many cells were already stored (by source), how many it
    filled, and how many stay missing and why: before the recorder's oldest kept book (outside
    its retention), no book at that close (the recorder was not running or not recording the
    symbol), or a book the recorder could not vouch for; and a table of the symbols with gaps.
    Re-running a day fills nothing twice.
    """
    store = mongo.get_store()
    books = BoundaryBooks(store)
    symbols = sorted(registered_symbols(context.instance))
    oldest_book = first_minute(store, BOUNDARY_BOOKS)
    for day in sorted(day_start(k) for k in context.partition_keys):
        started = time.monotonic()
        fill = DayFill()
        for hour in range(24):
            fill_hour(store, books, day + hour * HOUR, symbols, oldest_book, fill)
        metadata = fill.metadata(len(symbols), oldest_book, time.monotonic() - started)
        context.log.info(f"snapshots_from_boundary_books {day:%Y-%m-%d}: {fill.filled:,} cells filled from the "
                         f"recorder's books, {sum(fill.missing.values()):,} still missing "
                         f"({', '.join(f'{n:,} {r}' for r, n in fill.missing.items()) or 'none'})")
        yield AssetMaterialization(asset_key=context.asset_key, partition=day.strftime(DAY_FORMAT), metadata=metadata)


@schedule(cron_schedule="2 0 * * *", execution_timezone="UTC", target=[snapshots_from_boundary_books],
          name="snapshots_from_boundary_books_schedule", default_status=DefaultScheduleStatus.RUNNING)
def snapshots_from_boundary_books_schedule(context: ScheduleEvaluationContext, book_source: BookSource):
    """Every day at 00:02 UTC, with the stream recorder (`ACTS_BOOK_SOURCE=stream`): yesterday's
    missing cells from the recorder's books, before `daily_coverage` (00:10) counts the day and
    `daily_archive` (00:15) writes it. `snapshot_catch_up_sensor` fills the last hour's gaps as
    they happen; this fills the rest of the day (a daemon down for hours while the recorder ran),
    which no minute partition reaches once the live window has moved past it."""
    if not book_source.streams():
        return SkipReason("REST design (ACTS_BOOK_SOURCE=rest): no boundary books to fill from")
    day = f"{context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1):{DAY_FORMAT}}"
    return RunRequest(run_key=day, partition_key=day)


ASSETS = [snapshots_from_boundary_books]
SCHEDULES = [snapshots_from_boundary_books_schedule]
