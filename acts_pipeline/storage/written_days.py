"""Written days: per cell collection and UTC day, a count of the writes MongoDB took there.

The research archive holds each closed day as a Parquet file, and MongoDB keeps features and
klines forever by default, so most archived days are in both. MongoDB's copy wins where both hold
a cell (it is the newer), but reading it costs what the archive spares: one symbol's features
over 30 days are 43,200 documents, 5.5 s of the embedded server against 0.7 s from the archive
(`benchmarks/archive_day.py`). This count says when the archive's file of a day is still all of
MongoDB's day, so that a reader (`acts_pipeline.read`) can skip MongoDB there, and MongoDB's
retention does not delete documents that were rewritten after their day was archived (a features
backfill, a late fill of snapshots): a changed document has the same key as the archived one, so
comparing keys alone did not see it.

The rule, kept by `MongoStore`, through which every write of cells goes (the durable writer,
the spool's replay, the backfills, deletions of withdrawn cells):

- a write of cells adds one to the version of every day its documents fall in before it sends
  them, and one again after it (also when it failed part-way: some documents may have landed);
- the archive reads the day's version before it reads the day's documents, and records it in
  the day's manifest (`ArchivedFile.mongo_version`);
- the archive's file is the day's content exactly when the recorded version is the current one.

A write that began before the archive read the version moves it again when it ends, so a file
that missed it is not trusted. A write that begins afterwards moves it at once. The one case the
count misses is a write in flight while the archive starts whose writer dies between landing
its documents and its second count (a crash within that write's round trip, during the minutes
an archive reads): that day keeps the archived copy of those cells until it is written or
archived again. Writes that bypass `MongoStore` (a person's `insert_many` in a shell) are not
counted: archive the day again after such an edit.

Documents: `{"_id": "<collection>|<day>", "collection", "day": "2026-11-30", "version": int,
"written_at": datetime}`. A day never written through the count has version 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime

from pymongo import UpdateOne
from pymongo.collection import Collection


def ledger_id(collection: str, day: date) -> str:
    return f"{collection}|{day.isoformat()}"


def days_of(minutes: Iterable[datetime]) -> list[date]:
    """The UTC days of `minutes`, each once, in order."""
    days: set[date] = set()
    for minute in minutes:
        if minute.tzinfo is not None:
            minute = minute.astimezone(UTC)
        days.add(minute.date())
    return sorted(days)


def note_writes(ledger: Collection, collection: str, days: Iterable[date]) -> None:
    """Adds one to the version of each of `days` of `collection` (one bulk request)."""
    now = datetime.now(UTC)
    requests = [UpdateOne({"_id": ledger_id(collection, day)},
                          {"$inc": {"version": 1}, "$max": {"written_at": now},
                           "$setOnInsert": {"collection": collection, "day": day.isoformat()}}, upsert=True)
                for day in days]
    if requests:
        ledger.bulk_write(requests, ordered=False)


def versions(ledger: Collection, collection: str, days: Iterable[date]) -> dict[date, int]:
    """The current version of each of `days` (0 for a day never written through the count)."""
    wanted = {ledger_id(collection, day): day for day in days}
    found: Mapping[str, int] = {d["_id"]: int(d.get("version", 0))
                                for d in ledger.find({"_id": {"$in": sorted(wanted)}}, {"version": True})}
    return {day: found.get(key, 0) for key, day in wanted.items()}
