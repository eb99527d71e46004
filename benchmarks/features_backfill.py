"""Features backfill through Dagster: N hours x S symbols of stored snapshots -> order_book_features.

    python benchmarks/features_backfill.py [--hours 24] [--symbols 20] [--runs 4] [--baseline-hours 1]

What it does, all on this machine:
1. starts the embedded MongoDB-compatible server (its own process) and stores hours x symbols x 60
   snapshots built from the real captured books (100 levels a side, rescaled per symbol);
2. backfills `order_book_features` over the whole range in `--runs` range runs (the way a
   backfill launched from the UI is chunked by `BackfillPolicy.single_run()`), on a real
   SQLite-backed Dagster instance configured by the project's `dagster.yaml` (its batched event
   log storage, `DAGSTER_EVENT_BATCH_SIZE` set as `acts-pipeline dev` sets it), with the minute
   runs' per-cell events;
3. as the baseline, backfills `--baseline-cells` cells with one run per cell (what a
   per-partition backfill policy does), in a fresh instance, and reports both as cells per second.

Each configuration runs in its own process. It prints one table: cells, runs, seconds, cells/s,
and the ratio. The range runs' cost used to be dominated by Dagster writing one materialization
event per cell (about 12 ms each on Dagster's SQLite storage, which opens a connection per event);
`acts_pipeline.platform.event_log` writes each output's cells in one transaction. The range starts at
yesterday's midnight UTC; the runs load the definitions with a 48-hour partition window
(`ACTS_PARTITION_WINDOW_HOURS=48`), as the README says to widen it for a backfill older than the
default 6 hours.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acts_pipeline.core.models import OrderBook, OrderBookSnapshot  # noqa: E402
from acts_pipeline.core.parsing import parse_depth  # noqa: E402
from acts_pipeline.core.cells import format_minute

DEPTH = ROOT / "acts_simulator" / "data" / "binance" / "depth"
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


def seed_snapshots(uri: str, database: str, symbols: list[str], hours: float) -> int:
    from acts_pipeline.storage.handlers import SnapshotHandler
    from acts_pipeline.storage import MongoStore

    rng = np.random.default_rng(20261126)
    shapes = [parse_depth(json.loads(p.read_text()), p.stem) for p in sorted(DEPTH.glob("*.json"))]
    store = MongoStore.connect(uri, database)
    handler = SnapshotHandler()
    minutes = int(hours * 60)
    written = 0
    for index, symbol in enumerate(symbols):
        shape = shapes[index % len(shapes)]
        scale = 10 ** rng.uniform(-2, 4) / shape.bids[0, 0]
        batch = []
        for m in range(minutes):
            minute = START + timedelta(minutes=m)
            drift = 1 + rng.normal(0, 1e-3)
            bids = shape.bids[:100] * [scale * drift, 1]
            asks = shape.asks[:100] * [scale * drift, 1]
            bids[:, 1] *= rng.uniform(0.5, 1.5, len(bids))
            asks[:, 1] *= rng.uniform(0.5, 1.5, len(asks))
            close = minute + timedelta(minutes=1)
            batch.append(OrderBookSnapshot(symbol, minute, close, close + timedelta(milliseconds=9), 100,
                                           OrderBook(symbol, 1 + m, bids, asks)))
        for i in range(0, len(batch), 2000):
            written += store.upsert("order_book_snapshots", handler.to_documents(batch[i:i + 2000])).written
    return written


def backfill(uri: str, database: str, symbols: list[str], hours: float, runs: int, cells_limit: int = 0) -> dict:
    """Runs in a child process: materialize features over the range in `runs` range runs, or,
    with `cells_limit`, that many cells with one run each."""
    import warnings

    warnings.filterwarnings("ignore")
    from dagster import materialize

    from acts_pipeline.orchestration.assets import order_book_features, order_book_snapshot
    from acts_pipeline.orchestration.book_source import BookSource
    from acts_pipeline.orchestration.capture import CaptureClock
    from acts_pipeline.exchange import BinanceExchange
    from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS
    from acts_pipeline.orchestration.partitions import RANGE_END_TAG, RANGE_START_TAG
    from acts_pipeline.storage import MongoIOManager, MongoResource

    minutes = int(hours * 60)
    per_run = -(-minutes // runs)
    io_manager = MongoIOManager(mongo=MongoResource(uri=uri, database=database))
    started = time.perf_counter()
    cells = 0
    with product_instance() as instance:
        instance.add_dynamic_partitions("symbols", symbols)
        for index in range(cells_limit):
            minute, symbol = divmod(index, len(symbols))
            key = f"{format_minute(START + timedelta(minutes=minute))}|{symbols[symbol]}"
            result = materialize([order_book_snapshot, order_book_features], selection=[order_book_features],
                                 instance=instance, partition_key=key, tags=PER_CELL_EVENTS_TAGS,
                                 resources={"io_manager": io_manager, "exchange": BinanceExchange(),
                                            "capture_clock": CaptureClock(),
                                            "book_source": BookSource(mongo=io_manager.mongo)})
            assert result.success
            cells += 1
        if cells_limit:
            seconds = time.perf_counter() - started
            stored = len(instance.get_materialized_partitions(order_book_features.key))
            return {"cells": cells, "runs": cells, "seconds": seconds, "materialized": stored}
        for first in range(0, minutes, per_run):
            last = min(minutes, first + per_run) - 1
            tags = {RANGE_START_TAG: f"{format_minute(START + timedelta(minutes=first))}|{symbols[0]}",
                    RANGE_END_TAG: f"{format_minute(START + timedelta(minutes=last))}|{symbols[-1]}",
                    **PER_CELL_EVENTS_TAGS}
            result = materialize([order_book_snapshot, order_book_features], selection=[order_book_features],
                                 instance=instance, tags=tags,
                                 # the snapshot asset is not executed: its resources are never built
                                 resources={"io_manager": io_manager, "exchange": BinanceExchange(),
                                            "capture_clock": CaptureClock(),
                                            "book_source": BookSource(mongo=io_manager.mongo)})
            assert result.success
            cells += (last - first + 1) * len(symbols)
        seconds = time.perf_counter() - started
        stored = len(instance.get_materialized_partitions(order_book_features.key))
    return {"cells": cells, "runs": -(-minutes // per_run), "seconds": seconds, "materialized": stored}


@contextlib.contextmanager
def product_instance():
    """A fresh instance configured by the project's dagster.yaml, as `acts-pipeline dev` makes it."""
    from dagster import DagsterInstance

    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
        os.environ["DAGSTER_HOME"] = home  # the event log storage keeps its files under it
        with DagsterInstance.from_config(home) as instance:
            yield instance


