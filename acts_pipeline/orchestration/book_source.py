"""Where `order_book_snapshot` takes each cell's book: the stream recorder's boundary books, or a
REST request at the close.

`ACTS_BOOK_SOURCE=stream`: a cell's book is the recorder's book at the minute's close (stored in
`boundary_books` within a fraction of a second after it); a symbol the recorder could not vouch
for at that close (just added, resyncing, recorder down) is fetched over REST while the capture
tolerance allows, and otherwise stays missing, with the recorder's reason. Past minutes within
the recorder's retention can be materialized again from the same books. `rest`: every book is
a REST request sent right after the close, as before the recorder existed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from acts_pipeline import settings
from acts_pipeline.core.cells import Cell, minute_close
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline.storage.collections import ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS, RECORDER_NAME, RECORDER_STATUS
from acts_pipeline.storage.handlers import as_utc
from acts_pipeline.storage.io_manager import MongoResource

class BookSource(ConfigurableResource):
    """The source of the snapshot asset's books (see the module docstring)."""

    mongo: MongoResource
    source: str = Field(
        default=settings.DEFAULT_BOOK_SOURCE,
        description="stream: each book is the stream recorder's book at the minute's close, REST as "
        "the per-symbol fallback; rest: a REST request right after the close (ACTS_BOOK_SOURCE).")
    wait_for_recorder_seconds: float = Field(
        default=1.5, description="How long after a close to wait for a symbol's boundary book that the "
        "recorder has not written yet, before the REST fallback.")
    recorder_stale_seconds: float = Field(
        default=30.0, description="A recorder whose status is older than this is taken as down: every "
        "book of the minute comes over REST at once.")

    def streams(self) -> bool:
        return settings.parse_book_source(self.source) == "stream"

    def recorder_status(self) -> dict[str, Any] | None:
        """The recorder's last status document (`recorder_status`), None if it never wrote one."""
        return self.mongo.get_store().get_status(RECORDER_STATUS, RECORDER_NAME)

    def recorder_down(self, status: dict[str, Any] | None, now: datetime) -> str | None:
        """Why the recorder that wrote `status` is taken as down ("stopped", "silent for 42 s",
        never reported), or None while it is up."""
        if not status or not status.get("updated_at"):
            return "not reporting"
        if status.get("state") == "stopped":
            return "stopped"
        age = (now - as_utc(status["updated_at"])).total_seconds()
        return f"silent for {age:.0f} s" if age > self.recorder_stale_seconds else None

    def boundary_books(self, minute: datetime, symbols: Iterable[str], *,
                       wait_until: datetime | None = None) -> dict[str, dict[str, Any]]:
        """The stored boundary books of `minute` (the book at its close) by symbol, usable or not;
        until every symbol has one or `wait_until` (wall clock) passes, which symbols have one is
        polled (without the levels), then the books are read once."""
        wanted = set(symbols)
        books = BoundaryBooks(self.mongo.get_store())
        while wait_until is not None and datetime.now(UTC) < wait_until and not wanted <= books.decided(minute):
            time.sleep(0.05)
        return books.at(minute, wanted)

    def stored_from_stream(self, cells: Iterable[Cell]) -> list[Cell]:
        """Those of `cells` whose stored snapshot came from the recorder (`source` stream)."""
        return [Cell(as_utc(d["minute"]), d["symbol"]) for d in self.mongo.get_store().find_cells(
            ORDER_BOOK_SNAPSHOTS, cells, fields=["source"]) if d.get("source") == "stream"]

    def withdraw(self, minute: datetime, symbols: Iterable[str]) -> list[str]:
        """Deletes the stored stream snapshots of `minute` for `symbols`, whose books the recorder
        withdrew after a run had stored them, and the features computed from them (a wrong book
        must not stand; a REST snapshot stored for the cell is kept). The symbols it deleted."""
        store = self.mongo.get_store()
        wrong = self.stored_from_stream([Cell(minute, s) for s in symbols])
        store.delete_cells(ORDER_BOOK_FEATURES, wrong)
        store.delete_cells(ORDER_BOOK_SNAPSHOTS, wrong)
        return [c.symbol for c in wrong]

    def wait_deadline(self, minute: datetime) -> datetime:
        return minute_close(minute) + timedelta(seconds=self.wait_for_recorder_seconds)
