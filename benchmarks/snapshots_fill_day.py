"""What the nightly `snapshots_from_boundary_books` run costs: a day partition, on the real embedded server.

`snapshots_from_boundary_books_schedule` runs the asset for yesterday every night at 00:02 UTC. The
asset reads the day an hour at a time (the stored cells, then the recorder's usable books, then
the levels of the books it stores) and fills the missing cells with their features. This script
seeds the real embedded server (its own process, a fresh folder) with `--minutes` (60) minutes
of `--symbols` (500) symbols: snapshots of 100 levels a side (`archive_day.py`'s seeding) and the
recorder's boundary books of every cell (binary levels, as the recorder stores them), deletes the
snapshots of `--gap` (10) minutes (a daemon outage), then materializes the day in process (an
ephemeral instance, the symbols registered), twice:

- the first run fills the gap (the night after an outage);
- the re-run finds nothing missing (most nights).

Each: the wall, the server's CPU (its process, `/proc`) and this process's, cells filled; and
the cost of filling per 1,000 missing cells (the first run minus the re-run). A whole day with
nothing missing is `fill_hour` of the seeded hour, timed alone, x 24 (the asset's runs above also
look at the 23 empty hours, explaining their cells as missing, which a real day does not).

    .venv/bin/python benchmarks/snapshots_fill_day.py [--symbols 500 --minutes 60 --gap 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

import numpy as np  # noqa: E402

from _platform import log, print_grid, print_run_header  # noqa: E402
from _platform import process_cpu_seconds as cpu_seconds  # noqa: E402
from archive_day import DAY, seed  # noqa: E402

from acts_pipeline.platform.processes import mongo_uri_of, start_embedded_mongo  # noqa: E402
from acts_pipeline.storage.collections import ORDER_BOOK_SNAPSHOTS  # noqa: E402
from acts_pipeline.storage.handlers import levels_to_binary  # noqa: E402

MINUTE = timedelta(minutes=1)


def boundary_books(documents: list[dict]) -> list[dict]:
    """The recorder's flat boundary books of stored snapshot documents (the same levels, binary)."""
    books = []
    for d in documents:
        close = d["minute"] + MINUTE
        books.append({"symbol": d["symbol"], "minute": d["minute"], "close": close, "source": "stream",
                      "in_sync": True, "reason": None, "depth_limit": d["depth_limit"],
                      "decided_at": close + timedelta(milliseconds=30), "revised": False, "connection": "ws-1",
                      "complete": True, "last_update_id": d["last_update_id"], "event_time": d["event_time"],
                      "bids": levels_to_binary(np.array(d["bids"])), "asks": levels_to_binary(np.array(d["asks"]))})
    return books


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--minutes", type=int, default=60, help="minutes of the day seeded, from 00:00")
    parser.add_argument("--gap", type=int, default=10, help="minutes of snapshots deleted (all symbols)")
    args = parser.parse_args()
    print_run_header("snapshots_fill_day.py", sys.argv[1:])
    from dagster import DagsterInstance, materialize

    from acts_pipeline.orchestration.history_snapshots import snapshots_from_boundary_books
    from acts_pipeline.storage import MongoResource
    from acts_pipeline.storage.boundary_books import BoundaryBooks

    symbols = [f"S{i:04d}USDT" for i in range(args.symbols)]
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="acts-fill-") as folder:
        server = start_embedded_mongo(Path(folder) / "mongo", log_path=Path(folder) / "mongo.log")
        try:
            mongo = MongoResource(uri=mongo_uri_of(server), database="acts")
            store = mongo.get_store()
            seconds = seed(store, symbols, args.minutes, 100, np.random.default_rng(7))
            log(f"seeded {args.minutes} minutes x {len(symbols)} snapshots in {seconds:.0f} s")
            books = BoundaryBooks(store)
            for m in range(args.minutes):
                minute = start + m * MINUTE
                books.write(boundary_books(list(store.collection(ORDER_BOOK_SNAPSHOTS).find({"minute": minute}, {"_id": False}))))
            gap = [start + (args.minutes // 2 + i) * MINUTE for i in range(args.gap)]
            deleted = store.collection(ORDER_BOOK_SNAPSHOTS).delete_many({"minute": {"$in": gap}}).deleted_count
            log(f"boundary books written; {deleted:,} snapshots deleted ({args.gap} minutes)")
            rows = []
            with DagsterInstance.ephemeral() as instance:
                instance.add_dynamic_partitions("symbols", symbols)
                for label in ("first run (fills the gap)", "re-run (nothing missing)"):
                    pid = server.process.pid
                    server_cpu, own, wall = cpu_seconds(pid), time.process_time(), time.perf_counter()
                    result = materialize([snapshots_from_boundary_books], instance=instance,
                                         partition_key=f"{DAY:%Y-%m-%d}", resources={"mongo": mongo})
                    figures = (time.perf_counter() - wall, cpu_seconds(pid) - server_cpu, time.process_time() - own)
                    (event,) = result.get_asset_materialization_events()
                    filled = event.materialization.metadata["filled_from_boundary_books"].value
                    log(f"{label}: wall {figures[0]:.1f} s, server {figures[1]:.1f} s, own {figures[2]:.1f} s, "
                        f"{filled:,} filled")
                    rows.append([label, *figures, filled])
                # The seeded hour alone, nothing missing: what every hour of a real day costs (the
                # runs above also looked at the empty hours, explaining their cells as missing).
                from acts_pipeline.orchestration.history_snapshots import DayFill, fill_hour
                from acts_pipeline.storage.history_io import first_minute

                oldest = first_minute(store, "boundary_books")
                pid = server.process.pid
                server_cpu, own, wall = cpu_seconds(pid), time.process_time(), time.perf_counter()
                for hour in range(args.minutes // 60):
                    fill_hour(store, books, start + timedelta(hours=hour), symbols, oldest, DayFill())
                hour_figures = [(time.perf_counter() - wall) / (args.minutes // 60),
                                (cpu_seconds(pid) - server_cpu) / (args.minutes // 60),
                                (time.process_time() - own) / (args.minutes // 60)]
                log(f"one seeded hour, nothing missing: wall {hour_figures[0]:.1f} s, server {hour_figures[1]:.1f} s")
        finally:
            server.stop()
    (_, *first, filled), (_, *again, _) = rows
    table = [[label, *(f"{f:.1f}" for f in figures), f"{n:,}"] for label, *figures, n in rows]
    table.append(["one hour of the day, nothing missing (fill_hour alone), s", *(f"{f:.1f}" for f in hour_figures), "0"])
    table.append([f"a day of {args.symbols} symbols, nothing missing (that hour x 24), minutes",
                  *(f"{f * 24 / 60:.1f}" for f in hour_figures), "0"])
    table.append(["filling, per 1,000 cells missing (first run - re-run), s",
                  *(f"{(a - b) / max(filled, 1) * 1000:.2f}" for a, b in zip(first, again)), "1,000"])
    print_grid(["run", "wall", "server CPU", "own CPU", "cells filled"], table)
    print(f"a day: every hour of a real day costs one seeded hour's reads (x 24); filling adds the last line's "
          f"cost per 1,000 cells missing ({args.gap} minutes x {args.symbols} symbols were missing here)")


if __name__ == "__main__":
    main()
