"""Benchmark: the real platform collecting N symbols every minute, measured from outside.

    python benchmarks/minute_collection.py --symbols N --minutes M [--book-source stream|rest|both]
                                           [--per-symbol-runs] [--exchange simulator|standin]
                                           [--instance sqlite|postgres|both]

What it does, per design. `--book-source both` (the default) measures the stream design
(ACTS_BOOK_SOURCE=stream: `dev` starts the recorder, `acts-pipeline record`, and the snapshots
are its boundary books) and then the REST design (ACTS_BOOK_SOURCE=rest), each on a fresh
platform at the same N, and prints the two tables side by side with stream / rest ratios;
`stream` or `rest` measures one. With `--per-symbol-runs` (REST books): the product's design,
then the naive one, each on a fresh platform, side by side with naive / batched ratios.

1. A temporary project copy (workspace.yaml, dagster.yaml; the package is installed) and
   `acts-pipeline dev --simulated --port P` started in it exactly as the README says, in its own
   process group, with `ACTS_SYMBOLS` set to N TRADING symbols of the real exchangeInfo the
   simulator serves (USDT-quoted first), `ACTS_BOOK_SOURCE` set to the design's source, and no
   other `ACTS_*`/`DAGSTER_*` variable.
   The naive design (`--per-symbol-runs`) differs only in its workspace.yaml, which loads
   `benchmarks/naive_definitions.py` (the product's assets and resources, a sensor requesting one
   run per (minute, symbol) at the same 30 s lead), and in `max_concurrent_runs`, raised from 6
   to N: with 6 the remaining runs would queue past the close and the table would measure the
   cap, not the design.
2. "Fully up" is: the webserver answers, the code location is loaded, and the sensor has
   registered the N symbols (the daemon is ticking it). The first counted minute m0 is the first
   whose run is requested (30 s before its close) `--warmup` minutes (default 7) after that; M
   minutes m0..m0+M-1 are counted (default 10). Steady state: at 500 symbols the klines come in
   catch-up runs of 5-minute batches, the first one some 6 minutes after start-up; a window
   without them (the default before 2026-12-01: 3 minutes from start-up) measured half the CPU
   a long-running platform spends. Stream design: counting also waits until the recorder's
   health endpoint (`dev` prints "stream recorder health on http://127.0.0.1:P/health") reports
   every symbol in sync, at most `--sync-limit` minutes (default 20) from the start; past the
   limit the minutes are counted anyway, with a note (the books not in sync come over REST);
   and `--settle` minutes more (default 0), to keep the cold start's queued runs out.
3. Measurement window: [m0 + 25 s, m0 + M min + 25 s), i.e. exactly M minutes holding the M
   counted runs from request to end (extended, and the per-minute figures divided by its real
   length, if a counted run is still going at its end).
4. Figures:
   - lateness: `captured_at` - (minute + 60 s) over every stored snapshot of a counted minute;
   - runs per minute: runs of the instance (GraphQL `runsOrError` on the webserver) tagged with a
     counted minute, / M; queue-to-start and start-before-close from the runs' timestamps;
   - CPU core-seconds per minute per process group and peak RSS: `/proc` sampling of every
     descendant of the `acts-pipeline dev` process, corrected exactly with the parents'
     reaped-children CPU (method and error in `benchmarks/_platform.py`); groups by command line;
     checked against the kernel's own total for the whole process tree (a cpuacct cgroup the
     platform is started in, when run as root), which also counts orphans and exited processes;
   - weight per minute: the simulator's `/_simulator/stats` `used_weight` (its per-wall-minute
     ledger, which is Binance's) read every 0.5 s, the largest value of each minute; the
     minute's snapshots are sent at its close, so they count in the next wall minute: wall
     minutes m0+1..m0+M are reported;
   - cells: stored documents per collection for the counted minutes, expected = M x N;
     snapshots by their `source` field (stream, rest).
   - the recorder (stream design) is a process group of its own, counted in the platform's
     total ("platform total incl. recorder"); the simulator stays apart. Also:
     cold start, from `dev`'s start (and from "fully up") until all N in sync, and the largest
     per-minute weight on the IP meanwhile (its snapshots, and the minute runs' REST fallbacks);
     every stored stream snapshot of the counted minutes against the simulator's true book at its
     close (`/_simulator/true_book`, levels and last update id; done after the window, while the
     platform still runs, not counted); when each counted close's boundary books were in
     MongoDB, watched from outside as `recorder.py` does (a count of the close's minute every
     20 ms, then 0.5 s after 2 s: these polls are database CPU inside the window), pooled p50/p99
     over every book and the worst close for all N; when they were decided (`decided_at`);
     staleness close - `event_time` of the stream snapshots; from the recorder's health at the
     window's ends, messages a second, re-snapshots a minute and their weight.
5. SIGINT to the process group (Ctrl-C), as a user would; the exit code is reported.

`--instance postgres`: the Dagster instance on PostgreSQL, as production runs it (issue 13). A
PostgreSQL 15 server is started by this harness (`acts_devkit.postgres`: the Debian package's
server, default settings, its own temporary folder, password authentication over TCP), outside
the measured tree, and `acts-pipeline dev` runs with `DAGSTER_HOME` a new folder holding
`deploy/dagster.yaml` as its dagster.yaml (runs, event log and schedules in PostgreSQL, from
`DAGSTER_PG_URL`, set to the server's URL) instead of the project's SQLite instance; `dev` sets
`DAGSTER_EVENT_BATCH_SIZE` either way. `--instance both` measures the SQLite instance and then the
PostgreSQL one, each on a fresh platform at the same N and book source (default stream, the
product's), side by side with postgres / sqlite ratios. Added rows:
   - the PostgreSQL server's CPU and peak RSS, its own group measured apart (every process of
     the server, the connections' processes that exit included: `ProcessSampler` on the
     postmaster), and the platform's total with it;
   - the event log's writes over the window, for both instances: the events stored with a
     timestamp inside it (every run's events: in PostgreSQL's `event_logs`, in SQLite's run
     shards `history/runs/<run id>.db`), materializations apart, and their JSON bytes, per
     minute; for PostgreSQL also `pg_stat_database` (commits, connections opened, rows
     inserted and updated) and `pg_stat_wal` (WAL bytes), per minute.

`--exchange standin`: the platform as an outside tester measures it (issue 10). The exchange is
`benchmarks/standin_exchange.py` (an aiohttp server written from Binance's public docs, sharing no
code with `acts_simulator`), and it and the database (SecantusDB, `start_embedded_mongo`) are
started by this harness as separate processes, outside the measured tree; `acts-pipeline dev` is
started WITHOUT `--simulated`, with `ACTS_BINANCE_API_URL` and `ACTS_MONGO_URI` pointing at them,
so the tree (and the cgroup) holds only the CLI and Dagster. Everything else is measured as
above (same window, same figures); the weight comes from the stand-in's `/_standin/stats` ledger.
Added rows:
   - the stand-in's and the database's CPU and peak RSS, measured apart (their own `/proc`,
     first and last sample of the window: both live through it);
   - what a naive whole-tree sum reports from the same `/proc` samples: every process's own CPU
     plus the growth of every live process's reaped-children CPU (psutil's `cpu_times()` user +
     system + children_user + children_system summed over the tree), i.e. without the sampler's
     correction, which counts each exited run process twice (alive, and in its parent's reaped
     CPU); and the same plus the reaped-children growth of the processes that exited (a run
     process's own reaped helpers, then counted three times). Set against the kernel's cgroup
     total, they show how much of an outside figure double counting can make;
   - the kernel's total from the platform's start to the window's start, and to M minutes after
     the start, per minute: what a watch begun with the platform (no warm-up) would report,
     start-up (imports, code location load, symbol registration) included.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _platform import (  # noqa: E402
    GROUPS,
    PROJECT,
    RECORDER_GROUP,
    CpuCgroup,
    SIMULATOR_GROUP,
    DevPlatform,
    GroupFigures,
    ProcessSampler,
    SimulatorWatcher,
    StandinExchange,
    boundary_books_of,
    clean_env,
    equals_true_book,
    http_json,
    log,
    machine_line,
    percentile,
    naive_tree_sums,
    print_grid,
    print_run_header,
    project_copy,
    recorder_counters,
    self_cpu_seconds,
    start_dev,
    start_standin,
    symbols_for,
    wait_for_sync,
    watch_close,
)

from acts_pipeline.platform.processes import free_port, mongo_uri_of, start_embedded_mongo  # noqa: E402
from acts_pipeline.storage.collections import boundary_book_usable  # noqa: E402

RUN_LEAD = timedelta(seconds=30)      # acts_pipeline.orchestration.sensors.RUN_LEAD
WINDOW_OFFSET = timedelta(seconds=25)  # the window starts 5 s before a minute's run is requested
COLLECTIONS = ("order_book_snapshots", "order_book_features", "klines_1m")
RUNS_QUERY = """{ runsOrError { ... on Runs { results { runId status creationTime startTime endTime
                  tags { key value } } } } }"""
TOLERANCE_S = 10.0  # ACTS_CAPTURE_TOLERANCE_SECONDS default
POSTGRES_GROUP = "Postgres server"  # the instance's PostgreSQL server, measured apart
DEPLOY_INSTANCE = PROJECT / "deploy" / "dagster.yaml"
PG_STATS_QUERY = """SELECT xact_commit, sessions, tup_inserted, tup_updated, tup_deleted, blks_read, blks_hit,
                           (SELECT wal_bytes FROM pg_stat_wal), (SELECT wal_records FROM pg_stat_wal)
                    FROM pg_stat_database WHERE datname = current_database()"""
PG_STATS = ("commits", "connections", "rows inserted", "rows updated", "rows deleted", "blocks read",
            "blocks hit", "WAL bytes", "WAL records")
EVENTS_QUERY = """SELECT dagster_event_type, COUNT(*), COALESCE(SUM(LENGTH(event)), 0) FROM event_logs
                  WHERE timestamp >= {p} AND timestamp < {p} GROUP BY dagster_event_type"""
NAIVE_WORKSPACE = """# benchmark: the naive design (one run per (minute, symbol)), see benchmarks/naive_definitions.py
load_from:
  - python_file:
      relative_path: {path}
      location_name: acts_pipeline_naive
      working_directory: {cwd}
