"""One symbol's local order book, kept from Binance's diff-depth stream and REST snapshots.

Pure: no I/O, no clock. The recorder feeds it parsed events (`DepthUpdate`) and REST snapshots
(`OrderBook`), and asks for views. The procedure is Binance Spot's "How to manage a local order
book correctly" (web-socket-streams.md, as corrected in 2024):

1. buffer the stream's events until a snapshot is applied;
2. with the snapshot's `lastUpdateId` S, drop buffered events with `u <= S`; the first one left
   must have `U <= S + 1` (else the snapshot is older than the stream we hold: take a new one);
3. afterwards each event must continue the previous one: `u <= ` the book's update ID is a
   duplicate (ignored, counted); `U > ` update ID + 1 is a gap (out of sync until a new snapshot).

Step 2 is step 3 applied from the snapshot's ID, so one procedure does both (`_process`).

Decisions, beyond the documented procedure:

- An *overlapping* event (`U <= ` update ID `< u`, which the first event after a snapshot may be)
  is applied whole, at any point: quantities in an event are absolute (the level's quantity after
  update `u`), not deltas, so re-setting a level that the updates `U..` update ID already set
  writes the same value again, and every level changed after the book's update ID gets its value
  at `u`. The state afterwards is the exchange's state at `u`, exactly as for the first event.
- A book is one object per symbol and nothing in it refers to another symbol: a gap resyncs that
  book only (cryptofeed reset every book of a connection on one gap, its issues #613/#958).
- *Completeness.* Binance warns that a level outside the snapshot's depth is unknown until an
  event changes it. A side of a snapshot with fewer levels than the requested `limit` holds the
  whole side: it is complete to the end. Otherwise it is complete from its best price to its
  worst snapshot level, forever after (every change inside that range comes as an event). Events
  may set levels outside it (exact values, kept) but the levels between them are unknown, so a
  view never publishes them, and `complete` / `is_complete(n)` say when the top `n` levels are no
  longer all inside the range (the caller takes a new snapshot).
- *Never crossed.* Every level held is a level of the exchange's book (from the snapshot or set by
  an event), and the exchange's book is never crossed after an update, so best bid >= best ask
  after an event means the book is wrong: out of sync. Checked after every event at O(1) with a
  bound on each side's best price (exact only when needed, see `_Side`).
- *Re-snapshots while in sync.* The last `history` events received are kept (whatever the state),
  so a snapshot older than the book's update ID (the REST reply is usually slower than the
  stream) is rebuilt from: snapshot, then the kept events after it. The book's levels then have
  the snapshot's range; its state is the same one, at the same update ID.
- *The time of the state.* `event_time_ms` is `E` of the last event applied; right after a
  snapshot with no event applied after it, it is `E` of a received event whose `u` equals the
  snapshot's `lastUpdateId`, received before the snapshot or after it (the state after that
  event is the snapshot's), else None: the
  snapshot's state is not yet dated by any event, and a boundary book cannot be taken from it.
"""

from __future__ import annotations

import enum
from array import array
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass

import numpy as np

from acts_pipeline.core.models import DepthUpdate, OrderBook

_INF = float("inf")


class SyncState(enum.Enum):
    AWAITING_SNAPSHOT = "awaiting snapshot"  # never synced (or invalidated before it ever was)
    IN_SYNC = "in sync"
    OUT_OF_SYNC = "out of sync"  # was in sync; a gap, a crossed book or a lost connection since


class Applied(enum.Enum):
    """What `LocalBook.apply` did with one event."""

    APPLIED = "applied"
    BUFFERED = "buffered"  # not in sync: kept for the next snapshot
    DUPLICATE = "duplicate"  # u <= the book's update ID: already in the book, ignored
    GAP = "gap"  # U > the book's update ID + 1: updates are missing, now out of sync
    CROSSED = "crossed"  # applied, and best bid >= best ask: the book is wrong, now out of sync


class SnapshotOutcome(enum.Enum):
    """What `LocalBook.apply_snapshot` did."""

    SYNCED = "synced"
    TOO_OLD = "too old"  # older than the events kept: nothing changed, take a newer snapshot
    OUT_OF_SYNC = "out of sync"  # applied, but a kept event after it is a gap (or crossed it)


