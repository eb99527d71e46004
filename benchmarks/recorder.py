"""Benchmark: the stream recorder alone at N symbols, checked against the simulator's truth.

    python benchmarks/recorder.py --symbols N [--minutes M] [--snapshot-depth D]

What it does:

1. Starts the simulator and the embedded database as their own processes, a temporary Dagster
   instance with N TRADING symbols registered (USDT-quoted first, as `minute_collection.py`),
   and `acts-pipeline record` as a process on them, exactly as `acts-pipeline dev` starts it.
2. Cold start: from the recorder's start until its health endpoint reports every symbol in sync;
   the simulator's REST weight per wall minute meanwhile (its own `/_simulator/stats` ledger, as
   Binance counts it) and any 429 or 418 it answered.
3. Steady state, M closes after every symbol is in sync:
   - when each close's boundary books were in MongoDB, measured from outside: the database is
     polled every 20 ms (an indexed count) from the close until all N documents of that close
     are there (the time half of them, 99 % of them and all of them were there); and, from the
     stored `decided_at`, when the recorder had decided them;
   - the recorder's CPU (core-seconds per minute, `/proc`, its threads included) and peak RSS;
     the simulator's apart; messages a second (the connections' counters);
   - REST weight per minute (re-snapshots only, once in sync) and re-snapshots per minute;
   - staleness: close minus `event_time` of each stored book (p50/p99).
4. Truth: every stored book of the counted closes is compared, level for level, with the
   simulator's true book at that close (`GET /_simulator/true_book`); documents without a book are
   counted with their reasons.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _platform import (  # noqa: E402
    CLK_TCK,
    http_json,
    log,
    machine_line,
    percentile,
    print_grid,
    print_run_header,
    read_hwm,
    read_stat,
    symbols_for,
)

from acts_pipeline.storage.collections import boundary_book_usable  # noqa: E402
from acts_pipeline.storage.handlers import levels_from_binary  # noqa: E402
from acts_pipeline.platform.processes import (  # noqa: E402
    mongo_uri_of,
    simulator_api_url,
    simulator_ws_url,
    start_embedded_mongo,
    start_recorder,
    start_simulator,
)


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and the children it reaped."""
    s = read_stat(pid)
    return (s.own_ticks + s.reaped_ticks) / CLK_TCK if s else math.nan