"""




@dataclass
class StreamFigures:
    """The stream design's own figures (ACTS_BOOK_SOURCE=stream)."""

    health_url: str = ""
    #: from `acts-pipeline dev`'s start (and from "fully up") until the recorder's health reported
    #: every symbol in sync; None if not within --sync-limit
    in_sync_s: float | None = None
    in_sync_after_up_s: float | None = None
    #: the exchange's largest per-minute weight from the start until all in sync (everything on
    #: the IP: the recorder's snapshots, and the minute runs' REST fallbacks and klines meanwhile)
    cold_weight_max: int = 0
    cold_snapshots: int = 0
    cold_snapshot_weight: int = 0
    #: per boundary book of the counted closes: seconds after its close when it was in MongoDB
    #: (watched from outside), pooled over the closes; and per close the time all N were there
    arrivals: list[float] = field(default_factory=list)
    all_in: dict[datetime, float] = field(default_factory=dict)
    boundary_stored: int = 0
    boundary_with_book: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    decided: list[float] = field(default_factory=list)
    #: the recorder's own `durable_after_close_s` (over its latest writes, not the window), at the window's end
    own_durable: dict = field(default_factory=dict)
    #: close - event_time of the stored stream snapshots
    staleness: list[float] = field(default_factory=list)
    truth_checked: int = 0
    truth_equal: int = 0
    truth_wrong: list[str] = field(default_factory=list)
    truth_seconds: float = 0.0
    messages_per_s: float = math.nan
    resnapshots_per_min: float = math.nan
    snapshot_weight_per_min: float = math.nan
    connections: int = 0
    reconnects: int = 0