@dataclass(frozen=True)
class BookCounters:
    events_applied: int = 0  # events applied, including ones replayed after a snapshot
    levels_applied: int = 0
    duplicates: int = 0  # events ignored because u <= the book's update ID
    buffered: int = 0  # events received while not in sync
    gaps: int = 0
    crossed: int = 0
    snapshots_applied: int = 0
    snapshots_too_old: int = 0
    resyncs: int = 0  # snapshots that brought an out-of-sync book back in sync


@dataclass(frozen=True)
class BookView:
    """A book as it may be published: the top `depth` levels per side inside the complete range.

    `bids` and `asks` are float64 arrays of shape (k, 2), columns price and quantity, best first,
    as in `OrderBook`; k <= depth. When the book is not in sync they are None (not empty arrays,
    which would read as an empty book), and so are `last_update_id` and `event_time_ms`.
    `complete` is True when each side has `depth` levels inside the range or is complete to its
    end (then it holds fewer because the exchange's book does).
    """

    symbol: str
    depth: int
    in_sync: bool
    reason: str | None
    bids: np.ndarray | None
    asks: np.ndarray | None
    last_update_id: int | None
    event_time_ms: int | None
    complete: bool
    counters: BookCounters

    def order_book(self) -> OrderBook:
        """The view as an `OrderBook`; refused when the book is not in sync."""
        if not self.in_sync:
            raise ValueError(f"the local book of {self.symbol} is not in sync ({self.reason}): no book to publish")
        return OrderBook(symbol=self.symbol, last_update_id=self.last_update_id, bids=self.bids, asks=self.asks)


class _Side:
    """One side of the book. Keys are signed prices (price for bids, -price for asks), so that
    on both sides a larger key is a better level and one code path serves both.

    `levels` maps key to quantity; `keys` holds the same keys sorted ascending (the best last),
    kept in step by bisection on every insert and delete (0.4 us at 700 levels): the best level
    is `keys[-1]` and the top `depth` levels are a slice, so a view costs O(depth) (6 us a side
    at 100 levels, against 34 us for a heap selection over the dict; at a close every book is
    viewed at once). `keys` is an `array('d')`, not a list: the garbage collector does not walk
    it (2524 lists of 700 floats cost each full collection 16 ms, a pause of the recorder). `floor` is the worst key of the complete range (-inf: complete to the end)
    and `n_in` the number of levels held at or above it.
    """

    __slots__ = ("sign", "levels", "keys", "floor", "n_in")

    def __init__(self, sign: float):
        self.sign = sign
        self.clear()

    def clear(self) -> None:
        self.levels: dict[float, float] = {}
        self.keys = array("d")
        self.floor = _INF  # nothing is known to be complete before a snapshot
        self.n_in = 0

    def load(self, levels: np.ndarray, limit: int) -> None:
        sign = self.sign
        self.levels = {price * sign: qty for price, qty in levels.tolist() if qty > 0.0}
        self.keys = array("d", sorted(self.levels))
        self.floor = float(levels[-1, 0]) * sign if len(levels) >= limit else -_INF
        self.n_in = len(self.keys) - bisect_left(self.keys, self.floor)

    @property
    def top(self) -> float:
        """The best key (-inf when the side is empty)."""
        return self.keys[-1] if self.keys else -_INF

    def apply(self, levels: tuple[tuple[float, float], ...]) -> None:
        book, keys, sign, floor = self.levels, self.keys, self.sign, self.floor
        n_in = self.n_in
        for price, qty in levels:
            key = price * sign
            if qty == 0.0:
                # deleting a level the book does not hold is normal (Binance says so)
                if book.pop(key, None) is not None:
                    del keys[bisect_left(keys, key)]
                    if key >= floor:
                        n_in -= 1
            else:
                if key not in book:
                    insort(keys, key)
                    if key >= floor:
                        n_in += 1
                book[key] = qty
        self.n_in = n_in

    def view(self, depth: int) -> tuple[np.ndarray, bool]:
        """The best `depth` levels inside the complete range, and whether the side is complete."""
        book, keys, floor = self.levels, self.keys, self.floor
        start = max(len(keys) - depth, bisect_left(keys, floor)) if depth > 0 else len(keys)
        best = keys[start:][::-1]
        array = np.empty((len(best), 2), dtype=np.float64)
        if best:
            array[:, 0] = best
            array[:, 0] *= self.sign
            array[:, 1] = [book[key] for key in best]
        return array, (floor == -_INF or len(best) >= depth)