class Weights:
    """The simulator's used weight, read every 0.5 s: the largest value of each wall minute."""

    def __init__(self, stats_url: str):
        self.url = stats_url
        self.by_minute: dict[datetime, int] = {}
        self.statuses: dict[str, int] = {}

    def read(self) -> dict:
        stats = http_json(self.url)
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        self.by_minute[minute] = max(self.by_minute.get(minute, 0), stats.get("used_weight", 0))
        self.statuses = stats.get("responses", stats.get("statuses", {}))
        return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, required=True)
    parser.add_argument("--minutes", type=int, default=5, help="closes counted in steady state (default 5)")
    parser.add_argument("--snapshot-depth", type=int, default=None, help="ACTS_RECORDER_SNAPSHOT_DEPTH (default: its default)")
    parser.add_argument("--cold-start-limit", type=float, default=30, help="minutes allowed to get in sync")
    args = parser.parse_args(argv)
    print_run_header("recorder.py", argv if argv is not None else sys.argv[1:])
    import pymongo
    from dagster import DagsterInstance

    symbols = symbols_for(args.symbols)
    tmp = Path(tempfile.mkdtemp(prefix=f"acts-bench-recorder-{args.symbols}-"))
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("symbols", symbols)
    simulator = start_simulator(log_path=tmp / "simulator.log")
    mongo = start_embedded_mongo(tmp / "mongo", log_path=tmp / "mongo.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACTS_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), ACTS_MONGO_URI=mongo_uri_of(mongo),
               ACTS_BINANCE_API_URL=simulator_api_url(simulator), ACTS_BINANCE_WS_URL=simulator_ws_url(simulator),
               ACTS_SPOOL_DIR=str(tmp / "spool"))
    if args.snapshot_depth:
        env["ACTS_RECORDER_SNAPSHOT_DEPTH"] = str(args.snapshot_depth)
    weights = Weights(f"http://127.0.0.1:{simulator.port}/_simulator/stats")
    rows: list[list] = []
    recorder = None
    try:
        started = time.monotonic()
        start_wall = datetime.now(UTC)
        recorder = start_recorder(env, log_path=tmp / "recorder.log")
        health_url = f"http://127.0.0.1:{recorder.port}/health"
        log(f"recorder up on {health_url}; {args.symbols} symbols registered")
        in_sync_at = None
        while time.monotonic() - started < args.cold_start_limit * 60:
            weights.read()
            health = http_json(f"{health_url}?symbols=0")
            if health["symbols_in_sync"] == args.symbols:
                in_sync_at = time.monotonic() - started
                break
            time.sleep(0.5)
        cold_minutes = {m: w for m, w in weights.by_minute.items() if m >= start_wall.replace(second=0, microsecond=0)}
        log(f"in sync after {in_sync_at} s" if in_sync_at else "NOT all in sync within the limit")
        cold_health = http_json(health_url)
        snapshots_cold = sum(s["snapshots"] for s in cold_health["symbols"].values())

        # steady state: M closes, each watched in the database from the outside
        db = pymongo.MongoClient(mongo_uri_of(mongo), tz_aware=True)[env.get("ACTS_MONGO_DB", "acts")]
        first_close = (datetime.now(UTC) + timedelta(seconds=5)).replace(second=0, microsecond=0) + timedelta(minutes=1)
        closes = [first_close + timedelta(minutes=i) for i in range(args.minutes)]
        while datetime.now(UTC) < first_close - timedelta(seconds=2):
            weights.read()
            time.sleep(0.5)
        cpu0, sim0, t0 = tree_cpu(recorder.process.pid), tree_cpu(simulator.process.pid), time.monotonic()
        messages0 = sum(c["messages"] for c in http_json(f"{health_url}?symbols=0")["connections"])
        snapshots0 = sum(s["snapshots"] for s in http_json(health_url)["symbols"].values())
        arrival: dict[datetime, tuple[float, float, float]] = {}
        for close in closes:
            while datetime.now(UTC) < close:
                time.sleep(0.005)
            seen50 = seen99 = seen100 = math.nan
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                # by `minute` (indexed; `close` is not): an unindexed count would scan the
                # collection on every poll and slow the very writes it times
                n = db.boundary_books.count_documents({"minute": close - timedelta(minutes=1)})
                after = (datetime.now(UTC) - close).total_seconds()
                if n >= args.symbols * 0.5 and math.isnan(seen50):
                    seen50 = after
                if n >= args.symbols * 0.99 and math.isnan(seen99):
                    seen99 = after
                if n >= args.symbols:
                    seen100 = after
                    break
                time.sleep(0.02)
            arrival[close] = (seen50, seen99, seen100)
            log(f"close {close:%H:%M}: half in MongoDB {seen50:.3f} s after it, 99 % {seen99:.3f} s, all {seen100:.3f} s")
            while datetime.now(UTC) < close + timedelta(seconds=50):
                weights.read()
                time.sleep(0.5)
        elapsed_min = (time.monotonic() - t0) / 60
        cpu = (tree_cpu(recorder.process.pid) - cpu0) / elapsed_min
        sim_cpu = (tree_cpu(simulator.process.pid) - sim0) / elapsed_min
        end_health = http_json(health_url)
        messages = (sum(c["messages"] for c in end_health["connections"]) - messages0) / (elapsed_min * 60)
        resnapshots = (sum(s["snapshots"] for s in end_health["symbols"].values()) - snapshots0) / elapsed_min
        steady_weights = [weights.by_minute.get(c, 0) for c in closes[1:]]

        # the truth
        documents = list(db.boundary_books.find({"close": {"$in": closes}}, {"_id": False}))
        books = [d for d in documents if boundary_book_usable(d)]
        decided = [(d["decided_at"] - d["close"]).total_seconds() for d in documents if not d.get("revised")]
        equal = 0
        stale = []
        wrong = []
        for d in books:
            close_ms = int(d["close"].timestamp() * 1000)
            truth = http_json(f"http://127.0.0.1:{simulator.port}/_simulator/true_book?symbol={d['symbol']}"
                              f"&at_ms={close_ms}&limit={d['depth_limit']}")
            same = (levels_from_binary(d["bids"]).tolist() == [[float(p), float(q)] for p, q in truth["bids"]]
                    and levels_from_binary(d["asks"]).tolist() == [[float(p), float(q)] for p, q in truth["asks"]]
                    and d["last_update_id"] == truth["lastUpdateId"])
            equal += same
            if not same:
                wrong.append(f"{d['symbol']}@{d['close']:%H:%M}")
            stale.append((d["close"] - d["event_time"]).total_seconds())
        reasons: dict[str, int] = {}
        for d in documents:
            if d not in books:
                key = (d.get("reason") or "?")[:60]
                reasons[key] = reasons.get(key, 0) + 1

        rows = [
            ["symbols", args.symbols],
            ["snapshot depth (levels a side)", env.get("ACTS_RECORDER_SNAPSHOT_DEPTH", "default")],
            ["cold start to all in sync (s)", f"{in_sync_at:.0f}" if in_sync_at else "not within the limit"],
            ["  REST weight per minute during it, max (limit 6000)", max(cold_minutes.values(), default=0)],
            ["  snapshots taken", snapshots_cold],
            ["closes counted", len(closes)],
            ["boundary books stored / expected", f"{len(documents)} / {len(closes) * args.symbols}"],
            ["  with a book the recorder vouched for", len(books)],
            ["  equal to the true book at the close", f"{equal} ({100 * equal / len(books):.2f} %)" if books else "n/a"],
            ["  without a book, by reason", "; ".join(f"{k}: {v}" for k, v in reasons.items()) or "none"],
            ["in MongoDB after the close: half, p50 over closes (s)",
             f"{statistics.median(a[0] for a in arrival.values()):.3f}"],
            ["in MongoDB after the close: 99 %, worst close (s)", f"{max(a[1] for a in arrival.values()):.3f}"],
            ["in MongoDB after the close: all, worst close (s)", f"{max(a[2] for a in arrival.values()):.3f}"],
            ["decided after the close p50 / p99 (s)", f"{percentile(decided, 50):.3f} / {percentile(decided, 99):.3f}"],
            ["recorder's own durable-after-close p50 / p99 (s)",
             f"{end_health['durable_after_close_s']['p50']} / {end_health['durable_after_close_s']['p99']}"],
            ["  recorder's writes: seconds each, p50 / max",
             f"{end_health['write_seconds']['p50']} / {end_health['write_seconds']['max']}"],
            ["  its event loop's lag p50 / p99 (s)",
             f"{end_health['event_loop_lag_s']['p50']} / {end_health['event_loop_lag_s']['p99']}"],
            ["staleness close - event_time p50 / p99 (s)", f"{percentile(stale, 50):.3f} / {percentile(stale, 99):.3f}"],
            ["REST weight per minute in steady state, max", max(steady_weights, default=0)],
            ["  re-snapshots per minute", f"{resnapshots:.2f}"],
            ["messages per second (all connections)", f"{messages:.0f}"],
            ["recorder CPU (core-s/min)", f"{cpu:.2f}"],
            ["recorder peak RSS (MB)", f"{read_hwm(recorder.process.pid) / 2**20:.0f}"],
            ["simulator CPU, apart (core-s/min)", f"{sim_cpu:.2f}"],
            ["connections / reconnects", f"{len(end_health['connections'])} / "
             f"{sum(c['reconnects'] for c in end_health['connections'])}"],
        ]
        if wrong:
            rows.append(["WRONG BOOKS", ", ".join(wrong[:20])])
    finally:
        if recorder is not None:
            recorder.stop(timeout=30)
        simulator.stop()
        mongo.stop()
    print_grid(["figure", "value"], rows)
    print(machine_line(f"end {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"))
    print(f"kept {tmp} (logs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
