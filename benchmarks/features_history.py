"""`features_history`: one UTC day's features recomputed from its stored snapshots, through Dagster,
against the live per-minute path on the same books.

    python benchmarks/features_history.py [--symbols 500] [--minutes 60,120] [--baseline-minutes 10]

What it does, all on this machine:
1. for each size in `--minutes`, starts a fresh embedded MongoDB-compatible server (its own
   process) and stores minutes x symbols snapshots of yesterday (UTC) with
   `features_backfill.seed_snapshots` (the real captured books, 100 levels a side, rescaled per
   symbol);
2. in a child process, materializes `features_history` for that day in process
   (`dagster.materialize`, the in-process executor) on a real instance configured by the
   project's `dagster.yaml` (`features_backfill.product_instance`), with the code location's
   resources (`resources_from_environment`, `ACTS_MONGO_URI`, `ACTS_MONGO_DB` and
   `ACTS_ARCHIVE_DIR` set); twice: the first run inserts the features, the second (a re-run)
   replaces them. The asset's own functions are wrapped in that process (not changed) to time
   where the run goes: reading the snapshots (`stream_documents`: the server's queries and the
   decoding), the features (`SnapshotHandler.from_documents`, `compute_features`) and the write
   (`DataFrameHandler.to_documents`, the store's write); the run's own CPU and the embedded
   server's (from `/proc`) are read around each, so the table says what the server spends and
   what our code does;
3. then archives the day's snapshots (`Archive.archive_day`, as `daily_archive` does once a day
   closes; `--no-archive` skips this), drops the features and materializes `features_history`
   twice again: the day's archive is current (MongoDB has not written it since), so the run
   reads the Parquet file instead of MongoDB's documents; the features must equal those of the
   first pass;
4. as the baseline, on the first size only, the same books' first `--baseline-minutes` minutes
   through the live per-minute path: `order_book_features` over minute x symbol range runs
   (`features_backfill.run_child`, the way a backfill was done before `features_history`), after
   deleting those minutes' features, and checks that both wrote the same documents.

Why not a whole day: the embedded server stores and serves a 200-level snapshot document in about
a millisecond of its CPU each way (see `archive_day.py`), so seeding 720,000 of them would take
longer than the measurement. The figures are scaled to a day (x 1440 / minutes); two sizes show
that the time grows linearly with the snapshots (a minute is read at a time, computed and written
in batches of 2,048 books; nothing grows with the day). Run one at a time on a quiet machine: the
embedded server, the run and the baseline share its cores, and the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._platform import load_average, print_grid, print_run_header  # noqa: E402
from benchmarks._platform import process_cpu_seconds as server_cpu  # noqa: E402
from benchmarks.features_backfill import START, product_instance, run_child, seed_snapshots  # noqa: E402

DAY = f"{START:%Y-%m-%d}"
#: The target's day: 1440 minutes x 500 symbols.
DAY_SNAPSHOTS = 1440 * 500
#: On a thread of its own since the writes overlap the reads and the computing: its wall is not
#: the run's, and the run CPU and server CPU of overlapping phases are those of the same seconds.
WRITE_PHASE = "write features (server; own thread, overlapping)"


class Phases:
    """Wall seconds, seconds of the embedded server's CPU, calls, the longest call and this
    process's CPU seconds, per phase of the asset's work."""

    def __init__(self, pid: int):
        self.pid = pid
        self.figures: dict[str, list[float]] = {}
        self.local = threading.local()  # the writes run on their own thread, beside the reads

    def reset(self) -> None:
        self.figures = {}

    def timed(self, name: str, call, *args, **kwargs):
        if getattr(self.local, "depth", 0):  # a phase inside another (the store's insert then upsert) counts once
            return call(*args, **kwargs)
        self.local.depth = 1
        began, cpu, own = time.perf_counter(), server_cpu(self.pid), time.process_time()
        try:
            return call(*args, **kwargs)
        finally:
            self.local.depth = 0
            figure = self.figures.setdefault(name, [0.0, 0.0, 0, 0.0, 0.0])
            wall = time.perf_counter() - began
            figure[0] += wall
            figure[1] += server_cpu(self.pid) - cpu
            figure[2] += 1
            figure[3] = max(figure[3], wall)
            figure[4] += time.process_time() - own

    def wrap(self, owner, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def wrapped(*args, **kwargs):
            return self.timed(name, original, *args, **kwargs)

        setattr(owner, attribute, wrapped)

    def wrap_generator(self, owner, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def wrapped(*args, **kwargs):
            iterator = original(*args, **kwargs)
            while True:
                batch = self.timed(name, next, iterator, None)
                if batch is None:
                    return
                yield batch

        setattr(owner, attribute, wrapped)


def materialize_days(spec: dict) -> dict:
    """Runs in a child process: `features_history` of DAY materialized `spec["runs"]` times, each
    with its wall and CPU seconds, the server's CPU, the phases and the materialization's metadata."""
    import warnings

    warnings.filterwarnings("ignore")
    from dagster import materialize

    from acts_pipeline.orchestration import history_features
    from acts_pipeline.orchestration.environment import resources_from_environment
    from acts_pipeline.storage.client import MongoStore
    from acts_pipeline.storage.handlers import DataFrameHandler, SnapshotHandler

    phases = Phases(spec["server_pid"])
    phases.wrap_generator(history_features, "stream_documents", "read snapshots (server queries + decoding)")
    phases.wrap_generator(history_features, "archived_snapshots", "read snapshots (archive file + conversion)")
    phases.wrap(SnapshotHandler, "from_documents", "documents -> books (SnapshotHandler)")
    phases.wrap(history_features, "compute_features", "compute_features")
    phases.wrap(DataFrameHandler, "to_documents", "features -> documents (DataFrameHandler)")
    phases.wrap(MongoStore, "upsert", WRITE_PHASE)
    phases.wrap(MongoStore, "insert_or_replace", WRITE_PHASE)
    resources = resources_from_environment()
    results = []
    with product_instance() as instance:
        for _ in range(spec["runs"]):
            phases.reset()
            began, cpu, server = time.perf_counter(), time.process_time(), server_cpu(spec["server_pid"])
            result = materialize([history_features.features_history], instance=instance, partition_key=DAY,
                                 resources=resources)
            wall = time.perf_counter() - began
            assert result.success, "features_history failed"
            (event,) = result.get_asset_materialization_events()
            metadata = {k: v.value for k, v in event.materialization.metadata.items()}
            results.append({"wall": wall, "cpu": time.process_time() - cpu,
                            "server_cpu": server_cpu(spec["server_pid"]) - server,
                            "phases": phases.figures, "metadata": metadata})
    return {"runs": results}


def run_history_child(uri: str, database: str, archive_dir: str, server_pid: int, runs: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTS_") and k != "DAGSTER_HOME"}
    env.update({"ACTS_MONGO_URI": uri, "ACTS_MONGO_DB": database, "ACTS_ARCHIVE_DIR": archive_dir})
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps({"server_pid": server_pid, "runs": runs})],
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        print(out.stderr[-6000:], file=sys.stderr)
        errors = [line for line in out.stderr.splitlines() if "Error:" in line]
        raise MeasureFailed(errors[-1] if errors else out.stderr[-300:])
    return json.loads(out.stdout.strip().splitlines()[-1])


class MeasureFailed(RuntimeError):
    """The materialization failed; the message is its last error line."""


def features_of(store, first, end) -> dict:
    return {(d["symbol"], d["minute"]): d for d in
            store.collection("order_book_features").find({"minute": {"$gte": first, "$lt": end}}, {"_id": False})}


def measure_size(symbols: list[str], minutes: int, baseline_minutes: int, baseline_runs: int,
                 with_archive: bool) -> dict:
    from acts_pipeline.platform.processes import mongo_uri_of, start_embedded_mongo
    from acts_pipeline.storage.archive import Archive
    from acts_pipeline.storage.client import MongoStore
    from acts_pipeline.storage.collections import ORDER_BOOK_SNAPSHOTS

    with tempfile.TemporaryDirectory(prefix="acts-features-history-") as tmp:
        server = start_embedded_mongo(Path(tmp) / "data", log_path=Path(tmp) / "secantusd.log")
        try:
            uri, pid = mongo_uri_of(server), server.process.pid
            began = time.perf_counter()
            seeded = seed_snapshots(uri, "bench", symbols, minutes / 60)
            seed_s = time.perf_counter() - began
            print(f"[{minutes} min] seeded {seeded:,} snapshots in {seed_s:.0f} s; load {load_average()}",
                  file=sys.stderr, flush=True)
            history = run_history_child(uri, "bench", str(Path(tmp) / "archive"), pid, runs=2)
            store = MongoStore.connect(uri, "bench", timeout_ms=60_000)
            stored = store.collection("order_book_features").count_documents({})
            archived = None
            if with_archive:
                # The day archived (as `daily_archive` does after it closes) and not written since:
                # features_history reads the day's Parquet file instead of MongoDB's documents.
                day_end = START + timedelta(days=1)
                from_mongo = features_of(store, START, day_end)
                began = time.perf_counter()
                Archive(str(Path(tmp) / "archive")).archive_day(store, START.date(), collections=[ORDER_BOOK_SNAPSHOTS])
                archive_s = time.perf_counter() - began
                store.collection("order_book_features").drop()
                print(f"[{minutes} min] archived the day in {archive_s:.0f} s; features_history from the archive ...",
                      file=sys.stderr, flush=True)
                runs = run_history_child(uri, "bench", str(Path(tmp) / "archive"), pid, runs=2)["runs"]
                archived = {"runs": runs, "archive_s": archive_s,
                            "equal": features_of(store, START, day_end) == from_mongo, "compared": len(from_mongo)}
            baseline = None
            if baseline_minutes:
                end = START + timedelta(minutes=baseline_minutes)
                expected = features_of(store, START, end)
                store.collection("order_book_features").delete_many({"minute": {"$gte": START, "$lt": end}})
                print(f"[{minutes} min] features_history done; baseline ...", file=sys.stderr, flush=True)
                baseline = run_child(uri, "bench", symbols, baseline_minutes / 60, baseline_runs)
                baseline["equal"] = features_of(store, START, end) == expected
                baseline["compared"] = len(expected)
        finally:
            server.stop()
    return {"minutes": minutes, "seeded": seeded, "seed_s": seed_s, "stored": stored, "history": history["runs"],
            "baseline": baseline, "archived": archived}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--minutes", default="60,120", help="sizes measured, minutes of the day (comma-separated)")
    parser.add_argument("--baseline-minutes", type=int, default=10,
                        help="minutes of the first size through the live order_book_features path (0: none)")
    parser.add_argument("--baseline-runs", type=int, default=2, help="range runs the baseline's minutes are split into")
    parser.add_argument("--no-archive", action="store_true",
                        help="skip the second pass: the day archived, then read from its Parquet file")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(materialize_days(json.loads(args.child))))
        return

    print_run_header("features_history.py", sys.argv[1:])
    sizes = [int(m) for m in args.minutes.split(",")]
    symbols = [f"SYM{i:03d}USDT" for i in range(args.symbols)]
    results = []
    failure = None
    for i, minutes in enumerate(sizes):
        try:
            results.append(measure_size(symbols, minutes, args.baseline_minutes if i == 0 else 0, args.baseline_runs,
                                        not args.no_archive))
        except MeasureFailed as exc:
            failure = f"{minutes} minutes: {exc}"
            break
    print(f"load average at the end {load_average()}")
    if results:
        report(results, args)
    if failure:
        raise SystemExit(f"\nFAILED at {failure}")


def report(results: list[dict], args: argparse.Namespace) -> None:
    print(f"\nfeatures_history of {DAY}: {args.symbols} symbols x M minutes of snapshots (100 levels a side), "
          "materialized in process through Dagster, the product's resources\n")
    rows = []
    for r in results:
        passes = [("MongoDB", r["history"], "snapshots_from_mongodb")]
        if r.get("archived"):
            passes.append(("archive", r["archived"]["runs"], "snapshots_from_archive"))
        for source, runs, read_key in passes:
            for label, run in zip(("first run (inserts)", "re-run (replaces)"), runs):
                n = run["metadata"]["snapshots"]
                assert n == r["seeded"] == r["minutes"] * args.symbols == run["metadata"][read_key], (n, r["seeded"])
                per = run["wall"] / n
                rows.append([r["minutes"], source, label, f"{n:,}", f"{r['seed_s']:.0f}", f"{run['wall']:.1f}",
                             f"{n / run['wall']:,.0f}", f"{1000 * per:.2f}", f"{run['cpu']:.1f}",
                             f"{run['server_cpu']:.1f}", f"{per * DAY_SNAPSHOTS / 60:.1f}"])
        assert r["stored"] == r["seeded"], (r["stored"], r["seeded"])
    print_grid(["minutes", "snapshots read from", "run", "snapshots", "seed s", "wall s", "snapshots/s",
                "ms/snapshot", "run CPU s", "server CPU s", "a day, 1440 x 500 (min)"], rows)
    for r in results:
        archived = r.get("archived")
        if archived:
            mongo_first, archive_first = r["history"][0]["wall"], archived["runs"][0]["wall"]
            print(f"\n[{r['minutes']} min] from the archive (the day archived in {archived['archive_s']:.0f} s, not "
                  f"counted): first run {mongo_first / archive_first:.1f}x faster than from MongoDB; re-run "
                  f"{r['history'][1]['wall'] / archived['runs'][1]['wall']:.1f}x; the {archived['compared']:,} "
                  f"features equal those from MongoDB's snapshots: {'yes' if archived['equal'] else 'NO'}")
            assert archived["equal"], "features from the archive differ from those from MongoDB"

    print("\nwhere a run goes (seconds; run CPU: the run's process, server CPU: the embedded server's, in the same "
          "calls; the writes run on their own thread beside the reading and computing, so the phases overlap)\n")
    rows = []
    for r in results:
        runs = list(zip(("first", "re-run"), r["history"]))
        if r.get("archived"):
            runs += zip(("archive, first", "archive, re-run"), r["archived"]["runs"])
        for label, run in runs:
            # The writes overlap the rest (their own thread): what is left of the run's wall is
            # what the run's own thread did outside its phases, waiting for a write included.
            own_thread = {k: f for k, f in run["phases"].items() if k != WRITE_PHASE}
            accounted = sum(f[0] for f in own_thread.values())
            own = sum(f[4] for f in own_thread.values())
            for name, (wall, server, calls, longest, cpu) in run["phases"].items():
                rows.append([r["minutes"], label, name, calls, f"{wall:.1f}", f"{longest:.2f}", f"{cpu:.1f}",
                             f"{server:.1f}", f"{100 * wall / run['wall']:.0f} %"])
            rows.append([r["minutes"], label, "Dagster, the loop, waiting for a write, the rest", "",
                         f"{run['wall'] - accounted:.1f}", "", f"{run['cpu'] - own:.1f}", "", f"{100 * (run['wall'] - accounted) / run['wall']:.0f} %"])
    print_grid(["minutes", "run", "phase", "calls", "wall s", "longest call s", "run CPU s", "server CPU s",
                "of the run"], rows)

    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"\nlinearity: {b['minutes']} / {a['minutes']} minutes = {b['minutes'] / a['minutes']:.2f} x the snapshots; "
              f"wall {b['history'][0]['wall'] / a['history'][0]['wall']:.2f} x (first runs), "
              f"{b['history'][1]['wall'] / a['history'][1]['wall']:.2f} x (re-runs); server CPU "
              f"{b['history'][0]['server_cpu'] / a['history'][0]['server_cpu']:.2f} x (first runs)")

    base = results[0]["baseline"]
    if base:
        first = results[0]["history"][0]
        history_rate = first["metadata"]["snapshots"] / first["wall"]
        rate = base["cells"] / base["seconds"]
        print(f"\nbaseline: the first {args.baseline_minutes} minutes x {args.symbols} symbols through the live "
              f"order_book_features (minute x symbol range runs)\n")
        print_grid(["path", "snapshots", "runs", "wall s", "snapshots/s", "a day, 1440 x 500 (min)"], [
            ["features_history (day partition), first run", f"{first['metadata']['snapshots']:,}", 1,
             f"{first['wall']:.1f}", f"{history_rate:,.0f}", f"{DAY_SNAPSHOTS / history_rate / 60:.1f}"],
            ["order_book_features range runs (baseline)", f"{base['cells']:,}", base["runs"], f"{base['seconds']:.1f}",
             f"{rate:,.0f}", f"{DAY_SNAPSHOTS / rate / 60:.1f}"],
        ])
        assert base["materialized"] == base["cells"], base
        print(f"\nfeatures_history / live path, throughput: {history_rate / rate:.1f}x; the live path's "
              f"{base['compared']:,} feature documents equal features_history's: {'yes' if base['equal'] else 'NO'}")
        assert base["equal"], "the live path and features_history wrote different features"


if __name__ == "__main__":
    main()
