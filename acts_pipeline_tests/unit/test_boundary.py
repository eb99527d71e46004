"""Boundary books at minute closes: the real capture across a real close, the rule's cases one by
one, and a property test with several symbols on one connection against a reference replay.

The capture (`acts_simulator/data/binance/`, README there) runs from 1633998512 to 1633998542 s,
so it crosses the close 1633998540000 ms; everything else here is made up (MADEUP* symbols).
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acts_pipeline.core.boundary import BoundaryRecord, BoundaryTracker
from acts_pipeline.core.local_book import LocalBook, SnapshotOutcome
from acts_pipeline.core.models import DepthUpdate, OrderBook
from acts_pipeline.core.parsing import parse_depth_stream_message
from acts_pipeline_tests.unit.test_local_book import TrueHistory, real_snapshot, true_histories

# ---- the real capture across the close 2021-10-12 00:29:00 UTC ------------------------------

REAL_CLOSE = 1633998540000


def test_real_capture_boundary_books_at_a_real_close(captures_dir):
    symbols = ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"]
    received = {c["file"]: c["received_at_unix"] for c in json.loads((captures_dir / "captures.json").read_text())}
    snapshots = sorted((received[f"depth/{s}.json"], s) for s in symbols)
    books = {s: LocalBook(s) for s in symbols}
    tracker = BoundaryTracker(books.values(), start_ms=1633998512000, depth=5)
    records = []
    for line in (captures_dir / "stream.jsonl").read_text().splitlines()[1:]:
        entry = json.loads(line)
        while snapshots and snapshots[0][0] <= entry["received_at_unix"]:  # each snapshot when it arrived
            _, symbol = snapshots.pop(0)
            books[symbol].apply_snapshot(real_snapshot(captures_dir, symbol), limit=1000)
        if "@depth" in entry["message"]["stream"]:
            records += tracker.on_event(parse_depth_stream_message(entry["message"]), int(entry["received_at_unix"] * 1000))
    assert sorted(r.symbol for r in records) == sorted(symbols)
    by_symbol = {r.symbol: r for r in records}
    assert all(r.close_ms == REAL_CLOSE and r.in_sync and not r.revises for r in records)
    # all four were decided by the first event after the close: NKNUSDT E=1633998540281, received
    # at 1633998540.277 (the exchange's clock runs ~4 ms ahead of the recording machine's)
    assert {r.decided_at_ms for r in records} == {1633998540277}
    # the last event at or before the close, per symbol, from the raw file:
    expected = {"NKNUSDT": (499870148, 1633998539381), "BLZETH": (281916638, 1633998532077),
                "LRCBTC": (259345558, 1633998539981),
                # no event applied after the snapshot: dated by its buffered event u=15602511
                "RUNEEUR": (15602511, 1633998522573)}
    assert {s: (r.view.last_update_id, r.view.event_time_ms) for s, r in by_symbol.items()} == expected

    # NKNUSDT's boundary book, by a plain replay of the raw JSON: the snapshot, then every
    # event with 499869752 < u and E <= the close
    raw = json.loads((captures_dir / "depth" / "NKNUSDT.json").read_text())
    bids = {float(p): float(q) for p, q in raw["bids"]}
    asks = {float(p): float(q) for p, q in raw["asks"]}
    for line in (captures_dir / "stream.jsonl").read_text().splitlines()[1:]:
        data = json.loads(line)["message"]["data"]
        if data.get("s") == "NKNUSDT" and data.get("e") == "depthUpdate" and data["u"] > 499869752 \
                and data["E"] <= REAL_CLOSE:
            for side, levels in ((bids, data["b"]), (asks, data["a"])):
                for p, q in levels:
                    side.pop(float(p), None) if float(q) == 0 else side.__setitem__(float(p), float(q))
    view = by_symbol["NKNUSDT"].view
    assert view.bids.tolist() == [[p, bids[p]] for p in sorted(bids, reverse=True)[:5]]
    assert view.asks.tolist() == [[p, asks[p]] for p in sorted(asks)[:5]]
    assert view.complete


# ---- the rule, case by case -----------------------------------------------------------------

MINUTE = 60_000
C1, C2, C3, C4 = MINUTE, 2 * MINUTE, 3 * MINUTE, 4 * MINUTE
MADE_UP_SNAPSHOT = {
    symbol: OrderBook(symbol, 100, np.array([[10.0, 1.0], [9.0, 2.0]]), np.array([[11.0, 1.0], [12.0, 2.0]]))
    for symbol in ("MADEUPA", "MADEUPB")
}


def made_up_update(symbol: str, first: int, final: int, time_ms: int, bids=(), asks=()) -> DepthUpdate:
    return DepthUpdate(symbol, time_ms, first, final, tuple(bids), tuple(asks))


def tracker_with_synced_books(**kwargs) -> BoundaryTracker:
    """MADEUPA and MADEUPB synced at 100, each dated by a first event (101, E=1000)."""
    tracker = BoundaryTracker([LocalBook("MADEUPA"), LocalBook("MADEUPB")], start_ms=500, depth=2, **kwargs)
    for symbol, book in tracker.books.items():
        book.apply_snapshot(MADE_UP_SNAPSHOT[symbol], limit=10)
        assert tracker.on_event(made_up_update(symbol, 101, 101, 1_000, bids=[(10.0, 5.0)]), 1_000) == []
    return tracker


def test_own_event_after_the_close_takes_the_book_before_it_is_applied():
    tracker = tracker_with_synced_books()
    records = tracker.on_event(made_up_update("MADEUPA", 102, 102, C1 + 1, bids=[(10.0, 7.0)]), now_ms=C1 + 5)
    # A's own event decides A and, the clock having passed C1, B too
    assert [(r.symbol, r.close_ms, r.decided_at_ms) for r in records] == [("MADEUPA", C1, C1 + 5), ("MADEUPB", C1, C1 + 5)]
    a = records[0].view
    assert a.bids.tolist() == [[10.0, 5.0], [9.0, 2.0]] and a.last_update_id == 101 and a.event_time_ms == 1_000
    assert tracker.books["MADEUPA"].view(2).bids.tolist()[0] == [10.0, 7.0]  # applied afterwards


def test_an_event_at_exactly_the_close_belongs_to_it():
    tracker = tracker_with_synced_books()
    assert tracker.on_event(made_up_update("MADEUPA", 102, 102, C1, bids=[(10.0, 7.0)]), now_ms=C1) == []
    records = tracker.on_clock(C1 + 1, now_ms=C1 + 300)
    a = next(r for r in records if r.symbol == "MADEUPA")
    assert a.view.last_update_id == 102 and a.view.bids.tolist()[0] == [10.0, 7.0]


def test_quiet_connection_for_minutes_gives_every_close_its_record():
    tracker = tracker_with_synced_books()
    records = tracker.on_clock(C3 + 250, now_ms=C3 + 1_250)
    assert [(r.symbol, r.close_ms) for r in records] == [
        ("MADEUPA", C1), ("MADEUPB", C1), ("MADEUPA", C2), ("MADEUPB", C2), ("MADEUPA", C3), ("MADEUPB", C3)]
    assert all(r.in_sync and r.view.last_update_id == 101 for r in records)
    assert tracker.next_close_ms == C4 and tracker.on_clock(C3 + 900, now_ms=C3 + 2_000) == []


def test_one_quiet_symbol_gets_its_closes_when_its_next_event_comes():
    tracker = tracker_with_synced_books()
    # B is quiet; A's events move the clock only within the first minute...
    assert tracker.on_event(made_up_update("MADEUPA", 102, 102, C1 - 10), now_ms=C1) == []
    # ...then B's event two minutes later decides B's C1 and C2 (same state), then the clock's
    records = tracker.on_event(made_up_update("MADEUPB", 102, 102, C2 + 10, bids=[(9.0, 0.0)]), now_ms=C2 + 20)
    assert [(r.symbol, r.close_ms) for r in records] == [("MADEUPB", C1), ("MADEUPB", C2), ("MADEUPA", C1), ("MADEUPA", C2)]
    b1, b2 = records[0].view, records[1].view
    assert b1.bids.tolist() == b2.bids.tolist() == [[10.0, 5.0], [9.0, 2.0]]


def test_close_before_the_book_was_ever_synced_says_so():
    tracker = BoundaryTracker([LocalBook("MADEUPA")], start_ms=0)
    tracker.on_event(made_up_update("MADEUPA", 101, 101, 1_000), now_ms=1_000)  # buffered
    [record] = tracker.on_clock(C1 + 1, now_ms=C1 + 1)
    assert (record.in_sync, record.view) == (False, None) and "no snapshot" in record.reason


def test_snapshot_not_dated_by_any_event_gives_no_book():
    tracker = BoundaryTracker([LocalBook("MADEUPA")], start_ms=0)
    tracker.books["MADEUPA"].apply_snapshot(MADE_UP_SNAPSHOT["MADEUPA"], limit=10)
    [record] = tracker.on_clock(C1 + 1, now_ms=C1 + 1)
    assert record.view is None and not record.in_sync and "time of its state is not known" in record.reason
    # the first event after it dates the book (its state afterwards is the one after that event)
    tracker.on_event(made_up_update("MADEUPA", 101, 101, C1 + 500), now_ms=C1 + 500)
    [record] = tracker.on_clock(C2 + 1, now_ms=C2 + 1)
    assert record.in_sync and record.view.event_time_ms == C1 + 500


def test_gap_as_the_first_event_after_the_close_gives_no_book():
    tracker = tracker_with_synced_books()
    records = tracker.on_event(made_up_update("MADEUPA", 105, 105, C1 + 1), now_ms=C1 + 1)  # 102..104 missing
    a, b = records
    assert (a.symbol, a.in_sync, a.view) == ("MADEUPA", False, None) and "missing" in a.reason
    # the other symbol's book is untouched by A's gap
    assert b.symbol == "MADEUPB" and b.in_sync and tracker.books["MADEUPB"].in_sync
    assert not tracker.books["MADEUPA"].in_sync


def test_event_older_than_the_connection_clock_but_not_its_symbols_close_is_applied():
    tracker = tracker_with_synced_books()
    tracker.on_event(made_up_update("MADEUPA", 102, 102, C1 - 10), now_ms=C1)
    # B's event is older than the clock (C1 - 10) but after B's last decided close: normal
    assert tracker.on_event(made_up_update("MADEUPB", 102, 102, C1 - 50, bids=[(10.0, 3.0)]), now_ms=C1) == []
    records = tracker.on_clock(C1 + 1, now_ms=C1 + 1)
    assert next(r for r in records if r.symbol == "MADEUPB").view.bids.tolist()[0] == [10.0, 3.0]


def test_event_arriving_after_its_close_was_decided_revises_the_record():
    tracker = tracker_with_synced_books()
    records = tracker.on_event(made_up_update("MADEUPA", 102, 102, C1 + 5), now_ms=C1 + 5)
    assert [r.symbol for r in records if r.in_sync] == ["MADEUPA", "MADEUPB"]
    # B's event with E <= C1 arrives after the clock decided C1: B's record missed it
    [revision] = tracker.on_event(made_up_update("MADEUPB", 102, 102, C1 - 5, bids=[(10.0, 3.0)]), now_ms=C1 + 6)
    assert (revision.symbol, revision.close_ms, revision.revises, revision.view) == ("MADEUPB", C1, True, None)
    assert "arrived after the close was decided" in revision.reason and tracker.late_events == 1
    # a duplicate of an event already applied is not late news
    assert tracker.on_event(made_up_update("MADEUPA", 101, 101, 1_000), now_ms=C1 + 7) == []


def test_gap_found_after_a_close_was_decided_revises_the_closes_after_the_books_last_event():
    tracker = tracker_with_synced_books()
    tracker.on_clock(C2 + 1, now_ms=C2 + 1)  # C1 and C2 decided for both, with books
    # B's next event shows a gap after 101 (E=1000): the lost events may be before C1 and C2
    records = tracker.on_event(made_up_update("MADEUPB", 104, 104, C2 + 10), now_ms=C2 + 10)
    assert [(r.symbol, r.close_ms, r.revises, r.in_sync) for r in records] == [
        ("MADEUPB", C1, True, False), ("MADEUPB", C2, True, False)]
    assert "gap" in records[0].reason and tracker.books["MADEUPA"].in_sync


def test_crossed_book_withdraws_the_records_taken_in_the_same_call():
    tracker = tracker_with_synced_books()
    records = tracker.on_event(made_up_update("MADEUPA", 102, 102, C1 + 1, bids=[(11.5, 1.0)]), now_ms=C1 + 1)
    a = [r for r in records if r.symbol == "MADEUPA"]
    assert [(r.close_ms, r.in_sync, r.revises) for r in a] == [(C1, False, False)] and "crossed" in a[0].reason


def test_connection_lost_puts_every_book_of_the_connection_out_of_sync():
    tracker = tracker_with_synced_books()
    assert tracker.connection_lost("made-up connection drop", now_ms=C1) == []  # nothing published yet
    records = tracker.on_clock(C1 + 1, now_ms=C1 + 1)
    assert [(r.in_sync, r.reason) for r in records] == [(False, "made-up connection drop")] * 2


def test_a_drop_withdraws_the_closes_no_later_event_confirmed():
    """C1 decided by the clock for both books; A then has an event after C1 (it continues A's
    book: A's C1 stands), B has none before the drop: an event of B lost before the drop could no
    longer show as a gap, so B's C1 is withdrawn."""
    tracker = tracker_with_synced_books()
    assert all(r.in_sync for r in tracker.on_clock(C1 + 1, now_ms=C1 + 1))
    tracker.on_event(made_up_update("MADEUPA", 102, 102, C1 + 5, bids=[(10.0, 7.0)]), now_ms=C1 + 6)
    records = tracker.connection_lost("made-up connection drop", now_ms=C1 + 9)
    assert [(r.symbol, r.close_ms, r.revises, r.view) for r in records] == [("MADEUPB", C1, True, None)]
    assert "no event of the symbol after the close confirmed its book" in records[0].reason


def refreshed_after_a_close() -> BoundaryTracker:
    """C1 decided by the clock for both books at update ID 101; then A, still in sync, is given a
    newer snapshot (105: the events 102..105 are in flight or lost), as the recorder does when a
    book's complete range has become too short."""
    tracker = tracker_with_synced_books()
    assert all(r.in_sync for r in tracker.on_clock(C1 + 1, now_ms=C1 + 1))
    newer = OrderBook("MADEUPA", 105, np.array([[10.0, 3.0], [9.0, 2.0]]), np.array([[11.0, 1.0], [12.0, 2.0]]))
    assert tracker.apply_snapshot("MADEUPA", newer, limit=10) is SnapshotOutcome.SYNCED
    return tracker


def test_a_newer_snapshot_of_a_book_in_sync_leaves_its_closes_pending_until_the_next_event():
    # the in-flight events arrive: the first continues 101, so A's C1 stands
    tracker = refreshed_after_a_close()
    assert tracker.on_event(made_up_update("MADEUPA", 102, 103, C1 + 5), now_ms=C1 + 6) == []
    assert tracker.on_event(made_up_update("MADEUPA", 104, 106, C1 + 7), now_ms=C1 + 8) == []
    assert tracker.connection_lost("made-up connection drop", now_ms=C1 + 9) == [
        BoundaryRecord("MADEUPB", C1, None, False, "made-up connection drop: no event of the symbol after the "
                       "close confirmed its book", C1 + 9, revises=True)]


def test_an_event_lost_before_a_newer_snapshot_withdraws_the_closes_it_may_have_changed():
    # 102..103 were lost: the first event past 101 starts at 104, a gap the snapshot had hidden
    tracker = refreshed_after_a_close()
    records = tracker.on_event(made_up_update("MADEUPA", 104, 106, C1 + 5), now_ms=C1 + 6)
    assert [(r.symbol, r.close_ms, r.revises, r.view) for r in records] == [("MADEUPA", C1, True, None)]
    assert "events were missing before a snapshot resynced the book (U=104 after update ID 101)" in records[0].reason
    assert tracker.books["MADEUPA"].in_sync  # the book itself is right: the snapshot resynced it


def test_a_drop_before_the_event_that_would_confirm_a_refreshed_book_withdraws_its_closes():
    tracker = refreshed_after_a_close()
    records = tracker.connection_lost("made-up connection drop", now_ms=C1 + 9)
    assert sorted((r.symbol, r.close_ms, r.revises) for r in records) == [
        ("MADEUPA", C1, True), ("MADEUPB", C1, True)]


def test_an_older_snapshot_of_a_book_in_sync_leaves_its_closes_standing():
    tracker = tracker_with_synced_books()
    tracker.on_event(made_up_update("MADEUPA", 102, 102, 1_500), now_ms=1_500)
    assert all(r.in_sync for r in tracker.on_clock(C1 + 1, now_ms=C1 + 1))
    # a snapshot at 101, brought to 102 by the kept event: every update ID was seen
    older = OrderBook("MADEUPA", 101, np.array([[10.0, 5.0], [9.0, 2.0]]), np.array([[11.0, 1.0], [12.0, 2.0]]))
    assert tracker.apply_snapshot("MADEUPA", older, limit=10) is SnapshotOutcome.SYNCED
    assert tracker.on_event(made_up_update("MADEUPA", 103, 103, C1 + 5), now_ms=C1 + 6) == []
    assert [r.symbol for r in tracker.connection_lost("made-up connection drop", now_ms=C1 + 9)] == ["MADEUPB"]
    with pytest.raises(ValueError, match="not a symbol of this connection"):
        tracker.apply_snapshot("MADEUPC", older, limit=10)


def test_symbols_join_and_leave_and_unknown_symbols_are_refused():
    tracker = tracker_with_synced_books()
    tracker.on_clock(C1 + 1, now_ms=C1 + 1)
    tracker.add_book(LocalBook("MADEUPC"))
    records = tracker.on_clock(C2 + 1, now_ms=C2 + 1)
    assert [(r.symbol, r.close_ms) for r in records] == [("MADEUPA", C2), ("MADEUPB", C2), ("MADEUPC", C2)]
    tracker.remove_book("MADEUPC")
    with pytest.raises(ValueError, match="not a symbol of this connection"):
        tracker.on_event(made_up_update("MADEUPC", 1, 1, C2 + 2), now_ms=C2 + 2)
    with pytest.raises(ValueError, match="already on this connection"):
        tracker.add_book(LocalBook("MADEUPA"))


# ---- the property: each boundary book is the reference state at its close -------------------

INTERVAL = 1_000  # closes every second here, so that made-up histories cross many of them
SYMBOLS = ("MADEUPA", "MADEUPB", "MADEUPC")


def reference_at_close(history: TrueHistory, close_ms: int, depth: int) -> tuple[list, list]:
    """The true top of the book after every event with E <= close (Tardis's rule)."""
    update_id = history.base_id
    for event in history.events:
        if event.event_time_ms <= close_ms:
            update_id = event.final_update_id
    return history.top(update_id, depth)


def close_of(time_ms: int) -> int:
    return -(-time_ms // INTERVAL) * INTERVAL


@st.composite
def connection_plans(draw, histories: dict[str, TrueHistory]) -> list:
    """The connection's messages: every symbol's events merged in E order (ties in any order), then
    lost (never the symbol's last, and never followed by a drop before the symbol's next event, so
    that every loss is detectable), duplicated, delayed by a few messages, plus snapshots near the
    stream's update IDs, dropped connections (the messages in flight are lost) and clock ticks that
    never run ahead of a message still to come. A delayed message arrives after the first message
    with E past its close: late for that close."""
    merged = sorted(
        ((e.event_time_ms, draw(st.integers(0, 9)), symbol, k)
         for symbol, h in histories.items() for k, e in enumerate(h.events)))
    last_of = {symbol: len(h.events) - 1 for symbol, h in histories.items()}
    plan, delayed, undetected, delivered = [], [], set(), defaultdict(lambda: -1)
    for symbol, history in histories.items():  # most symbols start from a snapshot
        if draw(st.integers(0, 3)):
            plan.append(("snapshot", symbol, history.base_id, draw(st.integers(1, 14))))
    position = 0
    while position < len(merged) or delayed:
        _, _, symbol, k = merged[position] if position < len(merged) else (0, 0, None, None)
        op = draw(st.sampled_from(["next"] * 24 + ["lose", "dup", "dup", "delay", "delay", "snapshot", "snapshot"]
                                  + ["drop"] * (position % 4 == 0)))
        if position >= len(merged):
            plan.append(("event", *delayed.pop(0)[:2]))
            continue
        if op == "lose" and k != last_of[symbol] and not undetected:
            undetected.add(symbol)
            position += 1
        elif op == "dup" and delivered[symbol] >= 0:
            plan.append(("event", symbol, draw(st.integers(0, delivered[symbol]))))
        elif op == "delay" and not undetected and (
                k == last_of[symbol] or histories[symbol].events[k + 1].event_time_ms > close_of(merged[position][0])):
            # the symbol's last event before a close, held until a message from after that close
            # has gone by: it arrives late for its close
            delayed.append((symbol, k, close_of(merged[position][0])))
            position += 1
        elif op == "snapshot":
            target = draw(st.sampled_from(sorted(histories)))
            history = histories[target]
            near = history.events[delivered[target]].final_update_id if delivered[target] >= 0 else history.base_id
            update_id = draw(st.integers(max(history.base_id, near - 4), min(history.last_id, near + 4)))
            plan.append(("snapshot", target, update_id, draw(st.integers(1, 14))))
        elif op == "drop" and not undetected:
            lost = draw(st.integers(0, 2))
            plan.append(("drop",))
            # in flight: the next messages are lost with the connection, up to a symbol's last
            # event, which stays (every symbol must end on an event the recorder received)
            for _, _, s, j in merged[position:position + lost]:
                if j == last_of[s]:
                    break
                position += 1
        else:
            plan.append(("event", symbol, k))
            undetected.discard(symbol)
            delivered[symbol] = max(delivered[symbol], k)
            position += 1
            while delayed and merged[position - 1][0] > delayed[0][2]:
                plan.append(("event", *delayed.pop(0)[:2]))
            if draw(st.integers(0, 5)) == 0:
                plan.append(("tick", draw(st.integers(0, 1_500))))
    # a tick's clock: the E of the last event delivered plus its draw, never beyond the E of any
    # message still to come
    resolved, clock = [], 0
    for index, step in enumerate(plan):
        if step[0] == "tick":
            coming = [histories[s].events[j].event_time_ms for kind, s, j, *_ in
                      (p for p in plan[index + 1:] if p[0] == "event")]
            step = ("tick", min([clock + step[1], *coming]))
        elif step[0] == "event":
            clock = max(clock, histories[step[1]].events[step[2]].event_time_ms)
        resolved.append(step)
    return resolved


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_property_every_boundary_book_is_the_reference_state_at_its_close(data):
    histories = {symbol: data.draw(true_histories(symbol=symbol, start_ms=0, min_updates=5, max_updates=40))
                 for symbol in SYMBOLS[:data.draw(st.integers(1, 3))]}
    plan = data.draw(connection_plans(histories))
    depth = data.draw(st.integers(1, 5))
    tracker = BoundaryTracker([LocalBook(s, history=data.draw(st.integers(2, 30))) for s in histories],
                              start_ms=0, depth=depth, interval_ms=INTERVAL)
    final: dict[tuple[str, int], object] = {}
    now = 0
    for step in plan:
        now += 1
        if step[0] == "event":
            records = tracker.on_event(histories[step[1]].events[step[2]], now)
        elif step[0] == "snapshot":
            _, symbol, update_id, limit = step
            tracker.apply_snapshot(symbol, histories[symbol].snapshot(update_id, limit), limit=limit)
            records = []
        elif step[0] == "drop":
            records = tracker.connection_lost("made-up connection drop", now)
        else:
            records = tracker.on_clock(step[1], now)
        for record in records:
            key = (record.symbol, record.close_ms)
            assert not record.revises or key in final  # a revision replaces a record returned before
            assert record.decided_at_ms == now
            final[key] = record
    # every close the clock passed has a record for every symbol
    for close in range(INTERVAL, tracker.next_close_ms, INTERVAL):
        assert all((symbol, close) in final for symbol in histories)
    for (symbol, close), record in final.items():
        if record.view is None:
            assert not record.in_sync and record.reason
            continue
        assert record.in_sync and record.view.event_time_ms <= close
        true_bids, true_asks = reference_at_close(histories[symbol], close, depth)
        bids, asks = record.view.bids.tolist(), record.view.asks.tolist()
        assert bids == true_bids[:len(bids)] and asks == true_asks[:len(asks)], (symbol, close)
        if record.view.complete:
            assert (bids, asks) == (true_bids, true_asks)


def test_property_helpers_sanity():
    """The reference itself, on a hand-made history: E <= close is in, E > close is out."""
    history = TrueHistory("MADEUPA", 10, {1.0: 1.0}, {2.0: 1.0}, [(True, 1.0, 5.0), (True, 1.0, 6.0)])
    history.events = [DepthUpdate("MADEUPA", 1_000, 11, 11, ((1.0, 5.0),), ()),
                      DepthUpdate("MADEUPA", 1_001, 12, 12, ((1.0, 6.0),), ())]
    assert reference_at_close(history, 999, 1) == ([[1.0, 1.0]], [[2.0, 1.0]])
    assert reference_at_close(history, 1_000, 1) == ([[1.0, 5.0]], [[2.0, 1.0]])
    assert reference_at_close(history, 2_000, 1) == ([[1.0, 6.0]], [[2.0, 1.0]])
