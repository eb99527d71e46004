"""Benchmark: the pure local order book (acts_pipeline/core/local_book.py) and the diff-event parser.

    python benchmarks/local_book.py [--levels N] [--views V] [--depth D] [--seed S]

Starts from the real NKNUSDT snapshot (`acts_simulator/data/binance/depth/NKNUSDT.json`, limit
1000: 609 bids, 1000 asks) and applies made-up diff events shaped like the capture's (1 to 9
levels per event, prices near the top of the book on the real tick 0.0001, one level in five
deleted with quantity 0), N levels in all, from a numpy RNG with a fixed seed; the events are
built before the timing. Then, in one run, it times:

(a) `LocalBook.apply` per applied level (N levels, default 1,000,000), the garbage collector
    paused as `timeit` does;
(b) `LocalBook.view(D)` (D = 100 by default: the published depth), V times (default 1262), on
    the book left by (a);
(c) `parse_depth_stream_message` per level on the capture's 177 real depth messages;

and measures with `tracemalloc` the memory of one book holding 1000 levels a side (the dicts
and floats) and of its kept events (the default history of 200 events of the capture's size).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc

import numpy as np

from _platform import PROJECT, print_run_header  # noqa: F401  (puts the project on sys.path)

from acts_pipeline.core.local_book import Applied, LocalBook
from acts_pipeline.core.models import DepthUpdate, OrderBook
from acts_pipeline.core.parsing import parse_depth, parse_depth_stream_message

CAPTURES = PROJECT / "acts_simulator" / "data" / "binance"
TICK = 0.0001


def made_up_events(snapshot: OrderBook, n_levels: int, seed: int) -> list[DepthUpdate]:
    rng = np.random.default_rng(seed)
    best_bid, best_ask = snapshot.bids[0, 0], snapshot.asks[0, 0]
    events, update_id, applied, time_ms = [], snapshot.last_update_id, 0, 1633998512068
    while applied < n_levels:
        size = int(rng.integers(1, 10))
        levels = []
        for _ in range(size):
            is_bid = bool(rng.integers(0, 2))
            offset = int(rng.geometric(0.15)) - 1  # ticks away from the (fixed) touch, mostly near it
            price = round((best_bid - offset * TICK) if is_bid else (best_ask + offset * TICK), 4)
            qty = 0.0 if rng.random() < 0.2 else float(rng.integers(1, 20_000))
            levels.append((is_bid, price, qty))
        bids = tuple((p, q) for is_bid, p, q in levels if is_bid)
        asks = tuple((p, q) for is_bid, p, q in levels if not is_bid)
        events.append(DepthUpdate("NKNUSDT", time_ms, update_id + 1, update_id + size, bids, asks))
        update_id += size
        time_ms += 100
        applied += size
    return events


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, default=1_000_000)
    parser.add_argument("--views", type=int, default=1262)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    print_run_header("local_book.py", argv)

    snapshot = parse_depth(json.loads((CAPTURES / "depth" / "NKNUSDT.json").read_text()), "NKNUSDT")
    events = made_up_events(snapshot, args.levels, args.seed)
    n_levels = sum(len(e.bids) + len(e.asks) for e in events)
    book = LocalBook("NKNUSDT")
    book.apply_snapshot(snapshot, limit=1000)

    gc.disable()
    start = time.perf_counter()
    for event in events:
        if book.apply(event) is not Applied.APPLIED:
            raise SystemExit(f"event {event.first_update_id} was not applied: {book.reason}")
    applied_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.views):
        view = book.view(args.depth)
    views_s = time.perf_counter() - start
    gc.enable()
    assert view.in_sync and view.bids[0, 0] < view.asks[0, 0]

    messages = [json.loads(line)["message"] for line in (CAPTURES / "stream.jsonl").read_text().splitlines()[1:]]
    messages = [m for m in messages if "@depth" in m["stream"]]
    real_levels = sum(len(m["data"]["b"]) + len(m["data"]["a"]) for m in messages)
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        for message in messages:
            parse_depth_stream_message(message)
    parse_s = time.perf_counter() - start

    # memory: a fresh book of 1000 levels a side, then 200 kept events of the capture's size
    bids = np.column_stack([np.round(0.3521 - np.arange(1000) * TICK, 4), np.full(1000, 1234.0)])
    asks = np.column_stack([np.round(0.3525 + np.arange(1000) * TICK, 4), np.full(1000, 1234.0)])
    deep = OrderBook("NKNUSDT", 1, bids, asks)
    real_events = [parse_depth_stream_message(m) for m in messages if m["data"]["s"] == "NKNUSDT"]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    fresh = LocalBook("NKNUSDT")
    fresh.apply_snapshot(deep, limit=1000)
    book_bytes = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    before = tracemalloc.take_snapshot()
    kept = [parse_depth_stream_message(m) for m in messages if m["data"]["s"] == "NKNUSDT"]
    kept = (kept * 2)[:200]
    kept_bytes = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    per_event_levels = sum(len(e.bids) + len(e.asks) for e in real_events) / len(real_events)

    print(f"book after the run: {len(book._bids.levels)} bids, {len(book._asks.levels)} asks held; "
          f"{book.counters.events_applied} events applied")
    print(f"apply: {n_levels} levels in {len(events)} events, {applied_s:.3f} s: "
          f"{applied_s / n_levels * 1e6:.3f} us per level, {applied_s / len(events) * 1e6:.2f} us per event")
    print(f"view({args.depth}): {args.views} views, {views_s:.3f} s: {views_s / args.views * 1e6:.1f} us per view")
    print(f"parse: {len(messages)} real depth messages ({real_levels} levels) x {rounds}: "
          f"{parse_s / (rounds * len(messages)) * 1e6:.2f} us per message, "
          f"{parse_s / (rounds * real_levels) * 1e6:.3f} us per level")
    print(f"memory: a book of 1000 levels a side {book_bytes / 1024:.0f} KiB "
          f"({book_bytes / 2000:.0f} B per level); 200 kept events of the capture "
          f"({per_event_levels:.1f} levels each) {kept_bytes / 1024:.0f} KiB")


if __name__ == "__main__":
    main(sys.argv[1:])