def run_child(uri, database, symbols, hours, runs, cells_limit=0) -> dict:
    from acts_pipeline.platform.event_log import EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_VARIABLE

    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "ACTS_PARTITION_WINDOW_DAYS")}
    env[EVENT_BATCH_SIZE_VARIABLE] = EVENT_BATCH_SIZE
    env["ACTS_PARTITION_WINDOW_HOURS"] = "48"  # yesterday is inside: the window widened for a backfill
    args = json.dumps({"uri": uri, "database": database, "symbols": symbols, "hours": hours, "runs": runs,
                       "cells_limit": cells_limit})
    out = subprocess.run([sys.executable, __file__, "--child", args], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--baseline-cells", type=int, default=40)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(backfill(spec["uri"], spec["database"], spec["symbols"], spec["hours"], spec["runs"],
                                  spec["cells_limit"])))
        return

    from acts_pipeline.platform.processes import mongo_uri_of, start_embedded_mongo

    symbols = [f"SYM{i:03d}USDT" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory() as tmp:
        server = start_embedded_mongo(Path(tmp) / "data", log_path=Path(tmp) / "secantusd.log")
        try:
            uri = mongo_uri_of(server)
            t0 = time.perf_counter()
            seeded = seed_snapshots(uri, "bench", symbols, args.hours)
            print(f"seeded {seeded:,} snapshots ({args.hours:g} h x {args.symbols} symbols) in {time.perf_counter() - t0:.1f} s")
            batched = run_child(uri, "bench", symbols, args.hours, args.runs)
            baseline = run_child(uri, "bench", symbols, args.hours, 1, cells_limit=args.baseline_cells)
        finally:
            server.stop()

    print(f"\nmachine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}")
    print(f"{'configuration':<48} {'cells':>8} {'runs':>5} {'seconds':>8} {'cells/s':>8}")
    for name, r in [("range runs (BackfillPolicy.single_run)", batched),
                    ("one run per cell (baseline, on a sample)", baseline)]:
        print(f"{name:<48} {r['cells']:>8,} {r['runs']:>5} {r['seconds']:>8.1f} {r['cells'] / r['seconds']:>8.0f}")
        assert r["materialized"] == r["cells"], r
    ratio = (batched["cells"] / batched["seconds"]) / (baseline["cells"] / baseline["seconds"])
    print(f"\nrange runs / one run per cell, throughput: {ratio:.1f}x; full backfill "
          f"{batched['seconds'] / 60:.1f} min (target <= 5 min); per cell {1000 * batched['seconds'] / batched['cells']:.1f} ms")


if __name__ == "__main__":
    main()
