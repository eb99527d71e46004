"""The local order book: Binance's snapshot-and-diff procedure on the real capture, the documented
edge cases one by one, and a property test against an independent reference model.

The real data is the capture in `acts_simulator/data/binance/` (its README): the NKNUSDT REST
snapshot (lastUpdateId 499869752, limit 1000: 609 bids, 1000 asks) and the stream's diff events.
Everything else here is made up (events named `made_up_*`, symbols MADEUP*).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acts_pipeline.core.local_book import Applied, LocalBook, SnapshotOutcome, SyncState
from acts_pipeline.core.models import DepthUpdate, OrderBook
from acts_pipeline.core.parsing import parse_depth, parse_depth_stream_message

# ---- the real capture -----------------------------------------------------------------------


def real_events(captures_dir, symbol: str) -> list[DepthUpdate]:
    lines = (captures_dir / "stream.jsonl").read_text().splitlines()[1:]
    messages = [json.loads(line)["message"] for line in lines]
    return [parse_depth_stream_message(m) for m in messages if m["stream"] == f"{symbol.lower()}@depth@100ms"]


def real_snapshot(captures_dir, symbol: str) -> OrderBook:
    return parse_depth(json.loads((captures_dir / "depth" / f"{symbol}.json").read_text()), symbol)


def test_real_nknusdt_capture_replays_by_the_documented_procedure(captures_dir):
    events = real_events(captures_dir, "NKNUSDT")
    assert len(events) == 150
    book = LocalBook("NKNUSDT")
    # the stream is opened first: the first event arrives before the snapshot and is buffered
    assert book.apply(events[0]) is Applied.BUFFERED
    assert book.apply_snapshot(real_snapshot(captures_dir, "NKNUSDT"), limit=1000) is SnapshotOutcome.SYNCED
    # the buffered event U=499869750 u=499869752 is dropped (u <= lastUpdateId 499869752): the
    # book is the snapshot, dated by that event (its u is the snapshot's lastUpdateId)
    assert book.last_update_id == 499869752 and book.event_time_ms == 1633998512068
    assert book.counters.events_applied == 0
    # the next one (U=499869753 = lastUpdateId + 1 <= u) is the first applied, then all in sequence
    assert (events[1].first_update_id, events[1].final_update_id) == (499869753, 499869754)
    for event in events[1:]:
        assert book.apply(event) is Applied.APPLIED, event
        view = book.view(100)
        assert view.in_sync and view.bids[0, 0] < view.asks[0, 0]
    assert book.counters.events_applied == 149 and book.counters.gaps == book.counters.duplicates == 0
    assert book.last_update_id == 499870179 and book.event_time_ms == 1633998542082

    view = book.view(1000)
    bids = dict(view.bids.tolist())
    asks = dict(view.asks.tolist())
    # by hand from the raw JSON: bid 0.35130000 is 6195 in the snapshot, last set to 3474 by U=499870166
    assert bids[0.3513] == 3474.0
    # bid 0.35170000 is not in the snapshot; set by U=499869753 (4265) ... last by U=499870166 to 10132
    assert bids[0.3517] == 10132.0
    # bid 0.35200000: 1144 in the snapshot, last set by U=499870142 to 1211
    assert bids[0.352] == 1211.0
    # ask 0.35250000 (the snapshot's best, 3959) deleted with "0.00000000" by U=499869834, never reset
    assert 0.3525 not in asks
    # ask 0.35290000: 6718 in the snapshot, deleted by U=499870030; ask 0.35300000 (9338) by U=499870102
    assert 0.3529 not in asks and 0.353 not in asks
    # 609 bids < limit 1000: the bid side is complete to its end; the asks only up to 0.55060000,
    # their worst snapshot level
    assert book.complete_range == (-np.inf, 0.5506)
    assert view.asks[-1, 0] <= 0.5506 and view.complete is False  # fewer than 1000 asks are inside
    assert book.view(100).complete and book.is_complete(100)


def test_real_lrcbtc_capture_drops_events_older_than_the_snapshot(captures_dir):
    events = real_events(captures_dir, "LRCBTC")
    book = LocalBook("LRCBTC")
    # received before the snapshot (lastUpdateId 259345543): U=259345536 u=259345539
    assert book.apply(events[0]) is Applied.BUFFERED
    assert book.apply_snapshot(real_snapshot(captures_dir, "LRCBTC"), limit=1000) is SnapshotOutcome.SYNCED
    # U=259345540 u=259345543 arrived after the snapshot (84 ms late): already in it
    assert book.apply(events[1]) is Applied.DUPLICATE
    assert [book.apply(e) for e in events[2:]] == [Applied.APPLIED] * (len(events) - 2)
    assert book.counters.duplicates == 1


# ---- the documented edge cases, one by one --------------------------------------------------

S = "MADEUPUSDT"


def made_up_update(first: int, final: int, bids=(), asks=(), time_ms: int = 1_000) -> DepthUpdate:
    return DepthUpdate(S, time_ms, first, final, tuple(bids), tuple(asks))


def made_up_snapshot(last_update_id: int, bids, asks) -> OrderBook:
    return OrderBook(S, last_update_id, np.array(bids, dtype=float).reshape(-1, 2),
                     np.array(asks, dtype=float).reshape(-1, 2))


MADE_UP_SNAPSHOT = made_up_snapshot(100, [[10.0, 1.0], [9.0, 2.0], [8.0, 3.0]], [[11.0, 1.0], [12.0, 2.0], [13.0, 3.0]])


def synced_book(limit: int = 3) -> LocalBook:
    book = LocalBook(S)
    assert book.apply_snapshot(MADE_UP_SNAPSHOT, limit=limit) is SnapshotOutcome.SYNCED
    return book


def levels(view) -> tuple[list, list]:
    return view.bids.tolist(), view.asks.tolist()


def test_nothing_is_published_before_a_snapshot():
    book = LocalBook(S)
    assert book.apply(made_up_update(101, 101, bids=[(10.0, 5.0)])) is Applied.BUFFERED
    view = book.view(5)
    assert not view.in_sync and view.bids is None and view.asks is None and view.last_update_id is None
    assert book.state is SyncState.AWAITING_SNAPSHOT and "no snapshot" in view.reason
    with pytest.raises(ValueError, match="not in sync"):
        view.order_book()


def test_snapshot_older_than_the_first_buffered_event_is_refused():
    book = LocalBook(S)
    book.apply(made_up_update(102, 105, bids=[(10.0, 5.0)]))
    # lastUpdateId 100 < U - 1 = 101: update 101 is in neither
    assert book.apply_snapshot(MADE_UP_SNAPSHOT, limit=3) is SnapshotOutcome.TOO_OLD
    assert not book.in_sync and "older than the events received" in book.reason
    assert book.counters.snapshots_too_old == 1
    # lastUpdateId == U - 1 is fine: the buffered event continues it
    newer = made_up_snapshot(101, [[10.0, 1.0]], [[11.0, 1.0]])
    assert book.apply_snapshot(newer, limit=3) is SnapshotOutcome.SYNCED
    assert book.last_update_id == 105 and levels(book.view(5)) == ([[10.0, 5.0]], [[11.0, 1.0]])


def test_straddling_first_event_is_applied_and_earlier_ones_dropped():
    book = LocalBook(S)
    book.apply(made_up_update(95, 99, bids=[(10.0, 7.0)]))  # u < lastUpdateId: dropped
    book.apply(made_up_update(100, 102, asks=[(11.0, 4.0)]))  # U <= 101 <= u: the first applied
    assert book.apply_snapshot(MADE_UP_SNAPSHOT, limit=3) is SnapshotOutcome.SYNCED
    assert book.last_update_id == 102
    assert levels(book.view(1)) == ([[10.0, 1.0]], [[11.0, 4.0]])


def test_gap_puts_the_book_out_of_sync_until_a_new_snapshot():
    book = synced_book()
    assert book.apply(made_up_update(101, 101, bids=[(10.0, 9.0)])) is Applied.APPLIED
    assert book.apply(made_up_update(103, 104, bids=[(10.0, 8.0)])) is Applied.GAP  # 102 missing
    assert book.state is SyncState.OUT_OF_SYNC and "gap" in book.reason and "101" in book.reason
    assert book.view(5).bids is None and book.counters.gaps == 1
    # later events are buffered, never applied, until a snapshot; the gap event is kept
    assert book.apply(made_up_update(105, 105, asks=[(11.0, 2.0)])) is Applied.BUFFERED
    assert book.apply_snapshot(made_up_snapshot(103, [[10.0, 6.0]], [[11.0, 1.0]]), limit=3) is SnapshotOutcome.SYNCED
    assert book.last_update_id == 105 and levels(book.view(5)) == ([[10.0, 8.0]], [[11.0, 2.0]])
    assert book.counters.resyncs == 1


def test_duplicate_and_stale_events_are_ignored_and_counted():
    book = synced_book()
    book.apply(made_up_update(101, 103, bids=[(10.0, 9.0)]))
    assert book.apply(made_up_update(101, 103, bids=[(10.0, 1.0)])) is Applied.DUPLICATE
    assert book.apply(made_up_update(90, 95, bids=[(10.0, 1.0)])) is Applied.DUPLICATE
    assert book.counters.duplicates == 2 and book.in_sync
    assert book.view(1).bids.tolist() == [[10.0, 9.0]]


def test_a_state_is_sorted_once_and_its_levels_are_read_only():
    book = synced_book()
    first, again = book.view(2), book.view(2)
    assert first.bids is again.bids and first.asks is again.asks  # a thin book at the next close
    with pytest.raises(ValueError):
        first.bids[0, 1] = 0.0
    book.apply(made_up_update(101, 101, bids=[(10.0, 5.0)]))
    changed = book.view(2)
    assert changed.bids.tolist() == [[10.0, 5.0], [9.0, 2.0]] and first.bids.tolist() == [[10.0, 1.0], [9.0, 2.0]]
    book.apply_snapshot(OrderBook(S, 101, np.array([[10.0, 6.0]]), np.array([[11.0, 1.0]])), 1)
    assert book.view(2).bids.tolist() == [[10.0, 6.0]]  # a snapshot at the same update ID is a new state


def test_overlapping_event_is_applied():
    book = synced_book()
    book.apply(made_up_update(101, 103, bids=[(10.0, 9.0)]))
    # U=102 <= 103 < u=105: 102 and 103 again (absolute quantities), then 104 and 105
    assert book.apply(made_up_update(102, 105, bids=[(10.0, 9.0), (9.0, 4.0)])) is Applied.APPLIED
    assert book.last_update_id == 105 and book.view(2).bids.tolist() == [[10.0, 9.0], [9.0, 4.0]]


def test_zero_quantity_deletes_a_level_and_deleting_an_unknown_level_is_normal():
    book = synced_book()
    book.apply(made_up_update(101, 101, bids=[(10.0, 0.0), (7.5, 0.0)], asks=[(12.0, 0.0)]))
    assert book.in_sync and levels(book.view(5)) == ([[9.0, 2.0], [8.0, 3.0]], [[11.0, 1.0], [13.0, 3.0]])


def test_level_outside_the_complete_range_is_kept_but_not_published():
    book = synced_book(limit=3)  # 3 levels per side = the limit: complete down to 8 / up to 13
    assert book.complete_range == (8.0, 13.0)
    book.apply(made_up_update(101, 101, bids=[(7.0, 5.0)], asks=[(14.0, 5.0)]))
    assert levels(book.view(5)) == ([[10.0, 1.0], [9.0, 2.0], [8.0, 3.0]], [[11.0, 1.0], [12.0, 2.0], [13.0, 3.0]])
    assert not book.view(5).complete and book.view(3).complete
    # once the range's levels are gone it is still not published, though known exactly
    book.apply(made_up_update(102, 102, bids=[(10.0, 0.0), (9.0, 0.0), (8.0, 0.0)]))
    view = book.view(3)
    assert view.bids.tolist() == [] and not view.complete and view.in_sync


def test_a_side_shorter_than_the_limit_is_complete_to_its_end():
    book = synced_book(limit=5)  # 3 < 5 levels per side: the whole book
    assert book.complete_range == (-np.inf, np.inf)
    book.apply(made_up_update(101, 101, bids=[(7.0, 5.0)]))
    view = book.view(10)
    assert view.complete and view.bids.tolist() == [[10.0, 1.0], [9.0, 2.0], [8.0, 3.0], [7.0, 5.0]]


def test_resnapshot_is_signalled_when_the_top_n_would_leave_the_range_and_extends_it():
    book = synced_book(limit=3)
    assert book.is_complete(3) and not book.is_complete(4)
    book.apply(made_up_update(101, 101, bids=[(10.0, 0.0)]))  # 2 bids left inside the range
    assert not book.is_complete(3) and not book.view(3).complete and book.is_complete(2)
    book.apply(made_up_update(102, 102, bids=[(10.5, 1.0)]))  # a better level: inside the range
    assert book.is_complete(3)
    book.apply(made_up_update(103, 103, bids=[(10.5, 0.0)]))
    # the re-snapshot (older than the book: the REST reply is slow) is rebuilt with the kept events
    deeper = made_up_snapshot(101, [[9.0, 2.0], [8.0, 3.0], [7.0, 4.0], [6.0, 5.0]], [[11.0, 1.0], [12.0, 2.0]])
    assert book.apply_snapshot(deeper, limit=10) is SnapshotOutcome.SYNCED
    assert book.last_update_id == 103 and book.is_complete(3)
    assert book.view(3).bids.tolist() == [[9.0, 2.0], [8.0, 3.0], [7.0, 4.0]]


def test_resnapshot_that_cannot_reach_the_book_leaves_it_as_it_is():
    book = LocalBook(S, history=2)
    book.apply_snapshot(MADE_UP_SNAPSHOT, limit=3)
    for update_id in (101, 102, 103):
        book.apply(made_up_update(update_id, update_id, bids=[(9.5, float(update_id))]))
    # events 102 and 103 are kept, 101 is not: a snapshot at 100 cannot be brought up to 103
    assert book.apply_snapshot(MADE_UP_SNAPSHOT, limit=3) is SnapshotOutcome.TOO_OLD
    assert book.in_sync and book.last_update_id == 103 and book.view(2).bids.tolist()[1] == [9.5, 103.0]


def test_crossed_result_puts_the_book_out_of_sync():
    book = synced_book()
    assert book.apply(made_up_update(101, 101, bids=[(11.0, 1.0)])) is Applied.CROSSED
    assert not book.in_sync and "crossed" in book.reason and book.view(5).bids is None
    assert book.counters.crossed == 1


def test_crossing_is_found_through_a_stale_best_price_bound():
    book = synced_book()
    book.apply(made_up_update(101, 101, asks=[(11.0, 0.0)]))  # best ask now 12 (the bound stays 11)
    assert book.apply(made_up_update(102, 102, bids=[(11.0, 1.0)])) is Applied.APPLIED  # 11 < 12
    assert book.apply(made_up_update(103, 103, bids=[(12.0, 1.0)])) is Applied.CROSSED


def test_invalidate_forgets_levels_and_buffer():
    book = synced_book()
    book.apply(made_up_update(101, 101, bids=[(10.0, 9.0)]))
    book.invalidate("connection lost")
    assert book.state is SyncState.OUT_OF_SYNC and book.reason == "connection lost"
    # the kept event is gone: a snapshot at 100 now has nothing to replay
    assert book.apply_snapshot(MADE_UP_SNAPSHOT, limit=3) is SnapshotOutcome.SYNCED
    assert book.last_update_id == 100 and book.event_time_ms is None


def test_one_book_per_symbol():
    book = synced_book()
    with pytest.raises(ValueError, match="an event of OTHERUSDT"):
        book.apply(DepthUpdate("OTHERUSDT", 1, 101, 101, (), ()))
    with pytest.raises(ValueError, match="a snapshot of OTHERUSDT"):
        book.apply_snapshot(OrderBook("OTHERUSDT", 1, [], []), limit=5)


# ---- the property: never a wrong book -------------------------------------------------------
#
# A made-up true history: an initial book and single updates (one price level each, update IDs
# base+1, base+2, ...), grouped into events as Binance does (absolute quantities, the last per
# price). The reference is a plain dict replay of the updates. Bid and ask prices come from
# separate grids, so the true book is never crossed.

BID_PRICES = [round(1.0 + i / 100, 2) for i in range(25)]
ASK_PRICES = [round(1.3 + i / 100, 2) for i in range(25)]
QUANTITIES = [0.0, 0.0, 0.5, 1.0, 2.0, 7.25]


@dataclass
class TrueHistory:
    symbol: str
    base_id: int
    initial_bids: dict
    initial_asks: dict
    updates: list  # (is_bid, price, qty) for update IDs base_id + 1, base_id + 2, ...
    events: list = field(default_factory=list)

    @property
    def last_id(self) -> int:
        return self.base_id + len(self.updates)

    def state(self, update_id: int) -> tuple[dict, dict]:
        bids, asks = dict(self.initial_bids), dict(self.initial_asks)
        for is_bid, price, qty in self.updates[: update_id - self.base_id]:
            side = bids if is_bid else asks
            if qty == 0.0:
                side.pop(price, None)
            else:
                side[price] = qty
        return bids, asks

    def top(self, update_id: int, n: int) -> tuple[list, list]:
        bids, asks = self.state(update_id)
        return ([[p, bids[p]] for p in sorted(bids, reverse=True)[:n]],
                [[p, asks[p]] for p in sorted(asks)[:n]])

    def snapshot(self, update_id: int, limit: int) -> OrderBook:
        bids, asks = self.top(update_id, limit)
        return OrderBook(self.symbol, update_id, np.array(bids, dtype=float).reshape(-1, 2),
                         np.array(asks, dtype=float).reshape(-1, 2))

    def event_time_of_state(self, update_id: int) -> int | None:
        return next((e.event_time_ms for e in self.events if e.final_update_id == update_id), None)


@st.composite
def true_histories(draw, symbol: str = S, start_ms: int = 0, min_updates: int = 10, max_updates: int = 60) -> TrueHistory:
    history = TrueHistory(
        symbol=symbol,
        base_id=draw(st.integers(1, 10**6)),
        initial_bids=draw(st.dictionaries(st.sampled_from(BID_PRICES), st.sampled_from(QUANTITIES[2:]), max_size=12)),
        initial_asks=draw(st.dictionaries(st.sampled_from(ASK_PRICES), st.sampled_from(QUANTITIES[2:]), max_size=12)),
        updates=draw(st.lists(
            st.booleans().flatmap(lambda is_bid: st.tuples(
                st.just(is_bid), st.sampled_from(BID_PRICES if is_bid else ASK_PRICES), st.sampled_from(QUANTITIES))),
            min_size=min_updates, max_size=max_updates,
        )),
    )
    sizes = draw(st.lists(st.integers(1, 4), min_size=len(history.updates), max_size=len(history.updates)))
    steps = draw(st.lists(st.sampled_from([0, 100, 100, 200, 300, 500, 1000, 3000]),
                          min_size=len(history.updates), max_size=len(history.updates)))
    time_ms = start_ms + draw(st.integers(0, 20)) * 100
    first = 0
    for size, step in zip(sizes, steps):
        if first >= len(history.updates):
            break
        batch = history.updates[first:first + size]
        final_qty = {}
        for is_bid, price, qty in batch:
            final_qty.pop((is_bid, price), None)
            final_qty[(is_bid, price)] = qty
        time_ms += step
        history.events.append(DepthUpdate(
            symbol, time_ms, history.base_id + first + 1, history.base_id + first + len(batch),
            tuple((p, q) for (is_bid, p), q in final_qty.items() if is_bid),
            tuple((p, q) for (is_bid, p), q in final_qty.items() if not is_bid),
        ))
        first += len(batch)
    return history


def assert_never_a_wrong_book(view, history: TrueHistory, depth: int) -> None:
    """A published view is the true top-`depth` book at its update ID (when complete) or a prefix
    of it (when not): never a level that is not the exchange's, never a missing level above one."""
    if not view.in_sync:
        assert view.bids is None and view.asks is None
        return
    assert history.base_id <= view.last_update_id <= history.last_id
    true_bids, true_asks = history.top(view.last_update_id, depth)
    bids, asks = view.bids.tolist(), view.asks.tolist()
    assert bids == true_bids[:len(bids)] and asks == true_asks[:len(asks)]
    if view.complete:
        assert (bids, asks) == (true_bids, true_asks)
    if view.event_time_ms is not None:
        assert view.event_time_ms == history.event_time_of_state(view.last_update_id)