class LocalBook:
    """The local order book of one symbol (see the module docstring for the procedure).

    `apply(update)` per event of the symbol's diff-depth stream, `apply_snapshot(book, limit)`
    when a REST snapshot arrives, `invalidate(reason)` when the connection is lost, `view(depth)`
    to read it. `history` is how many received events are kept for the next snapshot.
    """

    def __init__(self, symbol: str, *, history: int = 200):
        if history < 1:
            raise ValueError(f"history of the local book of {symbol} must be >= 1, got {history}")
        self.symbol = symbol
        self._history: deque[DepthUpdate] = deque(maxlen=history)
        self._bids = _Side(1.0)
        self._asks = _Side(-1.0)
        self._state = SyncState.AWAITING_SNAPSHOT
        self._reason: str | None = "no snapshot applied yet"
        self._last_update_id = -1
        self._event_time_ms: int | None = None
        self._events_applied = self._levels_applied = self._duplicates = self._buffered = 0
        self._gaps = self._crossed = self._snapshots_applied = self._snapshots_too_old = self._resyncs = 0
        self._view_cache: tuple | None = None  # (key, bids, asks, bids complete, asks complete)

    # ---- state ---------------------------------------------------------------------------------

    @property
    def state(self) -> SyncState:
        return self._state

    @property
    def in_sync(self) -> bool:
        return self._state is SyncState.IN_SYNC

    @property
    def reason(self) -> str | None:
        """Why the book is not in sync (None when it is)."""
        return self._reason

    @property
    def last_update_id(self) -> int | None:
        """`u` of the last event applied, or the snapshot's lastUpdateId if none; None out of sync."""
        return self._last_update_id if self.in_sync else None

    @property
    def event_time_ms(self) -> int | None:
        """The event time `E` of the book's state (module docstring); None when not known."""
        return self._event_time_ms if self.in_sync else None

    @property
    def complete_range(self) -> tuple[float, float] | None:
        """(lowest bid price, highest ask price) of the complete range (-inf/inf: complete to the
        end), or None when not in sync."""
        if not self.in_sync:
            return None
        return self._bids.floor, -self._asks.floor

    @property
    def counters(self) -> BookCounters:
        return BookCounters(
            events_applied=self._events_applied, levels_applied=self._levels_applied,
            duplicates=self._duplicates, buffered=self._buffered, gaps=self._gaps, crossed=self._crossed,
            snapshots_applied=self._snapshots_applied, snapshots_too_old=self._snapshots_too_old,
            resyncs=self._resyncs,
        )

    def is_complete(self, depth: int = 100) -> bool:
        """Whether the top `depth` levels of each side are inside the complete range (O(1)); False
        when not in sync. False while in sync is the signal to take a new snapshot."""
        if not self.in_sync:
            return False
        bids, asks = self._bids, self._asks
        return (bids.floor == -_INF or bids.n_in >= depth) and (asks.floor == -_INF or asks.n_in >= depth)

    # ---- input ---------------------------------------------------------------------------------

    def apply(self, update: DepthUpdate) -> Applied:
        """Take one event of this symbol's stream, in the order received."""
        if update.symbol != self.symbol:
            raise ValueError(f"an event of {update.symbol} was given to the local book of {self.symbol}")
        self._history.append(update)
        if self._state is not SyncState.IN_SYNC:
            self._buffered += 1
            return Applied.BUFFERED
        return self._process(update)

    def apply_snapshot(self, snapshot: OrderBook, limit: int) -> SnapshotOutcome:
        """Apply a REST snapshot fetched with `?limit=<limit>`, then the kept events after it.

        TOO_OLD (nothing changes, an in-sync book stays as it is) when the first kept event
        after the snapshot does not continue it (`U > lastUpdateId + 1`), or when the book is in
        sync at a later update ID than the snapshot and the kept events do not reach it.
        """
        if snapshot.symbol != self.symbol:
            raise ValueError(f"a snapshot of {snapshot.symbol} was given to the local book of {self.symbol}")
        if limit < 1:
            raise ValueError(f"snapshot limit of {self.symbol} must be >= 1, got {limit}")
        snapshot_id = snapshot.last_update_id
        later = [event for event in self._history if event.final_update_id > snapshot_id]
        if later and later[0].first_update_id > snapshot_id + 1:
            self._snapshots_too_old += 1
            if not self.in_sync:
                self._reason = (
                    f"snapshot lastUpdateId {snapshot_id} is older than the events received (first "
                    f"after it: U={later[0].first_update_id}): a newer snapshot is needed"
                )
            return SnapshotOutcome.TOO_OLD
        if self.in_sync and max([snapshot_id, *(e.final_update_id for e in later)]) < self._last_update_id:
            # the kept events cannot bring it up to the book's update ID: it would move the book
            # back in time, and the next event would be a gap
            self._snapshots_too_old += 1
            return SnapshotOutcome.TOO_OLD
        was_out_of_sync = self._state is SyncState.OUT_OF_SYNC
        self._bids.load(snapshot.bids, limit)
        self._asks.load(snapshot.asks, limit)
        self._last_update_id = snapshot_id
        self._event_time_ms = next(
            (e.event_time_ms for e in reversed(self._history) if e.final_update_id == snapshot_id), None
        )
        self._state, self._reason = SyncState.IN_SYNC, None
        self._snapshots_applied += 1
        if self._cross_check(f"snapshot lastUpdateId {snapshot_id}"):
            return SnapshotOutcome.OUT_OF_SYNC
        if was_out_of_sync:
            self._resyncs += 1
        for event in later:
            if self._process(event) in (Applied.GAP, Applied.CROSSED):
                return SnapshotOutcome.OUT_OF_SYNC
        return SnapshotOutcome.SYNCED

    def invalidate(self, reason: str) -> None:
        """Forget the levels and the kept events (the connection was lost): out of sync."""
        self._history.clear()
        if self._state is SyncState.IN_SYNC:
            self._lose_sync(reason)
        else:
            self._reason = reason

    # ---- output --------------------------------------------------------------------------------

    def view(self, depth: int = 100) -> BookView:
        """The top `depth` levels per side inside the complete range (O(depth), once per state: the
        arrays are read-only and shared by the views of the same state)."""
        if not self.in_sync:
            return BookView(
                symbol=self.symbol, depth=depth, in_sync=False, reason=self._reason, bids=None, asks=None,
                last_update_id=None, event_time_ms=None, complete=False, counters=self.counters,
            )
        # A book's levels change only with its update ID or a snapshot: a thin book, unchanged
        # since the last close, is not sorted again (most of the 1262 books at a close).
        key = (depth, self._last_update_id, self._snapshots_applied)
        if self._view_cache is not None and self._view_cache[0] == key:
            _, bids, asks, bids_complete, asks_complete = self._view_cache
        else:
            bids, bids_complete = self._bids.view(depth)
            asks, asks_complete = self._asks.view(depth)
            bids.setflags(write=False)  # shared by every view of this state
            asks.setflags(write=False)
            self._view_cache = (key, bids, asks, bids_complete, asks_complete)
        return BookView(
            symbol=self.symbol, depth=depth, in_sync=True, reason=None, bids=bids, asks=asks,
            last_update_id=self._last_update_id, event_time_ms=self._event_time_ms,
            complete=bids_complete and asks_complete, counters=self.counters,
        )

    # ---- the procedure -------------------------------------------------------------------------

    def _process(self, update: DepthUpdate) -> Applied:
        last = self._last_update_id
        if update.final_update_id <= last:
            self._duplicates += 1
            if update.final_update_id == last and self._event_time_ms is None:
                self._event_time_ms = update.event_time_ms  # dates a snapshot's state (docstring)
            return Applied.DUPLICATE
        if update.first_update_id > last + 1:
            self._gaps += 1
            self._lose_sync(
                f"gap: event U={update.first_update_id} u={update.final_update_id} "
                f"(E={update.event_time_ms}) after update ID {last}"
            )
            return Applied.GAP
        # U <= last + 1 < u + 1: continues the book, possibly overlapping it (module docstring)
        self._bids.apply(update.bids)
        self._asks.apply(update.asks)
        self._last_update_id = update.final_update_id
        self._event_time_ms = update.event_time_ms
        self._events_applied += 1
        self._levels_applied += len(update.bids) + len(update.asks)
        if self._cross_check(f"event U={update.first_update_id} u={update.final_update_id}"):
            return Applied.CROSSED
        return Applied.APPLIED

    def _cross_check(self, after: str) -> bool:
        bids, asks = self._bids, self._asks
        if bids.top < -asks.top:  # best bid < best ask
            return False
        self._crossed += 1
        self._lose_sync(f"crossed after {after}: best bid {bids.top} >= best ask {-asks.top}")
        return True

    def _lose_sync(self, reason: str) -> None:
        self._state, self._reason = SyncState.OUT_OF_SYNC, reason
        self._bids.clear()
        self._asks.clear()
        self._event_time_ms = None
