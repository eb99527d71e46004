"""The simulator's evolving books, without HTTP: one state per symbol, its diff events, its REST
book and its truth agree exactly, as they do on Binance.

The local book here is kept by Binance's documented procedure ("How to manage a local order book
correctly": drop events with u <= lastUpdateId, the first kept one has U <= lastUpdateId + 1 <= u,
each next U = previous u + 1, quantities are absolute, 0 deletes), written out in this file from
the documentation so that the simulator is checked against the procedure, not against itself.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from acts_simulator.market import BookUnavailable, Market, load_captures

# 2026-06-01 00:00:00 UTC: the books are born at this minute.
EPOCH = 1_780_272_000.0
EPOCH_MS = int(EPOCH * 1000)
SYMBOLS = ["NKNUSDT", "BTCUSDT", "LRCBTC", "BLZETH", "RUNEEUR", "ETHBTC", "USDTBIDR"]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def market(seed: int = 0, retention: float = 30 * 60.0) -> tuple[Market, Clock]:
    clock = Clock(EPOCH)
    return Market(load_captures(), seed=seed, clock=clock, epoch=EPOCH, retention_seconds=retention), clock


def run(m: Market, clock: Clock, seconds: float, symbols: list[str]) -> list[dict]:
    """Watch `symbols` and step the market 100 ms at a time, as the server's tick does: the
    payloads of every event sent, in order."""
    for symbol in symbols:
        m.watch(symbol)
    payloads = []
    end = clock.now + seconds
    while clock.now < end:
        clock.now = round(clock.now + 0.1, 3)
        m.advance_all(int(clock.now * 1000))
        for events in m.drain().values():
            payloads += [json.loads(m.event_json(e)) for e in events]
    return payloads


class LocalBook:
    """Binance's documented procedure for a local order book (see the module docstring)."""

    def __init__(self, snapshot: dict) -> None:
        self.last_update_id = snapshot["lastUpdateId"]
        self.sides = {"b": dict(map(tuple, snapshot["bids"])), "a": dict(map(tuple, snapshot["asks"]))}
        self.synced = False
        self.event_time = None

    def apply(self, event: dict) -> None:
        if event["u"] <= self.last_update_id:
            return
        if not self.synced:
            assert event["U"] <= self.last_update_id + 1 <= event["u"], "the first event must straddle the snapshot"
            self.synced = True
        else:
            assert event["U"] == self.last_update_id + 1, "a gap in the update ids"
        for side in ("b", "a"):
            for price, quantity in event[side]:
                if Decimal(quantity) == 0:
                    self.sides[side].pop(price, None)
                else:
                    self.sides[side][price] = quantity
        self.last_update_id = event["u"]
        self.event_time = event["E"]

    def top(self, limit: int) -> tuple[list, list]:
        bids = sorted(self.sides["b"].items(), key=lambda level: -Decimal(level[0]))[:limit]
        asks = sorted(self.sides["a"].items(), key=lambda level: Decimal(level[0]))[:limit]
        return [list(level) for level in bids], [list(level) for level in asks]


