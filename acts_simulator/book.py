"""One evolving order book per symbol: sparse diff events, the REST book and the truth, all one state.

Why a state and not a formula
-----------------------------
The first simulator drew a whole book from a template for every 100 ms slot. As a diff-depth
stream that would change every level every 100 ms, nothing like Binance, and a local book kept
from it could never be compared with anything. Here a symbol's book is a real state (levels at
absolute price ticks) that changes only by events, and the three things Binance serves are three
views of that one state, so that their ids agree exactly as they do on Binance:

* the stream `<symbol>@depth@100ms` sends each event (`DepthEvent`);
* REST `GET /api/v3/depth` at time t is the state after every event with `E <= t`, its
  `lastUpdateId` the `u` of the last one;
* the truth at any past instant T (`Market.true_book`) is the same, rebuilt from checkpoints.

The model (all of it a pure function of (seed, symbol, slot) and the state)
---------------------------------------------------------------------------
* Birth: the symbol's rescaled captured book (see `market.py`) at its epoch, at most
  `MAX_LEVELS` levels a side.
* Activity: slot s (100 ms, Binance's cadence) carries an event with probability p = rate / 10,
  drawn from a counter-based hash of (seed, symbol, s). The rate is the real capture's for the
  four captured symbols (`stream.jsonl`, 30 s of a combined stream: NKNUSDT 150 events = 5.0/s
  with 2.5 levels and 2.9 update ids each, LRCBTC 0.5/s, BLZETH 0.33/s, RUNEEUR 0.067/s) and
  otherwise 0.05 x 200**turnover (the symbol's kline turnover draw, in [0, 1)): busy books send an
  event nearly every slot, thin ones one every 20 s; 1.9 events/s a symbol on average.
* An event is 1 to 8 raw changes (mean 1.2 to 2.9, busier books more), each one of: set the
  quantity of a level, add a level (inside the spread, or in a gap near the top), delete a level.
  Ranks are drawn as `60 * u**3`, so changes concentrate at the top as in the capture (median rank
  about 7 of NKNUSDT's changed levels). The side and the kind lean towards the price path:
  `price_at` (the path the klines are cut from) pulls the mid: when the path leaves the spread the
  first change sweeps the best level it crossed, and inside it adds and deletes lean its way. So
  the book's mid follows the klines' price within about a spread.
* A side is kept between `floor` and `cap` levels (its birth count -/+ 50, at most 1000, so a
  REST snapshot of limit 1000 holds the whole book and a correct local book equals the truth at
  every level): the deepest level is deleted, or one added in a gap, as a reported change.
* Binance semantics: one event per slot with at least one change, carrying the FINAL quantity of
  each level changed in the slot ("0" = deleted), `U` = previous `u` + 1, `u - U + 1` = raw
  changes (>= levels: two changes of one level are one level); a silent slot sends nothing and
  does not advance `u`. `E` = slot start + a per-symbol offset in [0, 100) ms (the capture's
  NKNUSDT events all end in 68 ms: Binance stamps a symbol's events at a fixed phase), so the
  symbols whose offset is 0 stamp the first slot of each minute exactly on the minute.
* Never crossed: a bid is only added below the best ask and an ask above the best bid; deletions
  cannot cross.

Checkpoints (the truth at any past instant)
-------------------------------------------
At each minute close C the live state is checkpointed after every event with `E <= C`: a full
copy every `FULL_EVERY_MINUTES` minutes, otherwise only the levels changed since the previous
checkpoint (a few dozen: changes concentrate at the top). A close is a full copy plus at most 9
diffs; an instant between closes is the previous close replayed forward with the same
deterministic steps. Memory at 1262 symbols and 30 minutes: see benchmarks/simulator_streams.py.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from acts_simulator.market import Market, SymbolSpec

SLOT_MS = 100
MINUTE_MS = 60_000
#: Levels a side at birth, at most (Binance's own book is deeper; REST serves up to this).
MAX_LEVELS = 1000
#: A side may drift this many levels from its birth count before the deepest one goes.
SIDE_SLACK = 50
#: The smallest rank spread of the changes (ranks are `RANK_SPAN * u**3`).
RANK_SPAN = 60
MAX_OPS = 8
FULL_EVERY_MINUTES = 10

#: Events a second and update ids an event of the captured symbols, counted in `stream.jsonl`.
CAPTURED_RATES = {"NKNUSDT": 5.0, "LRCBTC": 0.5, "BLZETH": 1 / 3, "RUNEEUR": 2 / 30}
MIN_RATE, RATE_RANGE = 0.05, 200.0  # rate = MIN_RATE * RATE_RANGE ** turnover

_MASK64 = 2**64 - 1
_MULT = 0xD1B54A32D192ED03


def _mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class _Draws:
    """Uniforms in [0, 1) for one (symbol, slot): the j-th is a hash of (key, slot, j)."""

    __slots__ = ("base", "key", "j")

    def __init__(self, key: int, slot: int) -> None:
        self.key, self.base, self.j = key, (slot << 6) & _MASK64, 0

    def __call__(self) -> float:
        self.j += 1
        return (_mix((((self.base + self.j) * _MULT) & _MASK64) ^ self.key) >> 11) * 2.0**-53


@dataclass(slots=True)
class DepthEvent:
    """One diff-depth event, as `<symbol>@depth@100ms` sends it (see `Market.event_json`).

    `bids` and `asks` are (price tick, quantity in steps) pairs, best first, quantity 0 for a
    deleted level."""

    symbol: str
    event_time: int  # E, ms
    first_id: int  # U
    final_id: int  # u
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    text: str | None = None  # the rendered payload, made once and shared by every connection


class BookState:
    """The live book of one symbol: per side, sorted keys and their quantities (in steps).

    Keys are ascending from the best level: an ask's key is its tick, a bid's key its negated
    tick, so both sides share one code path. `array('q')`: 16 bytes a level, copied by memcpy."""

    __slots__ = ("keys", "qtys", "u", "last_e", "next_slot")

    def __init__(self, keys: tuple[array, array], qtys: tuple[array, array], u: int, last_e: int | None,
                 next_slot: int) -> None:
        self.keys, self.qtys, self.u, self.last_e, self.next_slot = keys, qtys, u, last_e, next_slot

    def ticks(self, side: int, limit: int) -> np.ndarray:
        keys = np.frombuffer(self.keys[side], dtype=np.int64)[:limit]
        return -keys if side == 0 else keys.copy()

    def steps(self, side: int, limit: int) -> np.ndarray:
        return np.frombuffer(self.qtys[side], dtype=np.int64)[:limit].copy()


@dataclass(slots=True)
class Checkpoint:
    """The book at a minute close: `full` (keys and quantities of both sides) or `diff` (the keys
    changed since the previous checkpoint and their final quantities, 0 = deleted)."""

    close_ms: int
    u: int
    last_e: int | None
    full: tuple[array, array, array, array] | None = None
    diff: tuple[array, array, array, array] | None = None


@dataclass
class SymbolTrack:
    """A symbol's model, live state and checkpoints, and the events its stream has not sent."""

    model: SymbolModel
    state: BookState
    birth_ms: int
    until_ms: int  # the state holds every event with E <= until_ms
    next_close: int  # the next minute close to checkpoint
    checkpoints: deque = field(default_factory=deque)
    changed: tuple[dict, dict] = field(default_factory=lambda: ({}, {}))
    watchers: int = 0
    outbox: list = field(default_factory=list)