@dataclass
class Result:
    design: str
    symbols: int
    minutes: int
    counted: list[datetime] = field(default_factory=list)
    window_s: float = 0.0
    lateness: list[float] = field(default_factory=list)
    stored: dict[str, int] = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)
    runs_in_window: int = 0
    klines_runs_in_window: int = 0
    klines_late_s: float | None = None
    groups: dict[str, GroupFigures] = field(default_factory=dict)
    weight_by_minute: dict[datetime, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    exit_code: int | None = None
    startup_s: float = 0.0
    up_at: datetime | None = None
    sampler_cost_s: float = 0.0
    samples: int = 0
    #: The kernel's CPU total of the whole process tree over the window (cgroup), if available.
    cgroup_cpu_s: float | None = None
    notes: list[str] = field(default_factory=list)
    #: "simulator" (started by `--simulated`, inside the tree) or "standin" (outside it).
    exchange: str = "simulator"
    #: standin mode: the stand-in's and the database's figures, each measured apart.
    apart: dict[str, GroupFigures] = field(default_factory=dict)
    #: standin mode: `naive_tree_sums` of the tree over the window (core-seconds).
    naive: tuple[float, float, float] | None = None
    #: standin mode: the cgroup's CPU from the platform's start to (s after start): a window
    #: opened at start-up (an outside watch started with the platform) holds start-up costs.
    cgroup_from_start: dict[float, float] = field(default_factory=dict)
    #: ACTS_BOOK_SOURCE of the platform: "rest" or "stream" (the recorder started by dev).
    book_source: str = "rest"
    #: stored snapshots of the counted minutes by their `source` field
    by_source: dict[str, int] = field(default_factory=dict)
    #: stream: the recorder, from outside and from its health endpoint (see `measure`)
    stream: StreamFigures | None = None
    #: the Dagster instance's storage: "sqlite" (dev's dagster.yaml) or "postgres" (deploy/dagster.yaml)
    instance: str = "sqlite"
    #: name the instance in the label (when instances are compared, or not the default)
    show_instance: bool = False
    #: the event log's writes in the window: event type -> (events, JSON bytes)
    events: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: postgres: growth of pg_stat_database / pg_stat_wal counters over the window
    pg_stats: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        base = "naive" if self.design == "naive" else self.book_source
        return f"{base}, {self.instance}" if self.show_instance or self.instance != "sqlite" else base

    @property
    def expected(self) -> int:
        return len(self.counted) * self.symbols

    def cpu_per_minute(self, group: str) -> float:
        g = self.groups.get(group)
        return g.cpu_seconds / (self.window_s / 60) if g else 0.0

    @property
    def platform_cpu_per_minute(self) -> float:
        return sum(self.cpu_per_minute(g) for g in self.groups if g != SIMULATOR_GROUP)

    @property
    def instance_db_cpu_per_minute(self) -> float:
        """The instance's PostgreSQL server (0 for SQLite, which runs inside the platform's processes)."""
        fig = self.apart.get(POSTGRES_GROUP)
        return fig.cpu_seconds / (self.window_s / 60) if fig and self.window_s else 0.0

    @property
    def tree_cpu_per_minute(self) -> float | None:
        """The cgroup's total (every process of the tree, simulator included) per minute."""
        return None if self.cgroup_cpu_s is None else self.cgroup_cpu_s / (self.window_s / 60)


def symbols_registered(dagster_home: Path) -> int:
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    if not (dagster_home / "dagster.yaml").exists():
        return 0
    # The instance's event log storage (acts_pipeline.platform.event_log) keeps its files under DAGSTER_HOME.
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        return len(instance.get_dynamic_partitions("symbols"))


def wait_until(moment: datetime) -> None:
    while (remaining := (moment - datetime.now(UTC)).total_seconds()) > 0:
        time.sleep(min(remaining, 1.0))


def run_tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def measure(design: str, n: int, minutes: int, sample_interval: float, keep: bool, klines_wait: float = 600,
            warmup: float = 0.0, exchange: str = "simulator", book_source: str = "rest",
            sync_limit: float = 20.0, instance: str = "sqlite", show_instance: bool = False,
            settle: float = 0.0) -> Result:
    import pymongo

    result = Result(design, n, minutes, exchange=exchange, book_source=book_source, instance=instance,
                    show_instance=show_instance)
    stream = result.stream = StreamFigures() if book_source == "stream" else None
    name = result.label
    symbols = symbols_for(n)
    tmp = Path(tempfile.mkdtemp(prefix=f"acts-bench-{name.replace(', ', '-')}-{n}-"))
    if design == "naive":
        workspace = NAIVE_WORKSPACE.format(path=PROJECT / "benchmarks" / "naive_definitions.py",
                                           cwd=PROJECT / "benchmarks")
        cwd = project_copy(tmp, workspace, {"max_concurrent_runs: 6": f"max_concurrent_runs: {max(6, n)}"})
    else:
        cwd = project_copy(tmp)
    port = free_port()
    standin: StandinExchange | None = None
    mongo = None
    postgres = None
    apart_samplers: dict[str, ProcessSampler] = {}
    home = cwd / ".acts" / "dagster_home"  # where `dev` keeps its own (SQLite) instance
    pg_env: dict[str, str] = {}
    if instance == "postgres":
        # Outside the measured tree, like the stand-in's database: the instance's server, started
        # here in a session of its own; `dev` gets a DAGSTER_HOME holding deploy/dagster.yaml.
        from acts_devkit.postgres import start_postgres

        postgres = start_postgres()
        home = tmp / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_bytes(DEPLOY_INSTANCE.read_bytes())
        pg_env = {"DAGSTER_HOME": str(home), "DAGSTER_PG_URL": postgres.url}
        os.environ["DAGSTER_PG_URL"] = postgres.url  # for this harness's own reads of the instance
        # Long-lived postmaster, short-lived connection processes (reaped by it): exact either way.
        apart_samplers[POSTGRES_GROUP] = ProcessSampler(postgres.process.pid, 2.0)
        log(f"{name}: PostgreSQL on 127.0.0.1:{postgres.port} (pid {postgres.process.pid}), DAGSTER_HOME {home}")
    if exchange == "standin":
        # Outside the measured tree: started here, each in a session of its own, before the cgroup
        # exists; the platform is pointed at them as at Binance and a user's own database.
        standin = start_standin(symbols, tmp / "standin.log")
        mongo = start_embedded_mongo(tmp / "mongo", log_path=tmp / "mongo.log")
        log(f"{name}: stand-in exchange on {standin.api_url} (pid {standin.process.pid}), "
            f"database on {mongo_uri_of(mongo)} (pid {mongo.process.pid})")
        env = clean_env(ACTS_SYMBOLS=",".join(symbols), ACTS_BINANCE_API_URL=standin.api_url,
                        ACTS_MONGO_URI=mongo_uri_of(mongo), ACTS_BOOK_SOURCE=book_source, **pg_env)
        dev_args: tuple[str, ...] = ()
        # Long-lived: the window's first and last samples are exact, so a slow period will do.
        apart_samplers.update({"stand-in exchange": ProcessSampler(standin.process.pid, 5.0),
                               "database server": ProcessSampler(mongo.process.pid, 5.0)})
    else:
        env = clean_env(ACTS_SYMBOLS=",".join(symbols), ACTS_BOOK_SOURCE=book_source, **pg_env)
        dev_args = ("--simulated",)
    log(f"{name}: starting `{' '.join(['acts-pipeline', 'dev', *dev_args, '--port', str(port)])}` in {cwd} "
        f"with {n} symbols, ACTS_BOOK_SOURCE={book_source}")
    started, started_wall = time.monotonic(), datetime.now(UTC)
    cgroup = CpuCgroup.create(f"acts-bench-{os.getpid()}-{name}")
    if cgroup is None:
        result.notes.append("no cpuacct cgroup (needs root): CPU from /proc sampling only")
    try:
        dev: DevPlatform = start_dev(cwd, env, port, *dev_args,
                                     cgroup_procs=cgroup.procs_file if cgroup else None)
    except BaseException:
        if postgres is not None:  # no platform to stop: the server must not outlive this run
            postgres.remove()
        raise
    from_start_timer = None
    if standin is not None and cgroup is not None:
        # the kernel's total at `minutes` after the start: what a watch begun at launch would see
        def read_from_start(seconds: float = minutes * 60.0) -> None:
            try:
                result.cgroup_from_start[seconds] = cgroup.cpu_seconds()
            except OSError:
                pass
        from_start_timer = threading.Timer(minutes * 60.0, read_from_start)
        from_start_timer.daemon = True
        from_start_timer.start()
    sampler = ProcessSampler(dev.process.pid, sample_interval)
    sampler.start()
    for apart_sampler in apart_samplers.values():
        apart_sampler.start()
    watcher = None
    try:
        if standin is not None:
            mongo_uri, simulator_url = mongo_uri_of(mongo), standin.api_url
        else:
            mongo_uri = dev.wait_for_line(r"embedded MongoDB on (\S+)", 90).group(1)
            simulator_url = dev.wait_for_line(r"exchange simulator on (\S+)", 90).group(1)
        # from the start: the cold start's weight is the recorder's snapshots (and the fallbacks)
        watcher = SimulatorWatcher(simulator_url) if standin is None else \
            SimulatorWatcher(simulator_url, stats_path="/_standin/stats")
        weights = watcher.max_weight
        watcher.start()
        if stream is not None:
            # dev prints it once the recorder answers: "stream recorder health on http://127.0.0.1:P/health"
            stream.health_url = dev.wait_for_line(r"stream recorder health on (\S+/health)", 120).group(1)
            log(f"{name}: recorder health on {stream.health_url}")
        db = pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000).acts
        dev.wait_for_webserver(180)
        dev.wait_for_location(180)
        deadline = time.monotonic() + 120
        while symbols_registered(home) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sensor did not register {n} symbols:\n{dev.log()[-3000:]}")
            time.sleep(1)
        up = datetime.now(UTC)
        result.up_at, result.startup_s = up, time.monotonic() - started
        log(f"{name}: fully up after {result.startup_s:.1f} s")

        # Steady state: after `warmup` minutes the klines of the first minutes have come in their
        # first catch-up batch, and every later window holds batches as a long run does.
        ready = up + timedelta(minutes=warmup)
        if stream is not None:
            # ... and, for the stream design, once the recorder has every symbol in sync: before
            # that, the minute runs fetch the books of the symbols not yet in sync over REST.
            log(f"{name}: waiting for all {n} symbols in sync (at most {sync_limit:g} min from the start)")
            synced = wait_for_sync(stream.health_url, n, sync_limit * 60 - (time.monotonic() - started),
                                   alive=lambda: dev.process.poll() is None)
            synced_wall = datetime.now(UTC)
            stream.cold_weight_max = watcher.max_between(started_wall, synced_wall)
            health = http_json(stream.health_url)
            stream.cold_snapshots = recorder_counters(health)[1]
            stream.cold_snapshot_weight = health.get("snapshot_weight", 0)
            if synced is None:
                result.notes.append(f"NOT all {n} symbols in sync within --sync-limit {sync_limit:g} min "
                                    f"({health['symbols_in_sync']} were): counted anyway, with REST fallbacks")
                log(f"{name}: only {health['symbols_in_sync']} of {n} in sync within the limit; counting anyway")
            else:
                stream.in_sync_s = synced - started
                stream.in_sync_after_up_s = max(0.0, synced - started - result.startup_s)
                log(f"{name}: all {n} in sync {stream.in_sync_s:.1f} s after the start")
            # `settle` minutes keep any cold-start backlog (runs queued while the books came over REST)
            # out of the window. Measured at 1262 symbols on a quiet machine (2026-12-03), counting
            # right at the sync did as well: the default is 0.
            ready = max(ready, synced_wall + timedelta(minutes=settle))
            if settle:
                log(f"{name}: counting from {settle:g} min after all were in sync (--settle)")
        m0 = ready.replace(second=0, microsecond=0)
        while m0 + WINDOW_OFFSET < ready + timedelta(seconds=1):  # so its run is requested after, too
            m0 += timedelta(minutes=1)
        result.counted = [m0 + timedelta(minutes=i) for i in range(minutes)]
        window_start = m0 + WINDOW_OFFSET
        window_end = m0 + timedelta(minutes=minutes) + WINDOW_OFFSET
        log(f"{name}: counting minutes {m0:%H:%M}..{result.counted[-1]:%H:%M}; window "
            f"{window_start:%H:%M:%S}..{window_end:%H:%M:%S}")
        wait_until(window_start)
        sampler.open_window()
        for apart_sampler in apart_samplers.values():
            apart_sampler.open_window()
        cgroup_start = cgroup.cpu_seconds() if cgroup else None
        pg_start = pg_counters(postgres.url) if postgres is not None else None
        opened = time.monotonic()
        if standin is not None and cgroup_start is not None:
            result.cgroup_from_start[opened - started] = cgroup_start
        stats_start = watcher.read()
        if stream is not None:
            health0 = http_json(stream.health_url)
            # every counted minute's close, watched from outside as benchmarks/recorder.py does
            for close in (m + timedelta(minutes=1) for m in result.counted):
                wait_until(close - timedelta(seconds=1))
                arrivals = watch_close(db, close, n)
                stream.arrivals.extend(arrivals)
                stream.all_in[close] = arrivals[-1] if len(arrivals) >= n else math.nan
                log(f"{name}: close {close:%H:%M}: {len(arrivals)} of {n} boundary books in MongoDB, "
                    f"all {stream.all_in[close]:.3f} s after it")
        wait_until(window_end)
        # let the counted runs finish (at most 90 s more), the window grows with it
        counted_keys = {f"{m:%Y-%m-%d-%H:%M}" for m in result.counted}
        extend_deadline = time.monotonic() + 90
        while True:
            runs = dev.graphql(RUNS_QUERY)["runsOrError"]["results"]
            mine = [r for r in runs if run_tags(r).get("acts/minute") in counted_keys]
            if all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in mine) or time.monotonic() > extend_deadline:
                break
            time.sleep(1)
        result.groups = sampler.close_window()
        health1 = http_json(stream.health_url) if stream is not None else None
        if standin is not None:
            result.naive = naive_tree_sums(sampler)
        for apart_name, apart_sampler in apart_samplers.items():
            figures = apart_sampler.close_window().values()
            result.apart[apart_name] = GroupFigures(cpu_seconds=sum(f.cpu_seconds for f in figures),
                                                    peak_rss=sum(f.peak_rss for f in figures),
                                                    processes=sum(f.processes for f in figures))
        if postgres is not None:
            pg_end = pg_counters(postgres.url)
            result.pg_stats = {k: pg_end[k] - pg_start[k] for k in PG_STATS}
        if cgroup is not None:
            result.cgroup_cpu_s = cgroup.cpu_seconds() - cgroup_start
        result.window_s = time.monotonic() - opened
        if result.window_s > minutes * 60 + 2:
            result.notes.append(f"window extended to {result.window_s:.0f} s for the counted runs to end")
        stats_end = watcher.read()
        watcher.stop()
        watcher = None
        result.samples, result.sampler_cost_s = sampler.samples, sampler.sample_seconds
        for endpoint, count in stats_end.get("requests", {}).items():
            result.requests[endpoint] = count - stats_start.get("requests", {}).get(endpoint, 0)
        # a minute's snapshots are sent at its close: they count in the next wall minute
        result.weight_by_minute = {m + timedelta(minutes=1): weights.get(m + timedelta(minutes=1), 0)
                                   for m in result.counted}

        result.events = (postgres_events(postgres.url, window_start, window_end) if postgres is not None
                         else sqlite_events(home, window_start, window_end))
        runs = dev.graphql(RUNS_QUERY)["runsOrError"]["results"]
        result.runs = [r for r in runs if run_tags(r).get("acts/minute") in counted_keys]
        ws, we = window_start.timestamp(), window_end.timestamp()
        result.runs_in_window = sum(1 for r in runs if ws <= r["creationTime"] < we)
        result.klines_runs_in_window = sum(1 for r in runs if ws <= r["creationTime"] < we
                                           and run_tags(r).get("acts/catch_up") == "klines")
        early = [r for r in result.runs if r["creationTime"] < up.timestamp()]
        if early:
            result.notes.append(f"{len(early)} counted runs were requested before the platform was up")

        if stream is not None:
            window_min = result.window_s / 60
            (m0_, s0_), (m1_, s1_) = recorder_counters(health0), recorder_counters(health1)
            stream.messages_per_s = (m1_ - m0_) / result.window_s
            stream.resnapshots_per_min = (s1_ - s0_) / window_min
            stream.snapshot_weight_per_min = (health1.get("snapshot_weight", 0)
                                              - health0.get("snapshot_weight", 0)) / window_min
            stream.own_durable = health1.get("durable_after_close_s", {})
            stream.connections = len(health1["connections"])
            stream.reconnects = sum(c["reconnects"] for c in health1["connections"])
        # Beyond the symbols whose klines ride along in the minute run, klines come in batches
        # of 5 minutes (paced under the weight budget): wait for the counted minutes' klines.
        klines_deadline = time.monotonic() + klines_wait
        while (db.klines_1m.count_documents({"minute": {"$in": result.counted}}) < result.expected
               and time.monotonic() < klines_deadline):
            time.sleep(5)
        if db.klines_1m.count_documents({"minute": {"$in": result.counted}}) >= result.expected:
            result.klines_late_s = max(0.0, (datetime.now(UTC) - window_end).total_seconds())
        for collection in COLLECTIONS:
            result.stored[collection] = db[collection].count_documents({"minute": {"$in": result.counted}})
        for snap in db.order_book_snapshots.find({"minute": {"$in": result.counted}},
                                                 {"minute": 1, "captured_at": 1, "source": 1}):
            result.lateness.append((snap["captured_at"] - snap["minute"]).total_seconds() - 60)
            source = snap.get("source", "rest")
            result.by_source[source] = result.by_source.get(source, 0) + 1
        if stream is not None:
            boundary, decisions = boundary_books_of(db, {"minute": {"$in": result.counted}})
            stream.boundary_stored = len(boundary)
            stream.boundary_with_book = sum(1 for d in boundary if boundary_book_usable(d))
            stream.decided = [(d["decided_at"] - d["close"]).total_seconds() for d in decisions if not d.get("revised")]
            for d in boundary:
                if not boundary_book_usable(d):
                    key = (d.get("reason") or "?")[:60]
                    stream.reasons[key] = stream.reasons.get(key, 0) + 1
            # every stored stream snapshot against the simulator's true book at its close (the
            # platform is still up: the simulator is its child); after the window, not counted
            truth_url = simulator_url.rstrip("/").removesuffix("/api") + "/_simulator/true_book"
            began = time.monotonic()
            log(f"{name}: comparing the stored stream snapshots with the simulator's true books")
            for snap in db.order_book_snapshots.find({"minute": {"$in": result.counted}, "source": "stream"}):
                close = snap["minute"] + timedelta(minutes=1)
                if snap.get("event_time") is not None:
                    stream.staleness.append((close - snap["event_time"]).total_seconds())
                stream.truth_checked += 1
                if equals_true_book(truth_url, snap["symbol"], close, snap["depth_limit"], snap["bids"], snap["asks"],
                                    snap["last_update_id"]):
                    stream.truth_equal += 1
                else:
                    stream.truth_wrong.append(f"{snap['symbol']}@{snap['minute']:%H:%M}")
            stream.truth_seconds = time.monotonic() - began
            log(f"{name}: {stream.truth_equal} of {stream.truth_checked} equal to the true book "
                f"({stream.truth_seconds:.0f} s)")
        return result
    finally:
        if watcher is not None:
            watcher.stop()
        log(f"{name}: stopping (SIGINT to the process group)")
        sampler.stop()
        for apart_sampler in apart_samplers.values():
            apart_sampler.stop()
        if from_start_timer is not None:
            from_start_timer.cancel()
        # Generous: on Ctrl-C the platform lets the minute run in flight finish (up to ~75 s at N=500).
        result.exit_code = dev.interrupt(timeout=150)
        if cgroup is not None:
            cgroup.remove()
        # the platform is down first: its last run still writes to the database
        if standin is not None:
            standin.stop()
        if mongo is not None:
            mongo.stop()
        if postgres is not None:
            os.environ.pop("DAGSTER_PG_URL", None)
            if keep:
                postgres.stop()
                result.notes.append(f"kept the PostgreSQL server's folder {postgres.folder}")
            else:
                postgres.remove()
        if not keep:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            result.notes.append(f"kept {tmp}")


