"""What `klines_history_catch_up_sensor` costs the platform: one tick, on the real embedded server.

The sensor ticks every 5 minutes. Most ticks read nothing (the live window has not moved); once an
hour, after the reload moves the window, a tick reads the klines of the hour that left it; after
an outage, the minutes missed. This script seeds the real embedded server (its own process, a
fresh folder) with `--hours` (3) of klines of `--symbols` (500) symbols up to now, registers the
symbols in an ephemeral Dagster instance, and times ticks of the code location's sensor (in
process, with the code location's resources, the live window of 1 hour):

- a tick whose window has not moved (11 of every 12);
- a tick after the window moved by an hour, every kline stored (once an hour);
- the same with a 40-minute gap in that hour (the tick requests a `klines_history` run);
- a tick after a 4-hour outage (the minutes missed: 2 hours seeded, 2 absent).

Each: the server's CPU (its process, `/proc`), this process's CPU and the wall, median of
`--repeat` (5). Then the steady-state cost per minute: (11 idle ticks + 1 moved) / 60, against
what the platform spends a minute at 500 symbols (README, Performance: 14.7 core-s).

    .venv/bin/python benchmarks/klines_history_catch_up.py [--symbols 500 --hours 3 --repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from _platform import log, print_grid, print_run_header  # noqa: E402
from _platform import process_cpu_seconds as cpu_seconds  # noqa: E402

from acts_pipeline.core.cells import floor_minute  # noqa: E402
from acts_pipeline.platform.processes import mongo_uri_of, start_embedded_mongo  # noqa: E402
from acts_pipeline.storage.client import MongoStore  # noqa: E402
from acts_pipeline.storage.collections import KLINES_1M  # noqa: E402

MINUTE = timedelta(minutes=1)
#: What the whole platform spends a minute at 500 symbols (README, Performance; 89645f6).
PLATFORM_CORE_S_PER_MINUTE = 14.71


def kline(symbol: str, minute: datetime, i: int) -> dict:
    price = 100.0 + (i % 97) * 0.01
    return {"symbol": symbol, "minute": minute, "open": price, "high": price + 0.05, "low": price - 0.05,
            "close": price + 0.01, "volume": 12.5, "quote_volume": 1250.0, "trades": 42,
            "taker_buy_base_volume": 6.0, "taker_buy_quote_volume": 600.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--hours", type=int, default=3, help="hours of klines seeded, up to now")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print_run_header("klines_history_catch_up.py", sys.argv[1:])
    symbols = [f"S{i:04d}USDT" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory(prefix="acts-khc-") as folder:
        server = start_embedded_mongo(Path(folder) / "mongo", log_path=Path(folder) / "mongo.log")
        try:
            os.environ.update({"ACTS_MONGO_URI": mongo_uri_of(server), "ACTS_MONGO_DB": "acts",
                               "ACTS_BINANCE_API_URL": "http://127.0.0.1:1/api"})
            run(args, symbols, server.process.pid)
        finally:
            server.stop()


def run(args, symbols: list[str], server_pid: int) -> None:
    from dagster import DagsterInstance, Definitions, RunRequest, build_sensor_context

    from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
    from acts_pipeline.orchestration.environment import resources_from_environment
    from acts_pipeline.orchestration.history_klines import klines_history
    from acts_pipeline.orchestration.klines_history_catch_up import klines_history_catch_up_sensor
    from acts_pipeline.orchestration.partitions import live_minute_symbol_partitions, minute_window_start, with_partitions

    from acts_pipeline.storage import MongoResource

    resources = resources_from_environment()  # the code location's, for the definitions to validate
    mongo = MongoResource(uri=os.environ["ACTS_MONGO_URI"], database="acts")  # what the sensor is given
    store: MongoStore = mongo.get_store()
    now = floor_minute(datetime.now(UTC))
    live = live_minute_symbol_partitions(1, datetime.now(UTC))
    window_start = minute_window_start(live)
    since = now - timedelta(hours=args.hours)
    gap = {window_start - timedelta(minutes=50) + i * MINUTE for i in range(40)}
    store.record_tracked(symbols, since)
    began = time.perf_counter()
    minute, i = since, 0
    while minute < now:
        store.collection(KLINES_1M).insert_many([kline(s, minute, i) for s in symbols])
        minute, i = minute + MINUTE, i + 1
    log(f"seeded {i} minutes x {len(symbols)} symbols of klines in {time.perf_counter() - began:.0f} s")
    defs = Definitions(
        assets=[*(with_partitions(a, live) for a in (order_book_snapshot, order_book_features, klines_1m)), klines_history],
        sensors=[klines_history_catch_up_sensor], resources=resources)

    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", symbols)

        def tick(cursor: dict) -> tuple[float, float, float, str]:
            with build_sensor_context(instance=instance, definitions=defs, cursor=json.dumps(cursor),
                                      resources={"mongo": mongo}) as context:
                server, own, wall = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
                result = klines_history_catch_up_sensor(context)
                figures = (cpu_seconds(server_pid) - server, time.process_time() - own, time.perf_counter() - wall)
            return (*figures, "run requested" if isinstance(result, RunRequest) else "skipped")

        def case(label: str, cursor: dict) -> list:
            ticks = [tick(cursor) for _ in range(args.repeat)]
            medians = [statistics.median(t[k] for t in ticks) for k in range(3)]
            log(f"{label}: server {medians[0]:.3f} s, own {medians[1]:.3f} s, wall {medians[2]:.3f} s ({ticks[0][3]})")
            return [label, *(f"{m:.3f}" for m in medians), ticks[0][3]]

        seen = window_start.isoformat()
        rows = [case("window not moved (11 ticks of 12)", {"window_start": seen})]
        rows.append(case("window moved by 1 h, all stored (1 tick an hour)",
                         {"window_start": (window_start - timedelta(hours=1)).isoformat()}))
        idle, moved = (float(r[1]) + float(r[2]) for r in rows)
        store.collection(KLINES_1M).delete_many({"minute": {"$in": sorted(gap)}})
        rows.append(case("window moved by 1 h, a 40-minute gap", {"window_start": (window_start - timedelta(hours=1)).isoformat()}))
        rows.append(case(f"after a 4-hour outage ({args.hours - 1} h seeded before the window)",
                         {"window_start": (window_start - timedelta(hours=4)).isoformat()}))
    print_grid(["tick", "server CPU (s)", "own CPU (s)", "wall (s)", "result"], rows)
    per_minute = (11 * idle + moved) / 60
    print(f"steady state, ticks every 5 minutes: (11 x {idle:.3f} + {moved:.3f}) / 60 = {per_minute:.4f} core-s a "
          f"minute (server and sensor; the daemon's and code server's per-tick overhead not included), "
          f"{100 * per_minute / PLATFORM_CORE_S_PER_MINUTE:.2f} % of the platform's {PLATFORM_CORE_S_PER_MINUTE} at 500 "
          "symbols")


if __name__ == "__main__":
    main()
