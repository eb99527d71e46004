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
     polled every 20 ms (by the indexed minute: which symbols have a decision stored) from the
     close until all N books of that close are there (the time half of them, 99 % of them and all
     of them were there; `_platform.watch_close`); and, from the
     stored `decided_at`, when the recorder had decided them (the collection holds one document per
     connection and close, `acts_pipeline/storage/boundary_books.py`: read as flat books, each
     symbol's latest decision);
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
    SimulatorWatcher,
    boundary_books_of,
    equals_true_book,
    http_json,
    log,
    machine_line,
    percentile,
    print_grid,
    print_run_header,
    read_hwm,
    read_stat,
    recorder_counters,
    symbols_for,
    wait_for_sync,
    watch_close,
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
    # the simulator's used weight, read every 0.5 s by hand: the largest value of each wall minute
    weights = SimulatorWatcher(f"http://127.0.0.1:{simulator.port}")
    rows: list[list] = []
    recorder = None
    try:
        started = time.monotonic()
        start_wall = datetime.now(UTC)
        recorder = start_recorder(env, log_path=tmp / "recorder.log")
        health_url = f"http://127.0.0.1:{recorder.port}/health"
        log(f"recorder up on {health_url}; {args.symbols} symbols registered")
        synced = wait_for_sync(health_url, args.symbols, args.cold_start_limit * 60 - (time.monotonic() - started),
                               on_poll=weights.read)
        in_sync_at = None if synced is None else synced - started
        cold_weight = weights.max_between(start_wall, datetime.now(UTC))
        log(f"in sync after {in_sync_at} s" if in_sync_at else "NOT all in sync within the limit")
        cold_health = http_json(health_url)
        snapshots_cold = recorder_counters(cold_health)[1]

        # steady state: M closes, each watched in the database from the outside
        db = pymongo.MongoClient(mongo_uri_of(mongo), tz_aware=True)[env.get("ACTS_MONGO_DB", "acts")]
        first_close = (datetime.now(UTC) + timedelta(seconds=5)).replace(second=0, microsecond=0) + timedelta(minutes=1)
        closes = [first_close + timedelta(minutes=i) for i in range(args.minutes)]
        while datetime.now(UTC) < first_close - timedelta(seconds=2):
            weights.read()
            time.sleep(0.5)
        cpu0, sim0, t0 = tree_cpu(recorder.process.pid), tree_cpu(simulator.process.pid), time.monotonic()
        messages0, snapshots0 = recorder_counters(http_json(health_url))
        arrival: dict[datetime, tuple[float, float, float]] = {}
        for close in closes:
            while datetime.now(UTC) < close:
                time.sleep(0.005)
            seen = watch_close(db, close, args.symbols)
            seen50, seen99, seen100 = (seen[math.ceil(args.symbols * f) - 1] if len(seen) >= args.symbols * f
                                       else math.nan for f in (0.5, 0.99, 1.0))
            arrival[close] = (seen50, seen99, seen100)
            log(f"close {close:%H:%M}: half in MongoDB {seen50:.3f} s after it, 99 % {seen99:.3f} s, all {seen100:.3f} s")
            while datetime.now(UTC) < close + timedelta(seconds=50):
                weights.read()
                time.sleep(0.5)
        elapsed_min = (time.monotonic() - t0) / 60
        cpu = (tree_cpu(recorder.process.pid) - cpu0) / elapsed_min
        sim_cpu = (tree_cpu(simulator.process.pid) - sim0) / elapsed_min
        end_health = http_json(health_url)
        messages1, snapshots1 = recorder_counters(end_health)
        messages = (messages1 - messages0) / (elapsed_min * 60)
        resnapshots = (snapshots1 - snapshots0) / elapsed_min
        steady_weights = [weights.max_weight.get(c, 0) for c in closes[1:]]

        # the truth
        documents, decisions = boundary_books_of(db, {"minute": {"$in": [c - timedelta(minutes=1) for c in closes]}})
        books = [d for d in documents if boundary_book_usable(d)]
        decided = [(d["decided_at"] - d["close"]).total_seconds() for d in decisions if not d.get("revised")]
        equal = 0
        stale = []
        wrong = []
        truth_url = f"http://127.0.0.1:{simulator.port}/_simulator/true_book"
        for d in books:
            same = equals_true_book(truth_url, d["symbol"], d["close"], d["depth_limit"],
                                    levels_from_binary(d["bids"]).tolist(), levels_from_binary(d["asks"]).tolist(),
                                    d["last_update_id"])
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
            ["  REST weight per minute during it, max (limit 6000)", cold_weight],
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