@st.composite
def deliveries(draw, history: TrueHistory) -> list:
    """What reaches the book: the events in order, with losses, duplicates, swaps, dropped
    connections and snapshots (of the true book at an update ID near the stream's, any depth)."""
    events, actions, k = history.events, [], 0
    while k < len(events) or not actions:
        op = draw(st.sampled_from(["next"] * 16 + ["skip", "skip", "dup", "swap", "snapshot", "snapshot", "drop"]))
        if op == "snapshot" or k >= len(events):
            near = events[k - 1].final_update_id if k else history.base_id
            update_id = draw(st.integers(max(history.base_id, near - 5), min(history.last_id, near + 5)))
            actions.append(("snapshot", update_id, draw(st.integers(1, 14))))
        elif op == "next":
            actions.append(("event", k))
            k += 1
        elif op == "skip":
            k += 1
        elif op == "dup" and k:
            actions.append(("event", draw(st.integers(0, k - 1))))
        elif op == "swap" and k + 1 < len(events):
            actions += [("event", k + 1), ("event", k)]
            k += 2
        elif op == "drop":
            actions.append(("drop",))
    return actions


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_property_the_published_book_is_the_true_book_or_declared_not_so(data):
    history = data.draw(true_histories())
    actions = data.draw(deliveries(history))
    depth = data.draw(st.integers(1, 6))
    book = LocalBook(S, history=data.draw(st.integers(1, 30)))
    for action in actions:
        if action[0] == "event":
            book.apply(history.events[action[1]])
        elif action[0] == "snapshot":
            book.apply_snapshot(history.snapshot(action[1], action[2]), limit=action[2])
        else:
            book.invalidate("made-up connection drop")
        view = book.view(depth)
        assert_never_a_wrong_book(view, history, depth)
        assert book.is_complete(depth) == view.complete


@settings(max_examples=100, deadline=None)
@given(history=true_histories(), depth=st.integers(1, 6), limit=st.integers(1, 14))
def test_property_in_order_delivery_after_a_snapshot_stays_in_sync_and_exact(history, depth, limit):
    book = LocalBook(S)
    book.apply_snapshot(history.snapshot(history.base_id, limit), limit=limit)
    for event in history.events:
        assert book.apply(event) is Applied.APPLIED
        view = book.view(depth)
        assert view.in_sync and view.last_update_id == event.final_update_id
        assert_never_a_wrong_book(view, history, depth)
    if limit >= 25:  # the grids hold 25 prices a side: every side is complete to its end
        assert book.view(depth).complete
