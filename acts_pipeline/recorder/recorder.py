"""`Recorder`: every tracked symbol's local book, and its book at every minute close, made durable.

Everything runs as coroutines on the exchange transport's event loop (one thread): the websocket
callbacks apply events to the books synchronously, so a snapshot, a boundary decision and an
event never interleave inside one book. MongoDB calls run in worker threads.

The moving parts:

- **Symbols**: `symbols()` (the Dagster instance's `symbols` partitions, in production) is read
  every `symbols_every` seconds; a new symbol gets a book and a stream on a connection of the
  `StreamPool`, a removed one loses both.
- **Books and closes**: one `BoundaryTracker` per connection decides each symbol's boundary book
  at every close (the Tardis rule, `acts_pipeline.core.boundary`): on the symbol's first event
  after the close, or once the connection's clock (the largest `E` it carried; for a connection
  that keeps delivering but none of its events is past the close yet, the wall clock less
  `clock_margin_ms`) has passed the close.
- **Snapshots**: a book that is not in sync (new, after a gap, after a reconnect) or whose top
  `depth` levels would leave its complete range gets a REST snapshot of `snapshot_depth` levels,
  at most `snapshot_concurrency` at once and through the client's weight gate (its budget a share
  of the IP's weight, so the minute runs keep theirs). While snapshots are wanted, the recorder
  prepays their weight (up to its share) in the instance's weight ledger at the start of each
  minute, so the minute runs' REST fallback keeps to the rest and never starves a cold start. A book is snapshotted once its stream has
  delivered an event (or `quiet_snapshot_after` seconds after it was subscribed), so the
  snapshot is not older than the stream it is joined to. A resync touches one book only.
- **Writes**: the boundary records of each decision are inserted into `boundary_books` right
  away, one document per connection and close (`acts_pipeline.storage.boundary_books`: a revision
  is a later decision, and the latest wins). If MongoDB cannot take them, they are spooled to
  local disk and replayed, in order, before newer ones (each batch keeps its `_id`: a replay
  never doubles it).
- **Health**: `health()` (per symbol: in sync or why not, last event age, resyncs, messages a
  second; per connection: state, reconnects; the durable-after-close times), written to
  `recorder_status` every `status_every` seconds and served on the health endpoint.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from acts_pipeline.core.boundary import BoundaryRecord, BoundaryTracker
from acts_pipeline.core.errors import ExchangeError, MalformedResponseError, UnknownSymbolError
from acts_pipeline.core.local_book import LocalBook, SnapshotOutcome
from acts_pipeline.core.models import OrderBook
from acts_pipeline.core.parsing import ms_to_datetime, parse_depth_stream_message
from acts_pipeline.exchange.client import ExchangeClient
from acts_pipeline.exchange.rate_limits import IP_BUDGET_FRACTION, depth_weight
from acts_pipeline.exchange.streams import CombinedStream, StreamPool
from acts_pipeline.recorder.documents import boundary_document
from acts_pipeline.storage.boundary_books import BoundaryBooks, batches
from acts_pipeline.storage.client import MongoStore, StorageError
from acts_pipeline.storage.collections import BOUNDARY_BOOKS, RECORDER_NAME, RECORDER_STATUS
from acts_pipeline.storage.durable import Spool, flush_spool

log = logging.getLogger(__name__)

MINUTE_MS = 60_000


def snapshot_problem(book: OrderBook) -> str | None:
    """Why a REST snapshot cannot start (or extend) a local book, or None. A side with fewer levels
    than asked for is complete to its end (`LocalBook`): an empty one would be published as a
    complete book without bids (or asks) until events refill it. A spot book of a TRADING symbol
    has both sides, so an empty side is a fault of the reply (found by the stream soak)."""
    empty = [name for name, levels in (("bids", book.bids), ("asks", book.asks)) if not len(levels)]
    return f"no {' and no '.join(empty)} (lastUpdateId {book.last_update_id})" if empty else None


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SymbolHealth:
    connection: str
    subscribed_at: float
    events: int = 0
    last_event_at: float | None = None
    snapshots: int = 0
    snapshot_errors: int = 0
    last_error: str | None = None
    refused: str | None = None


@dataclass
class RecorderOptions:
    depth: int = 100
    snapshot_depth: int = 500
    retention: timedelta = timedelta(days=7)
    name: str = RECORDER_NAME
    max_streams: int = 400
    snapshot_concurrency: int = 4
    clock_margin_ms: int = 1000
    quiet_snapshot_after: float = 10.0
    #: events kept per book for its next snapshot (those after the snapshot's lastUpdateId are
    #: applied): a snapshot is applied within a second or two of being taken, 10 to 20 events
    #: of a busy book. Fewer kept objects, shorter pauses of the garbage collector (1262 books:
    #: 200 events each made a full collection 78 ms, 64 make it 38 ms).
    history: int = 64
    symbols_every: float = 5.0
    status_every: float = 5.0
    prune_every: float = 3600.0
    ws_heartbeat: float = 30.0
    ws_max_lifetime: float = 23.5 * 3600


class Recorder:
    """See the module docstring. `run(stop)` must run on `client.transport`'s loop."""

    def __init__(self, client: ExchangeClient, ws_url: str, store: MongoStore, spool: Spool,
                 symbols: Callable[[], list[str]], options: RecorderOptions | None = None):
        self.client = client
        self.ws_url = ws_url
        self.store = store
        self.spool = spool
        self.symbols_source = symbols
        self.options = options or RecorderOptions()
        self.pool: StreamPool | None = None
        self.trackers: dict[str, BoundaryTracker] = {}
        self.symbols: dict[str, SymbolHealth] = {}
        self.started_at = time.time()
        self.malformed = 0
        self.snapshot_weight = 0
        self._wanted: dict[str, float] = {}   # symbols needing a snapshot -> since when
        self._queued: set[str] = set()
        self._snapshots: asyncio.Queue[str] = asyncio.Queue()
        self._prepaid_minute = -1
        self.prepaid_weight = 0
        # decisions to store: (records, connection) of each, turned into documents in a worker thread
        self._writes: asyncio.Queue[list[tuple[list[BoundaryRecord], str]]] = asyncio.Queue()
        # seconds from a close to its batch (one connection's books) in MongoDB, the latest batches
        self._durable_lag: collections.deque[float] = collections.deque(maxlen=600)
        self._write_seconds: collections.deque[float] = collections.deque(maxlen=200)
        self._loop_lag: collections.deque[float] = collections.deque(maxlen=1200)
        self.last_close_written: int | None = None
        self.write_errors = 0
        self.stopped_at: float | None = None

    # ---- the process ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        session = self.client.transport.session
        if session is None:
            raise RuntimeError("Recorder.run must run on the exchange transport's loop")
        o = self.options
        self.pool = StreamPool(self.ws_url, session, self._on_text, self._on_state, max_streams=o.max_streams,
                               heartbeat=o.ws_heartbeat, max_lifetime=o.ws_max_lifetime)
        tasks = [asyncio.create_task(coroutine, name=name) for name, coroutine in (
            ("symbols", self._symbols_loop()), ("clock", self._clock_loop()), ("snapshots", self._schedule_loop()),
            ("writes", self._write_loop()), ("status", self._status_loop()), ("prune", self._prune_loop()),
            *((f"snapshot worker {i}", self._snapshot_worker()) for i in range(o.snapshot_concurrency)),
        )]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._drain_writes()
            # The last status is the state recording stopped in (its books as they were), marked
            # stopped; closing the connections afterwards is not a loss of sync worth reporting.
            self.stopped_at = time.time()
            await self._write_status()
            await self.pool.close()

    # ---- symbols -------------------------------------------------------------------------------

    async def _symbols_loop(self) -> None:
        while True:
            try:
                symbols = await asyncio.to_thread(self.symbols_source)
                self.set_symbols(symbols)
            except Exception as exc:  # noqa: BLE001 - the instance may be briefly unreadable; keep recording
                log.warning("could not read the tracked symbols: %s", exc)
            await asyncio.sleep(self.options.symbols_every)

    def set_symbols(self, symbols: list[str]) -> None:
        assert self.pool is not None
        added, removed = self.pool.set_symbols(symbols)
        now = time.time()
        for symbol in removed:
            health = self.symbols.pop(symbol)
            self.trackers[health.connection].remove_book(symbol)
            self._wanted.pop(symbol, None)
        for symbol in added:
            connection = self.pool.connection_of[symbol]
            tracker = self.trackers.get(connection.name)
            if tracker is None:
                tracker = self.trackers[connection.name] = BoundaryTracker(
                    start_ms=_now_ms(), depth=self.options.depth)
            tracker.add_book(LocalBook(symbol, history=self.options.history))
            self.symbols[symbol] = SymbolHealth(connection.name, now)
            self._wanted[symbol] = now
        if added or removed:
            log.info("recording %d symbols (%d added, %d removed) on %d connections", len(self.symbols),
                     len(added), len(removed), len(self.pool.connections))

    # ---- the streams ---------------------------------------------------------------------------

    def _on_text(self, connection: CombinedStream, text: str, received: float) -> None:
        try:
            message = json.loads(text)
            if "stream" not in message:  # a SUBSCRIBE/UNSUBSCRIBE reply
                if message.get("error"):
                    log.warning("%s: the exchange refused a subscription: %s", connection.name, message["error"])
                return
            update = parse_depth_stream_message(message)
        except (ValueError, MalformedResponseError, AttributeError) as exc:
            self.malformed += 1
            log.warning("%s: malformed stream message skipped (%s)", connection.name, exc)
            return
        tracker = self.trackers.get(connection.name)
        health = self.symbols.get(update.symbol)
        if tracker is None or health is None or update.symbol not in tracker.books:
            return  # a stream just unsubscribed
        now_ms = int(received * 1000)
        records = tracker.on_event(update, now_ms)
        health.events += 1
        health.last_event_at = received
        if records:
            self._emit(records, connection.name)
        book = tracker.books[update.symbol]
        if update.symbol not in self._wanted and not book.is_complete(self.options.depth):
            self._wanted[update.symbol] = received

    def _on_state(self, connection: CombinedStream, opened: bool, reason: str) -> None:
        if self.stopped_at is not None:
            return
        if opened:
            log.info("%s open (%d streams)", connection.name, len(connection.streams))
            return
        tracker = self.trackers.get(connection.name)
        if tracker is None:
            return
        log.warning("%s lost (%s): its %d books resync", connection.name, reason, len(tracker.books))
        records = tracker.connection_lost(f"connection {connection.name} lost: {reason}", _now_ms())
        if records:
            self._emit(records, connection.name)
        now = time.time()
        for symbol in tracker.books:
            self._wanted.setdefault(symbol, now)

    async def _clock_loop(self) -> None:
        """Closes on connections whose events are all before it: the wall clock less the margin
        stands in for their next event, but only on a connection that delivered a message within
        the margin. A stalled connection (a slow consumer, a network stall) delivers nothing while
        events it owes with `E` at or before the close may still come: its closes wait for them
        (found by the stream soak: a stall straddling a close, decided by the wall clock, then
        revised after the minute's run had stored the books). A connection whose symbols are all
        quiet is decided by its next event."""
        margin = self.options.clock_margin_ms
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(0.05)
            # How late the loop woke this task: events wait as long behind whatever runs.
            self._loop_lag.append(loop.time() - asked - 0.05)
            now = time.time()
            now_ms = int(now * 1000)
            live = {c.name for c in (self.pool.connections if self.pool else ())
                    if c.health.last_message_at is not None and now - c.health.last_message_at <= margin / 1000}
            for name, tracker in self.trackers.items():
                if name not in live:
                    continue
                records = tracker.on_clock(now_ms - margin, now_ms)
                if records:
                    self._emit(records, name)

    # ---- snapshots -----------------------------------------------------------------------------

    def _prepay(self, now: float) -> None:
        """At the start of each minute with snapshots to take, reserve their weight (at most the
        recorder's share) in the instance's ledger before the minute runs' REST fallback does:
        at a cold start both want the whole budget in the same second, and a fallback that took
        it would starve the snapshots that end the fallback."""
        minute = int(now // 60)
        if minute == self._prepaid_minute or not self._wanted:
            return
        self._prepaid_minute = minute
        gate = self.client.gate
        wanted = min(len(self._wanted) * depth_weight(self.options.snapshot_depth), gate.budget)
        self.prepaid_weight += gate.prepay(wanted, ceiling=int(gate.limit * IP_BUDGET_FRACTION))

    async def _schedule_loop(self) -> None:
        while True:
            now = time.time()
            self._prepay(now)
            for symbol, since in list(self._wanted.items()):
                health = self.symbols.get(symbol)
                if health is None or symbol in self._queued:
                    continue
                if health.refused and now - since < 60:
                    continue
                tracker = self.trackers[health.connection]
                book = tracker.books.get(symbol)
                if book is None:
                    continue
                heard = health.last_event_at is not None and health.last_event_at >= since
                if heard or now - max(since, health.subscribed_at) >= self.options.quiet_snapshot_after:
                    self._queued.add(symbol)
                    self._snapshots.put_nowait(symbol)
            await asyncio.sleep(0.2)

    async def _snapshot_worker(self) -> None:
        depth = self.options.snapshot_depth
        while True:
            symbol = await self._snapshots.get()
            try:
                await self._snapshot(symbol, depth)
            finally:
                self._queued.discard(symbol)

    async def _snapshot(self, symbol: str, depth: int) -> None:
        health = self.symbols.get(symbol)
        if health is None:
            return
        try:
            timed = await self.client.order_book_async(symbol, limit=depth, max_attempts=3)
        except UnknownSymbolError as exc:
            health.refused = health.last_error = str(exc)
            health.snapshot_errors += 1
            self._wanted[symbol] = time.time()
            return
        except ExchangeError as exc:
            health.snapshot_errors += 1
            health.last_error = str(exc)
            self._wanted[symbol] = time.time()  # tried again after the gate's pause
            await asyncio.sleep(1.0)
            return
        self.snapshot_weight += depth_weight(depth)
        health.snapshots += 1
        health.refused = None
        problem = snapshot_problem(timed.book)
        if problem:
            health.snapshot_errors += 1
            health.last_error = f"snapshot refused: {problem}"
            self._wanted[symbol] = time.time()  # taken again
            return
        tracker = self.trackers.get(health.connection)
        book = tracker.books.get(symbol) if tracker is not None else None
        if book is None:
            return  # removed meanwhile
        outcome = tracker.apply_snapshot(symbol, timed.book, depth)
        if outcome is SnapshotOutcome.SYNCED and book.is_complete(self.options.depth):
            self._wanted.pop(symbol, None)
        else:
            health.last_error = f"snapshot {outcome.value}" + (f": {book.reason}" if book.reason else "")
            self._wanted[symbol] = time.time()

    # ---- writes --------------------------------------------------------------------------------

    def _emit(self, records: list[BoundaryRecord], connection: str) -> None:
        self._writes.put_nowait([(records, connection)])

    def _stored_form(self, decisions: list[tuple[list[BoundaryRecord], str]]) -> list[dict[str, Any]]:
        """The `boundary_books` batches of `decisions` (in a worker thread: off the event loop,
        which is busy with every connection's events right after a close)."""
        depth = self.options.depth
        return batches(boundary_document(r, depth=depth, connection=connection)
                       for records, connection in decisions for r in records)

    async def _write_loop(self) -> None:
        while True:
            batch = await self._writes.get()
            while not self._writes.empty():
                batch.extend(self._writes.get_nowait())
            await self._write(batch)

    async def _write(self, decisions: list[tuple[list[BoundaryRecord], str]]) -> None:
        """Stores the boundary books of `decisions` as batches, after whatever the spool still
        holds; spools them if MongoDB cannot take them. With no decisions, only replays the spool."""
        stored = await asyncio.to_thread(self._stored_form, decisions) if decisions else []
        try:
            if self.spool.count():
                await asyncio.to_thread(flush_spool, self.store, self.spool,
                                        on_written=lambda batch: self._written(batch.documents))
            if stored:
                began = time.perf_counter()
                await asyncio.to_thread(self.store.insert_or_replace, BOUNDARY_BOOKS, stored)
                self._write_seconds.append(time.perf_counter() - began)
        except StorageError as exc:
            self.write_errors += 1
            if stored:
                path = await asyncio.to_thread(self.spool.put, BOUNDARY_BOOKS, stored)
                log.warning("boundary books not written (%s): %d kept in %s, written when MongoDB is back",
                            exc, sum(len(b["books"]) for b in stored), path)
            else:
                log.warning("spooled boundary books still not written: %s", exc)
            return
        self._written(stored)

    def _written(self, stored: list[dict[str, Any]]) -> None:
        """Batches are in MongoDB now: how long after their close (a revision is not counted)."""
        written = time.time()
        for batch in stored:
            close_ms = int(batch["close"].timestamp() * 1000)
            if not batch["revised"]:
                self._durable_lag.append(written - close_ms / 1000)
            if self.last_close_written is None or close_ms > self.last_close_written:
                self.last_close_written = close_ms

    async def _drain_writes(self) -> None:
        batch: list[tuple[list[BoundaryRecord], str]] = []
        while not self._writes.empty():
            batch.extend(self._writes.get_nowait())
        if batch:
            await self._write(batch)

    async def _prune_loop(self) -> None:
        """`boundary_books` ready for its layout (once), then pruned to the retention every hour."""
        books = BoundaryBooks(self.store)
        prepared = False
        while True:
            try:
                if not prepared:
                    await asyncio.to_thread(books.prepare)
                    prepared = True
                deleted = await asyncio.to_thread(books.delete_before, datetime.now(UTC) - self.options.retention)
                if deleted:
                    log.info("deleted %d batches of boundary books past the %s retention", deleted, self.options.retention)
            except StorageError as exc:
                log.warning("could not prepare or prune boundary books: %s", exc)
                await asyncio.sleep(min(60.0, self.options.prune_every))
                continue
            await asyncio.sleep(self.options.prune_every)

    # ---- health --------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Everything a person needs to trust the recorder (see the module docstring)."""
        now = time.time()
        symbols = {}
        in_sync = 0
        for symbol, h in self.symbols.items():
            tracker = self.trackers.get(h.connection)
            book = tracker.books.get(symbol) if tracker else None
            synced = bool(book and book.in_sync and book.is_complete(self.options.depth))
            in_sync += synced
            counters = book.counters if book else None
            age = now - max(h.subscribed_at, self.started_at)
            symbols[symbol] = {
                "in_sync": synced,
                "reason": None if synced else (h.refused or (book.reason if book else None) or
                                               ("awaiting its snapshot" if book and not book.in_sync
                                                else "book short of its depth: re-snapshot pending")),
                "connection": h.connection,
                "last_event_age_s": None if h.last_event_at is None else round(now - h.last_event_at, 3),
                "messages_per_s": round(h.events / age, 3) if age > 0 else None,
                "resyncs": counters.resyncs if counters else 0,
                "gaps": counters.gaps if counters else 0,
                "snapshots": h.snapshots,
                "last_error": h.last_error,
            }
        lags = sorted(self._durable_lag)
        writes = sorted(self._write_seconds)
        loop_lag = sorted(self._loop_lag)
        connections = [c.health.as_dict(now) for c in (self.pool.connections if self.pool else [])]
        return {
            "name": self.options.name,
            "state": "stopped" if self.stopped_at is not None else "running",
            "updated_at": datetime.now(UTC),
            "started_at": datetime.fromtimestamp(self.started_at, tz=UTC),
            "symbols_tracked": len(self.symbols),
            "symbols_in_sync": in_sync,
            "connections": connections,
            "last_close_written": ms_to_datetime(self.last_close_written) if self.last_close_written else None,
            "durable_after_close_s": {
                "p50": round(statistics.median(lags), 3) if lags else None,
                "p99": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 3) if lags else None,
                "max": round(lags[-1], 3) if lags else None, "samples": len(lags)},
            "write_seconds": {"p50": round(statistics.median(writes), 3) if writes else None,
                              "max": round(writes[-1], 3) if writes else None, "samples": len(writes)},
            "event_loop_lag_s": {"p50": round(statistics.median(loop_lag), 4) if loop_lag else None,
                                 "p99": round(loop_lag[min(len(loop_lag) - 1, int(len(loop_lag) * 0.99))], 4)
                                 if loop_lag else None},
            "snapshot_weight": self.snapshot_weight,
            "prepaid_weight": self.prepaid_weight,
            "malformed_messages": self.malformed,
            "write_errors": self.write_errors,
            "spooled_batches": self.spool.count(),
            "symbols": symbols,
        }

    def stored_status(self) -> dict[str, Any]:
        """`health()` as written to `recorder_status` every few seconds: per symbol only whether it
        is in sync and why not (what the platform's check reads; the rest stays on /health). At
        1262 symbols the whole health is ~250 KB, twelve times a minute, into the database the
        minute runs write to."""
        status = self.health()
        status["symbols"] = {symbol: {"in_sync": entry["in_sync"], "reason": entry["reason"]}
                             for symbol, entry in status["symbols"].items()}
        return status

    async def _write_status(self) -> bool:
        status = self.stored_status()
        try:
            await asyncio.to_thread(self.store.put_status, RECORDER_STATUS, self.options.name, status)
            return True
        except StorageError as exc:
            log.warning("could not write the recorder's status: %s", exc)
            return False

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.status_every)
            if await self._write_status() and self.spool.count() and self._writes.empty():
                # MongoDB is back: the spooled books go now (through the write loop, in order),
                # not with the next close's
                self._writes.put_nowait([])