class SymbolModel:
    """What never changes about one symbol's book dynamics (see the module docstring)."""

    def __init__(self, market: Market, symbol: str, spec: SymbolSpec, *, rate: float, ops_mean: float,
                 offset_ms: int, activity_key: int, event_key: int, base_steps: tuple[np.ndarray, np.ndarray]):
        self.market, self.symbol, self.spec = market, symbol, spec
        self.tick = float(spec.tick_size)
        self.base_price = market.base_price(symbol)
        self.rate = rate
        self.probability = min(1.0, rate / 10.0)
        self.extra_ops = max(0.0, ops_mean - 1.0)
        self.offset_ms = offset_ms
        self.activity_key = activity_key
        self.event_key = event_key
        self.base_steps = (base_steps[0].tolist(), base_steps[1].tolist())
        self.floor = (0, 0)
        self.cap = (MAX_LEVELS, MAX_LEVELS)
        self._minute = -1
        self._ends = (0.0, 0.0)

    # ---- time ---------------------------------------------------------------------------------

    def last_slot(self, at_ms: int) -> int:
        """The last slot whose event time is at or before `at_ms`."""
        return (at_ms - self.offset_ms) // SLOT_MS

    def event_time(self, slot: int) -> int:
        return slot * SLOT_MS + self.offset_ms

    def active_slots(self, first: int, last: int) -> list[int]:
        """The slots in [first, last] that carry changes (the same draw `Market.advance_all`
        makes for many symbols at once)."""
        if last < first:
            return []
        from acts_simulator.market import _uniform_bits  # one definition of the draw

        slots = np.arange(first, last + 1, dtype=np.int64)
        return (slots[_uniform_bits(self.activity_key, slots) < self.probability]).tolist()

    def _mid_ticks(self, e_ms: int) -> float:
        """`price_at(E, slot_noise=False)` in ticks: the path the klines are cut from."""
        minute = e_ms // MINUTE_MS
        if minute != self._minute:
            self._ends = self.market._minute_ends(self.symbol, minute)
            self._minute = minute
        start, end = self._ends
        fraction = (e_ms - minute * MINUTE_MS) / MINUTE_MS
        return self.base_price * math.exp(start + fraction * (end - start)) / self.tick

    # ---- one event ----------------------------------------------------------------------------

    def step(self, state: BookState, slot: int, changed: tuple[dict, dict] | None) -> DepthEvent | None:
        """Apply slot `slot`'s changes to `state` and return its event (None if nothing changed).

        `changed` (per side, key -> final quantity) collects the changes for the next checkpoint.
        """
        e_ms = self.event_time(slot)
        mid = self._mid_ticks(e_ms)
        draw = _Draws(self.event_key, slot)
        ops = 1 + min(MAX_OPS - 1, int(-math.log(1.0 - draw()) * self.extra_ops + 0.5))
        touched: tuple[dict, dict] = ({}, {})
        raw = 0
        for _ in range(ops):
            raw += self._change(state, mid, draw, touched)
        for side in (0, 1):
            keys = state.keys[side]
            if len(keys) > self.cap[side]:
                raw += self._delete(state, side, len(keys) - 1, touched)
            elif len(keys) < self.floor[side]:
                raw += self._insert_in_gap(state, side, int(draw() * (len(keys) - 1)), draw, touched)
        if raw == 0:
            return None
        first = state.u + 1
        state.u += raw
        state.last_e = e_ms
        state.next_slot = slot + 1
        if changed is not None:
            changed[0].update(touched[0])
            changed[1].update(touched[1])
        return DepthEvent(
            self.symbol, e_ms, first, state.u,
            [(-k, q) for k, q in sorted(touched[0].items())],
            [(k, q) for k, q in sorted(touched[1].items())],
        )

    def _rank(self, u: float, length: int) -> int:
        return min(length - 1, int(RANK_SPAN * u * u * u))

    def _quantity(self, side: int, rank: int, u: float) -> int:
        base = self.base_steps[side]
        return max(1, int(base[min(rank, len(base) - 1)] * (0.25 + 1.5 * u)))

    def _change(self, state: BookState, mid: float, draw: _Draws, touched: tuple[dict, dict]) -> int:
        bids, asks = state.keys
        best_bid, best_ask = -bids[0], asks[0]
        # The path left the spread: the first change sweeps the level it crossed.
        if mid >= best_ask and len(asks) > 1:
            return self._delete(state, 1, 0, touched)
        if mid <= best_bid and len(bids) > 1:
            return self._delete(state, 0, 0, touched)
        half = max(0.5, (best_ask - best_bid) / 2)
        lean = max(-1.0, min(1.0, (mid - (best_ask + best_bid) / 2) / half))  # > 0: path above the mid
        kind = draw()
        if kind < 0.55:
            side = 0 if draw() < 0.5 else 1
            return self._set(state, side, self._rank(draw(), len(state.keys[side])), draw, touched)
        if kind < 0.78:
            side = 0 if draw() < 0.5 + 0.4 * lean else 1  # a rising path adds bids
            if best_ask - best_bid > 1 and draw() < 0.35 + 0.5 * abs(lean):
                if side == 0:
                    high = min(best_ask - 1, max(best_bid + 1, math.floor(mid)))
                    tick = best_bid + 1 + int(draw() * (high - best_bid))
                    return self._add(state, 0, -tick, 0, draw, touched)
                low = max(best_bid + 1, min(best_ask - 1, math.ceil(mid)))
                tick = best_ask - 1 - int(draw() * (best_ask - low))
                return self._add(state, 1, tick, 0, draw, touched)
            return self._insert_in_gap(state, side, self._rank(draw(), len(state.keys[side]) - 1), draw, touched)
        side = 1 if draw() < 0.5 + 0.4 * lean else 0  # a rising path takes asks
        keys = state.keys[side]
        rank = self._rank(draw(), len(keys))
        if len(keys) <= max(self.floor[side], 2):
            return self._set(state, side, rank, draw, touched)
        return self._delete(state, side, rank, touched)

    def _set(self, state: BookState, side: int, rank: int, draw: _Draws, touched) -> int:
        qtys = state.qtys[side]
        quantity = self._quantity(side, rank, draw())
        if quantity == qtys[rank]:
            quantity += 1
        qtys[rank] = quantity
        touched[side][state.keys[side][rank]] = quantity
        return 1

    def _delete(self, state: BookState, side: int, rank: int, touched) -> int:
        key = state.keys[side][rank]
        del state.keys[side][rank]
        del state.qtys[side][rank]
        touched[side][key] = 0
        return 1

    def _add(self, state: BookState, side: int, key: int, rank: int, draw: _Draws, touched) -> int:
        keys = state.keys[side]
        index = bisect_left(keys, key)
        quantity = self._quantity(side, rank, draw())
        if index < len(keys) and keys[index] == key:  # cannot happen (callers pick free keys)
            state.qtys[side][index] = quantity
        else:
            keys.insert(index, key)
            state.qtys[side].insert(index, quantity)
        touched[side][key] = quantity
        return 1

    def _insert_in_gap(self, state: BookState, side: int, rank: int, draw: _Draws, touched) -> int:
        """A new level between the levels at `rank` and `rank + 1` (or the nearest deeper gap)."""
        keys = state.keys[side]
        for r in range(max(0, rank), min(len(keys) - 1, rank + 8)):
            gap = keys[r + 1] - keys[r]
            if gap > 1:
                return self._add(state, side, keys[r] + 1 + int(draw() * (gap - 1)), r + 1, draw, touched)
        if not keys:
            return 0
        return self._set(state, side, min(rank, len(keys) - 1), draw, touched)

    # ---- checkpoints and replays ----------------------------------------------------------------

    def replay(self, state: BookState, until_ms: int) -> None:
        """Advance a copy of a past state through every event with E <= until_ms."""
        for slot in self.active_slots(state.next_slot, self.last_slot(until_ms)):
            self.step(state, slot, None)
        state.next_slot = max(state.next_slot, self.last_slot(until_ms) + 1)


