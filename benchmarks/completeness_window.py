"""The completeness check's window read: every minute run's `snapshots_are_complete` learns which
(minute, symbol) snapshots of the last 15 minutes are stored. Baseline: the window read in full
(`MongoStore.stored_minutes`, what the check did before `SeenCells`); new: `SeenCells` as the
check calls it, in steady state (the run's own minute in full, the 14 before from what earlier
runs saw, plus the cells missing there).

    python benchmarks/completeness_window.py [--symbols 1262] [--minutes 15] [--levels 100] [--gaps 0.01]

- **Server**: the embedded MongoDB-compatible server, its own process, a fresh folder.
- **Data**: `--minutes` + 1 minutes of N symbols' snapshot documents shaped as the product
  stores them (100 levels a side, `[price, qty]` pairs), a fraction `--gaps` of the cells
  missing at random (missed minutes), the collection's indexes as the product creates them.
- **Measured**, alternated, best of 5 and median: the baseline's read of the window; the new read
  of the same window after the check of the minute before (so its memory holds the 14 earlier
  minutes and the newest minute is fresh). Each is checked against the other: the same stored
  cells, or the script fails. Printed: seconds, documents read, the server's CPU seconds over
  the repetitions (from /proc), and the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster

from acts_pipeline.core.cells import Cell
from acts_pipeline.platform.processes import mongo_uri_of, start_embedded_mongo
from acts_pipeline.storage.client import MongoStore
from acts_pipeline.storage.collections import CELLS_SEEN, ORDER_BOOK_SNAPSHOTS
from acts_pipeline.storage.seen_cells import SeenCells

MINUTE = timedelta(minutes=1)
END = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed(store: MongoStore, symbols: list[str], minutes: list[datetime], levels: int, gaps: float) -> int:
    rng = random.Random(1)
    stored = 0
    for minute in minutes:
        documents = []
        for symbol in symbols:
            if rng.random() < gaps:
                continue
            mid = 100 + rng.random()
            documents.append({
                "symbol": symbol, "minute": minute, "captured_at": minute + timedelta(seconds=60.1),
                "requested_at": minute + timedelta(seconds=60), "last_update_id": 10_000_000 + minute.minute,
                "depth_limit": levels, "source": "stream", "event_time": minute + timedelta(seconds=59.95),
                "bids": [[round(mid - 0.01 * (k + 1), 2), rng.random()] for k in range(levels)],
                "asks": [[round(mid + 0.01 * (k + 1), 2), rng.random()] for k in range(levels)]})
        store.insert_or_replace(ORDER_BOOK_SNAPSHOTS, documents)
        stored += len(documents)
    return stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=1262)
    parser.add_argument("--minutes", type=int, default=15)
    parser.add_argument("--levels", type=int, default=100)
    parser.add_argument("--gaps", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at start; Python "
          f"{platform.python_version()}, dagster {dagster.__version__}")
    folder = Path(tempfile.mkdtemp(prefix="acts-bench-window-"))
    server = start_embedded_mongo(folder / "mongo", log_path=folder / "mongo.log")
    try:
        store = MongoStore.connect(mongo_uri_of(server), "bench")
        symbols = [f"S{i:04d}USDT" for i in range(args.symbols)]
        minutes = [END - (args.minutes + 1 - k) * MINUTE for k in range(args.minutes + 1)]
        began = time.perf_counter()
        stored = seed(store, symbols, minutes, args.levels, args.gaps)
        print(f"seeded {stored:,} snapshots ({args.symbols} symbols x {len(minutes)} minutes, {args.levels} levels, "
              f"{args.gaps:.0%} missing) in {time.perf_counter() - began:.0f} s")
        tracked = {s: minutes[0] for s in symbols}
        start, end = END - args.minutes * MINUTE, END

        baseline_s, new_s, baseline_cpu, new_cpu, new_docs = [], [], 0.0, 0.0, []
        for _ in range(args.repeat):
            cpu = process_cpu(server.process.pid)
            t = time.perf_counter()
            truth = store.stored_minutes(ORDER_BOOK_SNAPSHOTS, start, end)
            baseline_s.append(time.perf_counter() - t)
            baseline_cpu += process_cpu(server.process.pid) - cpu
            # the check of the minute before saw its window; this run's minute is fresh
            store.collection(CELLS_SEEN).delete_many({})
            SeenCells(store, ORDER_BOOK_SNAPSHOTS).stored_minutes(start - MINUTE, end - MINUTE, tracked,
                                                                  fresh=[end - 2 * MINUTE])
            cpu = process_cpu(server.process.pid)
            t = time.perf_counter()
            seen = SeenCells(store, ORDER_BOOK_SNAPSHOTS)
            got = seen.stored_minutes(start, end, tracked, fresh=[end - MINUTE])
            new_s.append(time.perf_counter() - t)
            new_cpu += process_cpu(server.process.pid) - cpu
            new_docs.append(seen.documents_read)
            if got != truth:
                sys.exit("SeenCells disagrees with the window as stored")
        documents = sum(len(v) for v in truth.values())
        print(f"\nwindow: {args.minutes} minutes x {args.symbols} symbols, {documents:,} cells stored; "
              f"each read checked equal to the other")
        print("| read | best (s) | median (s) | documents read | server CPU per read (s) |")
        print("|---|---|---|---|---|")
        print(f"| whole window (baseline) | {min(baseline_s):.3f} | {statistics.median(baseline_s):.3f} | "
              f"{documents:,} | {baseline_cpu / args.repeat:.3f} |")
        print(f"| SeenCells, steady state | {min(new_s):.3f} | {statistics.median(new_s):.3f} | "
              f"{statistics.median(new_docs):,.0f} | {new_cpu / args.repeat:.3f} |")
        print(f"| ratio baseline / new | {min(baseline_s) / min(new_s):.1f}x | "
              f"{statistics.median(baseline_s) / statistics.median(new_s):.1f}x | | "
              f"{baseline_cpu / max(new_cpu, 1e-9):.1f}x |")
        print(f"\nload {os.getloadavg()[0]:.2f} at end")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
