"""A minute of cells read back from MongoDB, as every minute run does: `MongoStore.find_cells`
against the same query with the projection it sent before (`{"_id": False}`).

Each minute run reads its cells back twice or more: the features step loads the run's snapshots
(`MongoIOManager.load_input`), and the checks read the snapshots and the features again. On the
embedded server (SecantusDB) a projection makes it deep-copy every document it returns, even one
that only drops `_id`; `find_cells` now reads whole documents unprojected and drops `_id` itself.

Seeds the real embedded server (its own process, a fresh storage folder) with `--minutes` (3)
minutes of `--symbols` (500) synthetic snapshots of `--levels` (100) a side and their features
(`archive_day.py`'s seeding: the product's document shapes), then reads one minute of each
collection `--repeat` (10) times each way, alternating, and prints per read: the server's CPU
(its process, `/proc`), this process's CPU, the wall time, and the ratios baseline / product.

    .venv/bin/python benchmarks/cell_reads.py [--symbols 500 --levels 100 --repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

import numpy as np  # noqa: E402

from _platform import log, print_grid, print_run_header  # noqa: E402
from _platform import process_cpu_seconds as cpu_seconds  # noqa: E402
from archive_day import DAY, seed, seed_small  # noqa: E402

from acts_pipeline.core.cells import Cell  # noqa: E402
from acts_pipeline.platform.processes import mongo_uri_of, start_embedded_mongo  # noqa: E402
from acts_pipeline.storage.client import MongoStore  # noqa: E402
from acts_pipeline.storage.collections import ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS  # noqa: E402


def timed(server_pid: int, read) -> tuple[float, float, float, int]:
    """Server CPU, own CPU and wall seconds of one `read()`, and the documents it returned."""
    server, own, wall = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
    documents = read()
    return (cpu_seconds(server_pid) - server, time.process_time() - own, time.perf_counter() - wall,
            len(documents))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--levels", type=int, default=100, help="levels per side of each snapshot")
    parser.add_argument("--minutes", type=int, default=3, help="minutes seeded (one is read)")
    parser.add_argument("--repeat", type=int, default=10, help="reads of each kind, alternating")
    args = parser.parse_args()
    print_run_header("cell_reads.py", sys.argv[1:])

    symbols = [f"S{i:04d}USDT" for i in range(args.symbols)]
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as folder:
        server = start_embedded_mongo(Path(folder) / "mongo")
        try:
            store = MongoStore.connect(mongo_uri_of(server), "acts_bench")
            log(f"seeding {args.minutes} minutes x {args.symbols} symbols")
            seed(store, symbols, args.minutes, args.levels, rng)
            seed_small(store, symbols, args.minutes, rng)
            minute = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).replace(minute=args.minutes // 2)
            cells = [Cell(minute, s) for s in symbols]
            rows = []
            for name in (ORDER_BOOK_SNAPSHOTS, ORDER_BOOK_FEATURES):
                ways = {
                    "baseline: {_id: False} projection": lambda name=name: list(
                        store.collection(name).find({"minute": minute}, {"_id": False})),
                    "find_cells (no projection)": lambda name=name: store.find_cells(name, cells),
                }
                figures: dict[str, list[tuple[float, float, float, int]]] = {way: [] for way in ways}
                for way, read in ways.items():  # one unmeasured read each: the server's caches
                    read()
                for _ in range(args.repeat):
                    for way, read in ways.items():
                        figures[way].append(timed(server.process.pid, read))
                medians = {way: [statistics.median(f[i] for f in fs) for i in range(3)] for way, fs in figures.items()}
                base, product = (medians[w] for w in ways)
                for way, (srv, own, wall) in medians.items():
                    rows.append([name, way, f"{figures[way][0][3]}", f"{srv:.3f}", f"{own:.3f}", f"{wall:.3f}"])
                rows.append([name, "ratio baseline / find_cells", "", f"{base[0] / product[0]:.2f}x",
                             f"{base[1] / product[1]:.2f}x", f"{base[2] / product[2]:.2f}x"])
        finally:
            server.process.terminate()
            server.process.wait(timeout=30)
    print(f"\none minute of {args.symbols} symbols read back ({args.levels} levels a side), "
          f"median of {args.repeat} reads each way, alternating; seconds per read")
    print_grid(["collection", "read", "documents", "server CPU", "our CPU", "wall"], rows)


if __name__ == "__main__":
    main()