def by_symbol(payloads: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for payload in payloads:
        out.setdefault(payload["s"], []).append(payload)
    return out


def zero_offset_symbols(m: Market, count: int) -> list[str]:
    """Busy symbols whose events are stamped at the start of their slot: the first slot of a
    minute then stamps exactly on the minute."""
    found = [s for s in m.trading_symbols if m.event_offset_ms(s) == 0]
    return sorted(found, key=m.event_rate, reverse=True)[:count]


# ---- the stream, the REST book and the truth agree ----------------------------------------------


def test_a_rest_snapshot_plus_the_stream_is_the_true_book_at_every_close():
    m, clock = market()
    symbols = SYMBOLS + zero_offset_symbols(m, 3)
    payloads = run(m, clock, 4.95, symbols)
    snapshots = {s: m.depth(s, 1000, at=clock.now) for s in symbols}
    payloads += run(m, clock, 5 * 60, [])
    events = by_symbol(payloads)
    closes = [EPOCH_MS + k * 60_000 for k in range(1, 6)]
    compared = 0
    for symbol in symbols:
        book = LocalBook(snapshots[symbol])
        pending = list(events.get(symbol, []))
        for close in closes:
            while pending and pending[0]["E"] <= close:
                book.apply(pending.pop(0))
            truth = m.true_book(symbol, close, 1000)
            assert truth["lastUpdateId"] == book.last_update_id, (symbol, close)
            assert book.top(1000) == (truth["bids"], truth["asks"]), (symbol, close)
            if book.event_time is not None:
                assert truth["E"] == book.event_time
            compared += 1
    assert compared == len(symbols) * len(closes)


def test_rest_depth_at_any_instant_is_the_truth_and_the_past_is_rebuilt_exactly():
    m, clock = market()
    rng = random.Random(4)
    instants = sorted(EPOCH_MS + rng.randrange(0, 4 * 60_000) for _ in range(12))
    live = {}
    for at in instants:  # asked live, in time order
        clock.now = at / 1000
        live[at] = {s: m.depth(s, 200) for s in SYMBOLS[:4]}
    clock.now = EPOCH + 5 * 60
    for at in instants:  # and again later: rebuilt from the checkpoints
        for symbol in SYMBOLS[:4]:
            truth = m.true_book(symbol, at, 200)
            assert live[at][symbol] == {k: truth[k] for k in ("lastUpdateId", "bids", "asks")}


def test_update_ids_chain_and_each_event_carries_final_quantities():
    m, clock = market()
    events = by_symbol(run(m, clock, 60, SYMBOLS))
    for symbol, payloads in events.items():
        for previous, event in zip(payloads, payloads[1:]):
            assert event["U"] == previous["u"] + 1
            assert event["E"] > previous["E"]
        for event in payloads:
            assert list(event) == ["e", "E", "s", "U", "u", "b", "a"]
            levels = len(event["b"]) + len(event["a"])
            assert 1 <= levels <= event["u"] - event["U"] + 1
            for side in ("b", "a"):
                prices = [Decimal(p) for p, _ in event[side]]
                assert len(set(prices)) == len(prices), "one final quantity per level"
            assert (event["E"] - m.event_offset_ms(symbol)) % 100 == 0


def test_an_event_stamped_on_the_minute_belongs_to_that_close():
    m, clock = market()
    symbols = zero_offset_symbols(m, 6)
    payloads = run(m, clock, 4 * 60 + 1, symbols)
    on_close = [p for p in payloads if p["E"] % 60_000 == 0]
    assert on_close, "busy zero-offset symbols stamp some event exactly on a minute"
    for event in on_close:
        truth = m.true_book(event["s"], event["E"])
        assert (truth["lastUpdateId"], truth["E"]) == (event["u"], event["E"])
        assert m.true_book(event["s"], event["E"] - 1)["lastUpdateId"] == event["U"] - 1


def test_a_quiet_slot_sends_nothing_and_keeps_the_id():
    m, clock = market()
    payloads = run(m, clock, 60, ["RUNEEUR"])
    times = [p["E"] for p in payloads]
    quiet = next(t for t in range(EPOCH_MS + 1000, EPOCH_MS + 60_000, 100) if not any(t - 100 < e <= t for e in times))
    assert m.true_book("RUNEEUR", quiet)["lastUpdateId"] == m.true_book("RUNEEUR", quiet - 100)["lastUpdateId"]


# ---- the book itself ------------------------------------------------------------------------------


def test_books_never_cross_stay_sorted_bounded_and_on_tick():
    m, clock = market()
    symbols = sorted(random.Random(1).sample(m.trading_symbols, 40)) + SYMBOLS
    for symbol in symbols:
        m.watch(symbol)
    for step in range(1, 1201):  # two minutes, every slot
        clock.now = EPOCH + step / 10
        m.advance_all(int(clock.now * 1000))
        m.drain()
        for symbol in symbols if step % 50 == 0 else symbols[-7:]:
            book = m.depth(symbol, 1000 if step % 50 == 0 else 1)
            bids = [Decimal(p) for p, _ in book["bids"]]
            asks = [Decimal(p) for p, _ in book["asks"]]
            assert bids[0] < asks[0], (symbol, clock.now)
            if step % 50 == 0:
                spec = m.specs[symbol]
                assert all(a > b for a, b in zip(bids, bids[1:])) and all(b > a for a, b in zip(asks, asks[1:]))
                assert 1 <= len(bids) <= 1000 and 1 <= len(asks) <= 1000
                assert all(p % spec.tick_size == 0 for p in bids[:20] + asks[:20])
                assert all(Decimal(q) > 0 for _, q in book["bids"] + book["asks"])


def test_the_mid_follows_the_klines_price_path():
    m, clock = market()
    run(m, clock, 10 * 60, ["BTCUSDT", "NKNUSDT", "ETHBTC"])
    for symbol in ("BTCUSDT", "NKNUSDT", "ETHBTC"):
        for k in range(1, 11):
            close = EPOCH_MS + k * 60_000
            truth = m.true_book(symbol, close, 1)
            mid = (float(truth["bids"][0][0]) + float(truth["asks"][0][0])) / 2
            spread = float(truth["asks"][0][0]) - float(truth["bids"][0][0])
            path = m.price_at(symbol, close / 1000, slot_noise=False)
            assert abs(mid - path) <= max(spread, path * 0.002), (symbol, k, mid, path)


# ---- rates: the real capture's ---------------------------------------------------------------------


def test_event_rates_are_the_real_captures():
    """stream.jsonl (30 s, 2021-10-12): NKNUSDT 5.0 events/s of 2.5 levels and 2.9 update ids,
    LRCBTC 0.5/s, BLZETH 0.33/s, RUNEEUR 0.067/s. Ten simulated minutes of each."""
    m, _ = market()
    seconds = 600
    events = by_symbol([json.loads(m.event_json(e)) for e in m.stream_events(
        ["NKNUSDT", "LRCBTC", "BLZETH", "RUNEEUR"], EPOCH_MS, EPOCH_MS + seconds * 1000)])
    rate = {s: len(e) / seconds for s, e in events.items()}
    assert 4.5 <= rate["NKNUSDT"] <= 5.5
    assert 0.4 <= rate["LRCBTC"] <= 0.6
    assert 0.25 <= rate["BLZETH"] <= 0.42
    assert 0.03 <= rate["RUNEEUR"] <= 0.12
    nkn = events["NKNUSDT"]
    assert 2.0 <= sum(len(e["b"]) + len(e["a"]) for e in nkn) / len(nkn) <= 3.0
    assert 2.0 <= sum(e["u"] - e["U"] + 1 for e in nkn) / len(nkn) <= 3.2


def test_activity_is_drawn_from_turnover_busy_books_send_almost_every_slot():
    m, _ = market()
    rates = sorted(m.event_rate(s) for s in m.trading_symbols)
    assert 0.05 <= rates[0] < 0.1 and 9 <= rates[-1] <= 10
    assert 1.5 <= sum(rates) / len(rates) <= 2.3


# ---- determinism, retention -------------------------------------------------------------------------


def test_the_same_seed_and_epoch_give_the_same_books_and_events():
    (a, _), (b, _), (other, _) = market(), market(), market(seed=3)
    window = (EPOCH_MS, EPOCH_MS + 90_000)
    events = [[x.event_json(e) for e in x.stream_events(SYMBOLS, *window)] for x in (a, b, other)]
    assert events[0] == events[1] and events[0] != events[2]
    assert a.true_book("BTCUSDT", window[1]) == b.true_book("BTCUSDT", window[1])
    assert a.true_book("BTCUSDT", window[1]) != other.true_book("BTCUSDT", window[1])


def test_the_truth_is_kept_for_the_retention_and_then_dropped():
    m, clock = market(retention=3 * 60)
    for step in range(1, 14 * 2 + 1):  # 14 minutes, asked every 30 s
        clock.now = EPOCH + 30 * step
        m.depth("NKNUSDT", 5)
    now_ms = int(clock.now * 1000)
    assert m.true_book("NKNUSDT", now_ms - 3 * 60_000)["lastUpdateId"] > 0
    with pytest.raises(BookUnavailable):
        m.true_book("NKNUSDT", EPOCH_MS + 60_000)
    with pytest.raises(BookUnavailable):
        m.true_book("NKNUSDT", EPOCH_MS - 60_000)  # before the book's birth
    # Bounded: a full copy every 10 minutes, a diff each minute, no more than the retention needs.
    assert len(m._tracks["NKNUSDT"].checkpoints) <= 3 + 10