# ------------------------------------------------------------------------------------------------
# the event log's writes


def pg_counters(url: str) -> dict[str, float]:
    """The database's cumulative statistics (pg_stat_database, pg_stat_wal) now. The server
    publishes a connection's counts when its transaction ends (at most a second late) and when
    it closes; dagster-postgres closes its connections after each use."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(PG_STATS_QUERY)
            row = cursor.fetchone()
    finally:
        conn.close()
    return {k: float(v or 0) for k, v in zip(PG_STATS, row, strict=True)}


def postgres_events(url: str, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
    """Event type -> (events, JSON bytes) of the events stored with a timestamp in [start, end)."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(EVENTS_QUERY.format(p="%s"), (start.replace(tzinfo=None), end.replace(tzinfo=None)))
            return {kind or "log message": (int(count), int(size)) for kind, count, size in cursor.fetchall()}
    finally:
        conn.close()


def sqlite_events(home: Path, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
    """The same from a SQLite instance: every run's shard (`history/runs/<run id>.db`; the index
    shard holds copies of the asset events and is left out)."""
    import contextlib
    import sqlite3

    out: dict[str, tuple[int, int]] = {}
    bounds = (f"{start.replace(tzinfo=None):%Y-%m-%d %H:%M:%S.%f}", f"{end.replace(tzinfo=None):%Y-%m-%d %H:%M:%S.%f}")
    for shard in sorted((home / "history" / "runs").glob("*.db")):
        if shard.name == "index.db":
            continue
        with contextlib.closing(sqlite3.connect(f"file:{shard}?mode=ro", uri=True, timeout=30)) as conn:
            for kind, count, size in conn.execute(EVENTS_QUERY.format(p="?"), bounds):
                kind = kind or "log message"
                before = out.get(kind, (0, 0))
                out[kind] = (before[0] + count, before[1] + size)
    return out


# ------------------------------------------------------------------------------------------------
# the table


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def rows_of(r: Result) -> list[tuple[str, str, float | None]]:
    """(label, shown value, number for ratios) of one design."""
    lat = r.lateness
    rows: list[tuple[str, str, float | None]] = []
    for label, q in (("lateness p50 (s)", 50), ("lateness p90 (s)", 90), ("lateness p99 (s)", 99)):
        v = percentile(lat, q)
        rows.append((label, _fmt(v), v))
    mx = max(lat) if lat else math.nan
    rows.append(("lateness max (s)", _fmt(mx), mx))
    rows.append((f"snapshots later than {TOLERANCE_S:g} s", str(sum(1 for x in lat if x > TOLERANCE_S)), None))
    m = len(r.counted)
    runs_pm = len(r.runs) / m if m else math.nan
    rows.append(("Dagster runs per minute", _fmt(runs_pm, 2), runs_pm))
    statuses: dict[str, int] = {}
    for run in r.runs:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    rows.append(("  run statuses", " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())) or "none", None))
    rows.append(("  runs created in window / min", _fmt(r.runs_in_window / (r.window_s / 60), 2) if r.window_s else "n/a", None))
    rows.append(("  of them klines batch runs / min", _fmt(r.klines_runs_in_window / (r.window_s / 60), 2) if r.window_s else "n/a", None))
    q2s = [run["startTime"] - run["creationTime"] for run in r.runs if run.get("startTime")]
    lead = [_close_of(run) - run["startTime"] for run in r.runs if run.get("startTime") and "acts/minute" in run_tags(run)]
    dur = [run["endTime"] - run["startTime"] for run in r.runs if run.get("endTime") and run.get("startTime")]
    rows.append(("  queue-to-start median/max (s)", f"{_fmt(statistics.median(q2s), 1)} / {_fmt(max(q2s), 1)}" if q2s else "n/a", None))
    rows.append(("  run start before close min (s)", _fmt(min(lead), 1) if lead else "n/a", min(lead) if lead else None))
    rows.append(("  run duration median (s)", _fmt(statistics.median(dur), 1) if dur else "n/a", None))
    total = r.platform_cpu_per_minute
    # one label for both designs (the rest design has no recorder: its row says so)
    rows.append(("CPU platform total incl. recorder (core-s/min)", _fmt(total, 2), total))
    for g in (*GROUPS, "other"):
        if g in r.groups:
            rows.append((f"  CPU {g}", _fmt(r.cpu_per_minute(g), 2), r.cpu_per_minute(g)))
        elif g == RECORDER_GROUP:
            rows.append((f"  CPU {g}", "none (not started)", None))
    resid = sum(g.residual_seconds for k, g in r.groups.items() if k != SIMULATOR_GROUP) / (r.window_s / 60) if r.window_s else 0
    rows.append(("  of it unsampled (exact, from cutime)", _fmt(resid, 2), None))
    if r.instance == "postgres":
        pg = r.instance_db_cpu_per_minute
        rows.append((f"CPU {POSTGRES_GROUP} (Dagster's instance), apart (core-s/min)", _fmt(pg, 2), pg))
    if r.instance == "postgres" or r.show_instance:
        both = total + r.instance_db_cpu_per_minute
        rows.append(("CPU platform total incl. instance database (core-s/min)", _fmt(both, 2), both))
    if r.exchange == "standin":
        rows.extend(_outside_rows(r))
    else:
        rows.append(("CPU simulator, apart (core-s/min)", _fmt(r.cpu_per_minute(SIMULATOR_GROUP), 2),
                     r.cpu_per_minute(SIMULATOR_GROUP)))
    tree = r.tree_cpu_per_minute
    if tree is not None and r.exchange == "standin":
        sampled = sum(r.cpu_per_minute(g) for g in r.groups)
        rows.append(("CPU whole tree, kernel cgroup (core-s/min)", _fmt(tree, 2), tree))
        rows.append(("  /proc sampling missed (core-s/min)", _fmt(tree - sampled, 2), tree - sampled))
        db = _apart_per_minute(r, "database server")
        rows.append(("  tree + database apart (core-s/min)", _fmt(tree + db, 2), tree + db))
        for seconds, total in sorted(r.cgroup_from_start.items()):
            v = total / (seconds / 60)
            rows.append((f"  kernel, first {seconds / 60:.1f} min from start (core-s/min)", _fmt(v, 2), v))
    if r.naive is not None:
        own, live, dead = (x / (r.window_s / 60) for x in r.naive)
        rows.append(("naive tree sum: own + live reaped (core-s/min)", _fmt(own + live, 2), own + live))
        rows.append(("  + exited processes' reaped too (core-s/min)", _fmt(own + live + dead, 2), own + live + dead))
        rows.append(("  of it own CPU of every process seen", _fmt(own, 2), own))
        if tree:
            rows.append(("  naive (own + live reaped) / kernel total", f"{(own + live) / tree:.2f}x", None))
    elif tree is not None:
        # Long-lived, sampled exactly: the simulator and the database server come off the kernel's total.
        apart = r.cpu_per_minute(SIMULATOR_GROUP) + r.cpu_per_minute("database server")
        sampled = sum(r.cpu_per_minute(g) for g in r.groups)
        rows.append(("CPU whole tree, kernel cgroup (core-s/min)", _fmt(tree, 2), tree))
        rows.append(("  less simulator and database (core-s/min)", _fmt(tree - apart, 2), tree - apart))
        rows.append(("  /proc sampling missed (core-s/min)", _fmt(tree - sampled, 2), tree - sampled))
    peak_total = sum(g.peak_rss for k, g in r.groups.items() if k != SIMULATOR_GROUP)
    rows.append(("peak RSS platform incl. recorder, sum of groups (MB)", f"{peak_total / 2**20:.0f}",
                 peak_total / 2**20))
    for g in (*GROUPS, "other", SIMULATOR_GROUP):
        if g in r.groups:
            fig = r.groups[g]
            apart = ", apart (not in the sum)" if g == SIMULATOR_GROUP else ""
            rows.append((f"  peak RSS {g}{apart} (MB)", f"{fig.peak_rss / 2**20:.0f} (max proc {fig.max_hwm / 2**20:.0f})",
                         fig.peak_rss / 2**20))
    if POSTGRES_GROUP in r.apart:
        rows.append((f"  peak RSS {POSTGRES_GROUP}, apart (MB)", f"{r.apart[POSTGRES_GROUP].peak_rss / 2**20:.0f}",
                     r.apart[POSTGRES_GROUP].peak_rss / 2**20))
    rows.extend(_event_log_rows(r))
    weights = list(r.weight_by_minute.values())
    if weights:
        rows.append(("request weight per minute mean/max", f"{statistics.mean(weights):.0f} / {max(weights)}", statistics.mean(weights)))
    if r.stream is not None:
        rows.append(("  of it recorder snapshots, weight/min", _fmt(r.stream.snapshot_weight_per_min, 1), None))
    reqs = " ".join(f"{k}:{v}" for k, v in sorted(r.requests.items()) if v)
    rows.append(("  requests in window", reqs or "none", None))
    rows.append(("cells expected (minutes x symbols)", f"{len(r.counted)} x {r.symbols} = {r.expected}", r.expected))
    for c in COLLECTIONS:
        stored = r.stored.get(c, 0)
        rows.append((f"  stored / missing {c}", f"{stored} / {r.expected - stored}", None))
        if c == "order_book_snapshots":
            rows.append(("    snapshots by source", " ".join(f"{k}:{v}" for k, v in sorted(r.by_source.items()))
                         or "none", None))
    rows.append(("  klines complete, s after window end", _fmt(r.klines_late_s, 0) if r.klines_late_s is not None
                 else "not within --klines-wait", None))
    if r.stream is not None:
        rows.extend(_stream_rows(r))
    rows.append(("start-up to fully up (s)", _fmt(r.startup_s, 1), None))
    rows.append(("exit code after SIGINT", str(r.exit_code), None))
    return rows


def _pair(values: list[float], digits: int = 3) -> str:
    return f"{_fmt(percentile(values, 50), digits)} / {_fmt(percentile(values, 99), digits)}" if values else "n/a"


def _stream_rows(r: Result) -> list[tuple[str, str, float | None]]:
    """The recorder's figures (ACTS_BOOK_SOURCE=stream)."""
    st = r.stream
    n = r.symbols
    rows: list[tuple[str, str, float | None]] = [
        ("stream: cold start, dev start to all in sync (s)",
         _fmt(st.in_sync_s, 1) if st.in_sync_s is not None else "not within --sync-limit", None),
        ("  of it after fully up (s)", _fmt(st.in_sync_after_up_s, 1), None),
        ("  REST weight per minute during it, max (of 6000)", str(st.cold_weight_max), None),
        ("  recorder snapshots by then / their weight", f"{st.cold_snapshots} / {st.cold_snapshot_weight}", None),
    ]
    equal = (f"{st.truth_equal} / {st.truth_checked} ({100 * st.truth_equal / st.truth_checked:.2f} %)"
             if st.truth_checked else "none stored")
    rows.append(("stream snapshots equal to the true book at the close", equal, None))
    if st.truth_wrong:
        rows.append(("  WRONG BOOKS", ", ".join(st.truth_wrong[:10]) + (" ..." if len(st.truth_wrong) > 10 else ""), None))
    rows.append(("boundary books stored / with a book / expected",
                 f"{st.boundary_stored} / {st.boundary_with_book} / {r.expected}", None))
    rows.append(("  without a book, by reason", "; ".join(f"{k}: {v}" for k, v in st.reasons.items()) or "none", None))
    rows.append(("  in MongoDB after the close p50 / p99 (s, outside)", _pair(st.arrivals), None))
    worst = max(st.all_in.values(), default=math.nan)
    rows.append((f"  all {n} of a close in MongoDB, worst close (s)",
                 _fmt(worst) if not math.isnan(worst) else "some close incomplete within 10 s", None))
    rows.append(("  decided after the close p50 / p99 (s)", _pair(st.decided), None))
    own = st.own_durable or {}
    rows.append(("  recorder's own durable p50 / p99 (s, its latest writes)", f"{own.get('p50')} / {own.get('p99')}", None))
    rows.append(("staleness close - event_time p50 / p99 (s)", _pair(st.staleness), None))
    rows.append(("re-snapshots per minute (steady state)", _fmt(st.resnapshots_per_min, 2), None))
    rows.append(("messages per second (all connections)", _fmt(st.messages_per_s, 0), None))
    rows.append(("recorder connections / reconnects", f"{st.connections} / {st.reconnects}", None))
    return rows


def _event_log_rows(r: Result) -> list[tuple[str, str, float | None]]:
    """What the event log stored in the window, per minute; PostgreSQL's own counters."""
    if not r.window_s:
        return []
    per_min = r.window_s / 60
    rows: list[tuple[str, str, float | None]] = []
    events = sum(c for c, _ in r.events.values())
    materializations = r.events.get("ASSET_MATERIALIZATION", (0, 0))[0]
    size = sum(b for _, b in r.events.values())
    rows.append(("Dagster events stored per minute", _fmt(events / per_min, 0), events / per_min))
    rows.append(("  of them materializations per minute", _fmt(materializations / per_min, 0), materializations / per_min))
    rows.append(("  event JSON per minute (MB)", _fmt(size / per_min / 1e6, 2), size / per_min / 1e6))
    if r.pg_stats:
        st = r.pg_stats
        rows.append(("Postgres commits / connections per minute",
                     f"{st['commits'] / per_min:.0f} / {st['connections'] / per_min:.0f}", st["commits"] / per_min))
        rows.append(("  rows inserted / updated / deleted per minute",
                     f"{st['rows inserted'] / per_min:.0f} / {st['rows updated'] / per_min:.0f} / "
                     f"{st['rows deleted'] / per_min:.0f}", None))
        rows.append(("  WAL per minute (MB)", _fmt(st["WAL bytes"] / per_min / 1e6, 2), st["WAL bytes"] / per_min / 1e6))
    return rows


def _apart_per_minute(r: Result, name: str) -> float:
    fig = r.apart.get(name)
    return fig.cpu_seconds / (r.window_s / 60) if fig and r.window_s else 0.0


def _outside_rows(r: Result) -> list[tuple[str, str, float | None]]:
    """The stand-in's and the database's CPU and memory: outside the tree, measured apart."""
    rows: list[tuple[str, str, float | None]] = []
    for name in ("stand-in exchange", "database server"):
        v = _apart_per_minute(r, name)
        rows.append((f"CPU {name}, apart (core-s/min)", _fmt(v, 2), v))
    for name in ("stand-in exchange", "database server"):
        if name in r.apart:
            rows.append((f"  peak RSS {name}, apart (MB)", f"{r.apart[name].peak_rss / 2**20:.0f}", None))
    return rows


def _close_of(run: dict) -> float:
    minute = datetime.strptime(run_tags(run)["acts/minute"], "%Y-%m-%d-%H:%M").replace(tzinfo=UTC)
    return (minute + timedelta(minutes=1)).timestamp()


def print_table(results: list[Result]) -> None:
    columns = [rows_of(r) for r in results]
    headers = ["figure"] + [f"{r.label}{'' if r.exchange == 'simulator' else ', ' + r.exchange} "
                            f"(N={r.symbols}, M={len(r.counted)})" for r in results]
    ratio = len(results) == 2
    if ratio:
        # (numerator, denominator): naive / batched, postgres / sqlite, or stream / rest
        if results[1].design == "naive":
            num, den = 1, 0
        elif results[0].instance != results[1].instance:
            num, den = (1, 0) if results[1].instance == "postgres" else (0, 1)
        else:
            num, den = 0, 1
        headers.append(f"{results[num].label} / {results[den].label}")
    labels: list[str] = []
    for column in columns:  # union of the rows, each design's extra rows after their predecessor
        previous = None
        for label, _, _ in column:
            if label not in labels:
                labels.insert(labels.index(previous) + 1 if previous else len(labels), label)
            previous = label
    by_label = [{label: (shown, value) for label, shown, value in column} for column in columns]
    ratio_rows = ("CPU platform", "lateness p99", "lateness p50", "  CPU ", "Dagster runs", "Dagster events",
                  "  of them materializations", "  event JSON", "peak RSS platform", "request weight")
    table = []
    for label in labels:
        row = [label] + [b.get(label, ("", None))[0] for b in by_label]
        if ratio:
            a, b = by_label[den].get(label, ("", None))[1], by_label[num].get(label, ("", None))[1]
            wanted = label.startswith(ratio_rows)
            row.append(f"{b / a:.2f}x" if wanted and a and b is not None and a > 0 else "")
        table.append(row)
    print_grid(headers, table)
    for r in results:
        for note in r.notes:
            print(f"note ({r.label}): {note}")
        if r.stream is not None:
            print(f"note ({r.label}): truth check of {r.stream.truth_checked} snapshots took "
                  f"{r.stream.truth_seconds:.1f} s after the window (not counted)")
        print(f"note ({r.label}): CPU sampled every {SAMPLE_INTERVAL:g} s ({r.samples} samples, "
              f"{r.sampler_cost_s:.2f} s of harness CPU time spent reading /proc), window {r.window_s:.0f} s")


SAMPLE_INTERVAL = 0.5


def main(argv: list[str] | None = None) -> int:
    global SAMPLE_INTERVAL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, required=True, help="N symbols (TRADING, USDT-quoted first)")
    parser.add_argument("--minutes", type=int, default=10,
                        help="M full minutes to count (default 10: two of the klines catch-up's 5-minute batches)")
    parser.add_argument("--warmup", type=float, default=7.0,
                        help="minutes after the platform is fully up before counting starts (default 7: the first "
                        "klines catch-up batch has run, as in any long run); 0 counts from start-up")
    parser.add_argument("--per-symbol-runs", action="store_true",
                        help="also run the naive design (one run per (minute, symbol)) and compare")
    parser.add_argument("--sample-interval", type=float, default=0.5, help="/proc sampling period in s (default 0.5)")
    parser.add_argument("--klines-wait", type=float, default=600,
                        help="how long after the window to wait for batched klines of the counted minutes (s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project folders (logs, instance)")
    parser.add_argument("--exchange", choices=("simulator", "standin"), default="simulator",
                        help="simulator: `acts-pipeline dev --simulated` (default); standin: the outside "
                        "measurement, an independent stand-in exchange and the database started apart, "
                        "`acts-pipeline dev` without --simulated pointed at them (see the module doc)")
    parser.add_argument("--book-source", choices=("stream", "rest", "both"), default=None,
                        help="ACTS_BOOK_SOURCE of the platform: stream (the recorder started by dev), rest, or "
                        "both: stream then rest, each on a fresh platform at the same N, side by side with "
                        "stream / rest ratios (default: both; rest with --exchange standin or --per-symbol-runs)")
    parser.add_argument("--instance", choices=("sqlite", "postgres", "both"), default="sqlite",
                        help="the Dagster instance's storage: sqlite (dev's dagster.yaml, the default), postgres "
                        "(deploy/dagster.yaml on a PostgreSQL server started here, measured apart), or both: "
                        "sqlite then postgres, each on a fresh platform at the same N and book source (default "
                        "stream), side by side with postgres / sqlite ratios")
    parser.add_argument("--sync-limit", type=float, default=20.0,
                        help="stream: minutes from the start allowed for every symbol to get in sync before "
                        "counting (default 20; 1262 symbols take about 9-10). Past it the minutes are counted "
                        "anyway, with a note")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="stream: minutes after every symbol is in sync before counting (default 0: from the "
                        "later of --warmup and the sync), to keep any cold-start backlog out of the window")
    args = parser.parse_args(argv)
    SAMPLE_INTERVAL = args.sample_interval
    source = args.book_source or ("rest" if args.exchange == "standin" or args.per_symbol_runs else
                                  "stream" if args.instance == "both" else "both")
    if args.instance == "both" and source == "both":
        parser.error("--instance both compares the two instances on one book source: give --book-source stream or "
                     "rest, not both")
    if args.per_symbol_runs and args.instance != "sqlite":
        parser.error("--per-symbol-runs compares the naive design with the batched one on the SQLite instance: "
                     f"use it without --instance {args.instance}")
    if args.exchange == "standin" and source != "rest":
        parser.error(f"--book-source {source} needs websocket streams, which the stand-in exchange does not "
                     "serve (REST only): with --exchange standin only --book-source rest is possible")
    if args.per_symbol_runs and source != "rest":
        parser.error(f"--per-symbol-runs compares the naive design with the batched one on REST books: "
                     f"use it with --book-source rest, not {source}")
    instance = "sqlite" if args.instance == "both" else args.instance
    if args.per_symbol_runs:
        runs = [("batched", "rest", instance), ("naive", "rest", instance)]
    elif args.instance == "both":
        runs = [("batched", source, "sqlite"), ("batched", source, "postgres")]
    elif source == "both":
        runs = [("batched", "stream", instance), ("batched", "rest", instance)]
    else:
        runs = [("batched", source, instance)]

    harness_cpu = self_cpu_seconds()
    print_run_header("minute_collection.py", argv if argv is not None else sys.argv[1:])
    results, failed = [], 0
    for i, (design, book_source, run_instance) in enumerate(runs):
        if i:
            print(machine_line(f"between designs {datetime.now(UTC):%H:%M:%S} UTC"), flush=True)
        try:
            results.append(measure(design, args.symbols, args.minutes, args.sample_interval, args.keep,
                                   args.klines_wait, args.warmup, args.exchange, book_source, args.sync_limit,
                                   run_instance, show_instance=args.instance == "both", settle=args.settle))
        except Exception as exc:  # noqa: BLE001 - report it, and still print what was measured
            failed += 1
            label = "naive" if design == "naive" else book_source
            print(f"{label}, {run_instance}: FAILED: {type(exc).__name__}: {exc}"[:4000], flush=True)
    if results:
        print_table(results)
    print(machine_line(f"end {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"))
    print(f"harness CPU (this process, not counted above): {self_cpu_seconds() - harness_cpu:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
