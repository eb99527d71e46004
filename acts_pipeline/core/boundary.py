"""When each symbol's book at a minute close is final, for one websocket connection.

Pure: no I/O, no clock of its own. A *boundary book* of symbol s at close C is the state of s's
book with every event of s whose event time `E` is at or before C applied, and none after
(Tardis's rule: an event with `E == C` belongs to C). One `BoundaryTracker` serves one connection
(many symbols, one `LocalBook` each); the recorder calls `on_event` per diff-depth event, in the
order received, and `on_clock` per tick, and stores the `BoundaryRecord`s they return.

The rule:

- *Own event.* Before an event of s with `E > C` (C the oldest close not yet decided for s) is
  applied, s's boundary for C is taken. Events of one symbol come in update-ID order with `E`
  non-decreasing, so if the event continues the book (`U <= ` its update ID + 1) every event with
  `E <= C` is in the book and none after: the state is the boundary book. If the event is a gap,
  events before it are missing and some may have `E <= C`: the record says not in sync.
- *Clock.* Once the connection's clock passes C (`clock > C`) every symbol not yet decided for C
  is final as it is and is taken. The clock is the largest `E` seen on the connection (the stream
  delivers the symbols' events in `E` order), or a time the caller passes to `on_clock` (e.g.
  received time minus a safety margin, for a connection whose symbols are all quiet).
- Several closes may pass at once (a symbol, or the whole connection, quiet for minutes): each
  gets its record, all with the same state.
- A book that is not in sync, not yet synced, or whose state no event has dated yet (synced from
  a snapshot, nothing applied since) yields a record with `in_sync` False and the reason, never a
  book: its state at C is not known.
- *Revisions.* A record once returned can turn out wrong: an event of s with `E <= C` arrives
  after C was decided for s (the connection's order was not `E` order across symbols, or the
  clock given to `on_clock` ran ahead), or a gap shows that events after the last one applied are
  missing, or a crossed book shows the book was wrong. Then for every close whose record carried
  a book and may have missed the event(s) a new record is returned with `revises=True`, no book
  and the reason; the recorder stores it over the first (records are unique per symbol and
  close). No record carrying a book is ever left standing when the tracker has seen evidence that
  it is wrong.
- *Snapshots of a book in sync.* A book in sync is given a new snapshot when its complete range
  has become too short (`apply_snapshot`). A snapshot newer than the book jumps over the update
  IDs between: their events are either still in flight or were lost, and a lost one would never
  show as a gap (found by the property test: an event lost, a close decided by the clock, a
  refresh snapshot before the symbol's next event). The book's published closes since its dated
  state are *pending* until an event of the symbol past the old update ID arrives: if it continues
  the old update ID the closes stand; if not (or the connection drops first) they are withdrawn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from acts_pipeline.core.local_book import Applied, BookView, LocalBook, SnapshotOutcome
from acts_pipeline.core.models import DepthUpdate, OrderBook

MINUTE_MS = 60_000
#: How many of each symbol's latest closes with a published book can still be revised.
REVISABLE_CLOSES = 60


@dataclass(frozen=True)
class BoundaryRecord:
    """The boundary of one symbol at one close.

    `view` is the book (top levels inside the complete range, `last_update_id`, `event_time_ms`,
    `complete`) when `in_sync`, else None and `reason` says why. `decided_at_ms` is the time the
    caller passed with the call that decided it. `revises` marks a record that replaces an earlier
    one for the same (symbol, close_ms).
    """

    symbol: str
    close_ms: int
    view: BookView | None
    in_sync: bool
    reason: str | None
    decided_at_ms: int
    revises: bool = False


class BoundaryTracker:
    """The boundary books of the symbols of one connection (see the module docstring).

    `start_ms` is when the connection's recording starts: the first close recorded is the first
    one after it. `depth` is the number of levels per side of each boundary book.
    """

    def __init__(
        self, books: Iterable[LocalBook] = (), *, start_ms: int, depth: int = 100, interval_ms: int = MINUTE_MS
    ):
        if interval_ms < 1 or depth < 1:
            raise ValueError(f"interval_ms and depth must be >= 1, got {interval_ms} and {depth}")
        self.depth = depth
        self.interval_ms = interval_ms
        self._decided_through = (start_ms // interval_ms) * interval_ms  # every symbol decided up to here
        self._clock = self._decided_through
        self._books: dict[str, LocalBook] = {}
        self._taken: dict[str, int] = {}  # the last close decided for each symbol
        self._published: dict[str, deque[int]] = {}  # recent closes whose record carried a book
        # symbol -> (update ID, E) of its state before a snapshot jumped over later update IDs
        self._pending: dict[str, tuple[int, int]] = {}
        self.late_events = 0
        self.revisions = 0
        for book in books:
            self.add_book(book)

    # ---- symbols -------------------------------------------------------------------------------

    @property
    def books(self) -> Mapping[str, LocalBook]:
        """The books of this connection by symbol (read-only; snapshots go through `apply_snapshot`)."""
        return MappingProxyType(self._books)

    def add_book(self, book: LocalBook) -> None:
        """A symbol joins the connection: its records start at the next close not yet decided."""
        if book.symbol in self._books:
            raise ValueError(f"{book.symbol} is already on this connection")
        self._books[book.symbol] = book
        self._taken[book.symbol] = self._decided_through
        self._published[book.symbol] = deque(maxlen=REVISABLE_CLOSES)

    def remove_book(self, symbol: str) -> LocalBook:
        self._taken.pop(symbol)
        self._pending.pop(symbol, None)
        self._published.pop(symbol)
        return self._books.pop(symbol)

    @property
    def clock_ms(self) -> int:
        return self._clock

    @property
    def next_close_ms(self) -> int:
        """The oldest close not yet decided for every symbol."""
        return self._decided_through + self.interval_ms

    # ---- input ---------------------------------------------------------------------------------

    def on_event(self, update: DepthUpdate, now_ms: int) -> list[BoundaryRecord]:
        """Apply one event (received in this order) to its symbol's book; the records it decided."""
        symbol = update.symbol
        book = self._books.get(symbol)
        if book is None:
            raise ValueError(f"an event of {symbol}, which is not a symbol of this connection")
        event_time = update.event_time_ms
        interval = self.interval_ms
        records: list[BoundaryRecord] = []
        taken = self._taken[symbol]
        pending = self._pending.get(symbol)
        if pending is not None and update.final_update_id > pending[0]:
            # the first event past the state a snapshot jumped from: it says whether that state
            # had every event (module docstring, snapshots of a book in sync)
            del self._pending[symbol]
            if update.first_update_id > pending[0] + 1:
                records += self._revise(
                    symbol, -(-pending[1] // interval) * interval, taken, now_ms,
                    f"events were missing before a snapshot resynced the book (U={update.first_update_id} "
                    f"after update ID {pending[0]})")
        if event_time > taken + interval:
            # closes of this symbol before the event: final now, taken before it is applied
            known_duplicate = book.in_sync and update.final_update_id <= book.last_update_id
            gap = book.in_sync and not known_duplicate and update.first_update_id > book.last_update_id + 1
            view = None
            close = taken + interval
            while close < event_time:
                if gap:
                    records.append(BoundaryRecord(
                        symbol, close, None, False,
                        f"events are missing before the first event after the close (U={update.first_update_id} "
                        f"after update ID {book.last_update_id})", now_ms,
                    ))
                else:
                    record, view = self._record(book, close, now_ms, view)
                    records.append(record)
                close += interval
            self._taken[symbol] = taken = close - interval
        elif event_time <= taken and not (book.in_sync and update.final_update_id <= book.last_update_id):
            # late: it belongs to closes already decided for this symbol
            self.late_events += 1
            records += self._revise(
                symbol, -(-event_time // interval) * interval, taken, now_ms,
                f"an event with E={event_time} (U={update.first_update_id}) arrived after the close was decided",
            )
        state_time = book.event_time_ms
        outcome = book.apply(update)
        if outcome is Applied.GAP or outcome is Applied.CROSSED:
            if state_time is not None:
                # the missing events (or the error) came after the book's dated state: a record
                # carrying a book at a close at or after that time may be wrong
                records += self._revise(
                    symbol, -(-state_time // interval) * interval, taken, now_ms,
                    f"the book went out of sync after the close was decided: {book.reason}",
                    replacing=records,
                )
        if event_time > self._clock:
            self._clock = event_time
        if self._clock > self._decided_through + interval:
            records += self._advance(now_ms)
        return records

    def on_clock(self, clock_ms: int, now_ms: int) -> list[BoundaryRecord]:
        """The connection's clock is at least `clock_ms` (in the exchange's time, margin taken):
        every close before it is final. The records it decided."""
        if clock_ms > self._clock:
            self._clock = clock_ms
        return self._advance(now_ms)

    def apply_snapshot(self, symbol: str, snapshot: OrderBook, limit: int) -> SnapshotOutcome:
        """Give `symbol`'s book a REST snapshot (`LocalBook.apply_snapshot`). Of a book in sync, a
        snapshot newer than its state leaves its published closes pending (module docstring)."""
        book = self._books.get(symbol)
        if book is None:
            raise ValueError(f"a snapshot of {symbol}, which is not a symbol of this connection")
        before = (book.last_update_id, book.event_time_ms) if book.in_sync else None
        outcome = book.apply_snapshot(snapshot, limit)
        if (before is not None and before[1] is not None and outcome is not SnapshotOutcome.TOO_OLD
                and snapshot.last_update_id > before[0]):
            held = self._pending.get(symbol)  # an earlier jump not yet decided goes back further
            self._pending[symbol] = held if held is not None and held[0] < before[0] else before
        return outcome

    def connection_lost(self, reason: str, now_ms: int) -> list[BoundaryRecord]:
        """The connection dropped: every book of it is out of sync (events may be lost), each
        until its own new snapshot. A published close that an event of its symbol after it has
        confirmed stands (that event continued the book, or its gap revised the close). A close
        no later event has confirmed is withdrawn: an event lost before the drop (with `E` at
        or before the close) could no longer be seen as a gap. Found by the property test: a
        skipped event, a close decided by the clock, then a drop before the symbol's next event.
        Returns the revisions."""
        records: list[BoundaryRecord] = []
        for symbol, book in self._books.items():
            state_time = book.event_time_ms if book.in_sync else None
            pending = self._pending.pop(symbol, None)
            if pending is not None:  # the state a snapshot jumped from was never confirmed
                state_time = pending[1] if state_time is None else min(state_time, pending[1])
            if state_time is not None:
                records += self._revise(
                    symbol, -(-state_time // self.interval_ms) * self.interval_ms, self._taken[symbol], now_ms,
                    f"{reason}: no event of the symbol after the close confirmed its book")
            book.invalidate(reason)
        return records

    # ---- decisions -----------------------------------------------------------------------------

    def _advance(self, now_ms: int) -> list[BoundaryRecord]:
        records: list[BoundaryRecord] = []
        interval = self.interval_ms
        views: dict[str, BookView | None] = {}  # the states do not change within one call
        while self._clock > self._decided_through + interval:
            close = self._decided_through + interval
            for symbol, book in self._books.items():
                if self._taken[symbol] < close:
                    record, views[symbol] = self._record(book, close, now_ms, views.get(symbol))
                    records.append(record)
                    self._taken[symbol] = close
            self._decided_through = close
        return records

    def _record(
        self, book: LocalBook, close: int, now_ms: int, view: BookView | None
    ) -> tuple[BoundaryRecord, BookView | None]:
        if not book.in_sync:
            return BoundaryRecord(book.symbol, close, None, False, book.reason or "not in sync", now_ms), view
        state_time = book.event_time_ms
        if state_time is None:
            reason = (f"synced from a snapshot (lastUpdateId {book.last_update_id}) with no event applied "
                      "since: the time of its state is not known")
            return BoundaryRecord(book.symbol, close, None, False, reason, now_ms), view
        if state_time > close:
            reason = f"the book's state is from E={state_time}, after the close"
            return BoundaryRecord(book.symbol, close, None, False, reason, now_ms), view
        if view is None:
            view = book.view(self.depth)
        self._published[book.symbol].append(close)
        return BoundaryRecord(book.symbol, close, view, True, None, now_ms), view

    def _revise(
        self, symbol: str, first_close: int, last_close: int, now_ms: int, reason: str,
        replacing: list[BoundaryRecord] | None = None,
    ) -> list[BoundaryRecord]:
        published = self._published[symbol]
        withdrawn = [close for close in published if first_close <= close <= last_close]
        if not withdrawn:
            return []
        for close in withdrawn:
            published.remove(close)
        if replacing is not None:
            # records of this same call not yet returned: drop them instead of revising them
            fresh = {r.close_ms for r in replacing if r.symbol == symbol and r.view is not None}
            replacing[:] = [r for r in replacing if not (r.symbol == symbol and r.close_ms in fresh
                                                         and r.close_ms in withdrawn)]
        else:
            fresh = set()
        self.revisions += len(withdrawn)
        return [BoundaryRecord(symbol, close, None, False, reason, now_ms, revises=close not in fresh)
                for close in withdrawn]