def full_copy(state: BookState) -> tuple[array, array, array, array]:
    return (array("q", state.keys[0]), array("q", state.qtys[0]), array("q", state.keys[1]),
            array("q", state.qtys[1]))


def diff_arrays(changed: tuple[dict, dict]) -> tuple[array, array, array, array]:
    bids, asks = changed
    return (array("q", bids.keys()), array("q", bids.values()), array("q", asks.keys()), array("q", asks.values()))


def state_at_checkpoint(checkpoints: list[Checkpoint] | deque, index: int, model: SymbolModel) -> BookState:
    """The book at `checkpoints[index]`: its last full copy, with the diffs after it applied."""
    start = index
    while checkpoints[start].full is None:
        start -= 1
        if start < 0:
            raise LookupError("no full checkpoint before this one")
    bid_keys, bid_qtys, ask_keys, ask_qtys = checkpoints[start].full
    if start == index:
        sides = ((array("q", bid_keys), array("q", bid_qtys)), (array("q", ask_keys), array("q", ask_qtys)))
    else:
        books = [dict(zip(bid_keys, bid_qtys)), dict(zip(ask_keys, ask_qtys))]
        for checkpoint in list(checkpoints)[start + 1:index + 1]:
            changed_bids, bid_values, changed_asks, ask_values = checkpoint.diff
            for book, keys, values in ((books[0], changed_bids, bid_values), (books[1], changed_asks, ask_values)):
                for key, value in zip(keys, values):
                    if value:
                        book[key] = value
                    else:
                        book.pop(key, None)
        sides = []
        for book in books:
            keys = sorted(book)
            sides.append((array("q", keys), array("q", [book[k] for k in keys])))
    checkpoint = checkpoints[index]
    return BookState(
        (sides[0][0], sides[1][0]), (sides[0][1], sides[1][1]), checkpoint.u, checkpoint.last_e,
        model.last_slot(checkpoint.close_ms) + 1,
    )
