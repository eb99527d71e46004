"""Shared helpers of the benchmarks: the real platform (`acts-pipeline dev --simulated`) started
as a user would in a temporary project copy, and a sampler of the CPU and memory of every process
it starts.

CPU accounting (see `ProcessSampler`): every `interval` seconds the sampler reads
`/proc/<pid>/stat` of each descendant of the `acts-pipeline dev` process (children by parent pid,
plus anything left in its process group) and keeps, per process, its own CPU (utime + stime) and
the CPU of its children it has already reaped (cutime + cstime). A process that lives through the
window contributes the difference of its own CPU between the two window samples. A process that
exits inside the window (a run process: spawned by the code server, seconds long) is seen every
`interval` while it lives, so its own CPU after its last sample would be lost; but when its
parent reaps it, the kernel adds its final total into the parent's cutime + cstime. So for every
process alive at the end of the window, the growth of its reaped-children CPU is the exact CPU of
the descendants it reaped; the part of it not seen by sampling (`residual`) is added to the group
of those descendants. The platform total is therefore exact up to the clock tick (10 ms) and
processes not yet reaped at the window's end (none in practice: the window ends after the last
run finished); the split between groups is exact except for the residual of a parent whose dead
children belonged to different groups (does not happen here: the code server's reaped children
are all run processes and their helpers).
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

# One implementation of "run the platform as a user does", shared with the end-to-end tests.
from acts_devkit.platform import DevPlatform, clean_env, project_copy, start_dev  # noqa: E402,F401
EXCHANGE_INFO = PROJECT / "acts_simulator" / "data" / "binance" / "exchange_info.json"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# Groups, in display order. The simulator is the stand-in for Binance: reported apart.
# The stream recorder (`acts-pipeline record`, started by `dev` when ACTS_BOOK_SOURCE=stream) is
# part of the platform: a group of its own, counted in the platform's total.
GROUPS = ("webserver", "daemon", "code server", "run processes", "database server", "recorder", "launcher")
SIMULATOR_GROUP = "simulator"
RECORDER_GROUP = "recorder"


def classify(cmdline: str, parent_group: str | None) -> str:
    """The group of a process from its command line (and its parent's group for helpers)."""
    if "acts_simulator" in cmdline:
        return SIMULATOR_GROUP
    if "secantusd" in cmdline:
        return "database server"
    if "dagster_webserver" in cmdline or "dagster-webserver" in cmdline:
        return "webserver"
    if "dagster._daemon" in cmdline or "dagster-daemon" in cmdline:
        return "daemon"
    if "multiprocessing.spawn" in cmdline or "multiprocessing.resource_tracker" in cmdline \
            or "execute_run" in cmdline or "execute_step" in cmdline:
        return "run processes"
    if "code-server start" in cmdline or "api grpc" in cmdline:
        return "code server"
    # `python -m acts_pipeline.platform.cli record ...` as `dev` starts it, or `acts-pipeline record`
    if "acts_pipeline.platform.cli record" in cmdline or "acts-pipeline record" in cmdline:
        return RECORDER_GROUP
    if "acts-pipeline" in cmdline or "dagster dev" in cmdline:
        return "launcher"
    # helpers (compute-log tails, orphan watchers) belong to whoever started them
    return parent_group or "other"


def symbols_for(n: int) -> list[str]:
    """`n` TRADING symbols of the real exchangeInfo the simulator serves, USDT-quoted first."""
    info = json.loads(EXCHANGE_INFO.read_text())
    trading = [s for s in info["symbols"] if s["status"] == "TRADING"]
    ordered = [s["symbol"] for s in trading if s["quoteAsset"] == "USDT"] + \
              [s["symbol"] for s in trading if s["quoteAsset"] != "USDT"]
    if n > len(ordered):
        raise SystemExit(f"only {len(ordered)} TRADING symbols in {EXCHANGE_INFO}")
    return ordered[:n]


# ------------------------------------------------------------------------------------------------
# /proc sampling


@dataclass
class ProcSample:
    pid: int
    ppid: int
    pgid: int
    start_ticks: int
    own_ticks: int      # utime + stime
    reaped_ticks: int   # cutime + cstime
    rss_bytes: int
    state: str


def read_stat(pid: int) -> ProcSample | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    # fields after the comm: state(3) ppid(4) pgrp(5) ... utime(14) stime(15) cutime(16) cstime(17)
    # ... starttime(22) vsize(23) rss(24); rest[0] is field 3
    return ProcSample(pid=pid, ppid=int(rest[1]), pgid=int(rest[2]), start_ticks=int(rest[19]),
                      own_ticks=int(rest[11]) + int(rest[12]), reaped_ticks=int(rest[13]) + int(rest[14]),
                      rss_bytes=int(rest[21]) * PAGE_SIZE, state=rest[0])


def read_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def read_status_bytes(pid: int, field: str) -> int:
    """A memory figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, ...) in bytes; 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def read_hwm(pid: int) -> int:
    return read_status_bytes(pid, "VmHWM")


def read_rss(pid: int) -> int:
    return read_status_bytes(pid, "VmRSS")


@dataclass
class Tracked:
    key: tuple[int, int]  # (pid, start ticks): pids are reused
    ppid: int
    group: str
    cmdline: str
    first_own: int
    first_reaped: int
    last_own: int = 0
    last_reaped: int = 0
    born_in_window: bool = False
    alive: bool = True
    hwm: int = 0


@dataclass
class GroupFigures:
    cpu_seconds: float = 0.0
    sampled_cpu_seconds: float = 0.0
    residual_seconds: float = 0.0
    peak_rss: int = 0     # max over samples of the sum of the group's RSS
    max_hwm: int = 0      # largest VmHWM of one process of the group
    processes: int = 0


class ProcessSampler:
    """Samples the descendants of `root_pid` every `interval` s in a thread (see module doc)."""

    def __init__(self, root_pid: int, interval: float = 0.5):
        self.root_pid = root_pid
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._window_open = False
        self._tracked: dict[tuple[int, int], Tracked] = {}
        self._peak_rss: dict[str, int] = {}
        self._group_of_pid: dict[int, str] = {}
        self.samples = 0
        self.sample_seconds = 0.0

    # the processes of the platform: descendants by ppid, plus stragglers in its process group
    def _scan(self) -> list[ProcSample]:
        stats = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                s = read_stat(int(name))
                if s is not None:
                    stats.append(s)
        children: dict[int, list[ProcSample]] = {}
        for s in stats:
            children.setdefault(s.ppid, []).append(s)
        found: dict[int, ProcSample] = {}
        stack = [self.root_pid]
        while stack:
            pid = stack.pop()
            for c in children.get(pid, []):
                if c.pid not in found:
                    found[c.pid] = c
                    stack.append(c.pid)
        root = next((s for s in stats if s.pid == self.root_pid), None)
        if root is not None:
            found[root.pid] = root
        for s in stats:
            if s.pgid == self.root_pid and s.pid not in found:
                found[s.pid] = s
        return list(found.values())

    def sample(self) -> None:
        started = time.perf_counter()
        procs = self._scan()
        with self._lock:
            seen = set()
            rss_by_group: dict[str, int] = {}
            # parents first, so helpers can inherit their parent's group
            for s in sorted(procs, key=lambda p: p.start_ticks):
                key = (s.pid, s.start_ticks)
                seen.add(key)
                t = self._tracked.get(key)
                if t is None:
                    cmd = read_cmdline(s.pid)
                    group = classify(cmd, self._group_of_pid.get(s.ppid))
                    born = self._window_open
                    t = Tracked(key, s.ppid, group, cmd,
                                first_own=0 if born else s.own_ticks,
                                first_reaped=0 if born else s.reaped_ticks, born_in_window=born)
                    self._tracked[key] = t
                else:
                    # a child read between fork and exec still shows its parent's command line
                    cmd = read_cmdline(s.pid)
                    if cmd and cmd != t.cmdline:
                        t.cmdline, t.group = cmd, classify(cmd, self._group_of_pid.get(s.ppid))
                self._group_of_pid[s.pid] = t.group
                t.last_own, t.last_reaped, t.alive = s.own_ticks, s.reaped_ticks, s.state != "Z"
                t.hwm = max(t.hwm, read_hwm(s.pid))
                rss_by_group[t.group] = rss_by_group.get(t.group, 0) + s.rss_bytes
            for key, t in self._tracked.items():
                if key not in seen:
                    t.alive = False
            if self._window_open:
                for g, rss in rss_by_group.items():
                    self._peak_rss[g] = max(self._peak_rss.get(g, 0), rss)
            self.samples += 1
            self.sample_seconds += time.perf_counter() - started

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="proc-sampler")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def open_window(self) -> None:
        """Start counting: the current values of every live process are the baseline."""
        with self._lock:
            self._tracked = {k: t for k, t in self._tracked.items() if t.alive}
        self.sample()
        with self._lock:
            for t in self._tracked.values():
                t.first_own, t.first_reaped, t.born_in_window = t.last_own, t.last_reaped, False
            self._window_open = True
            self._peak_rss = {}

    def close_window(self) -> dict[str, GroupFigures]:
        self.sample()
        with self._lock:
            self._window_open = False
            return self._figures()

    def _figures(self) -> dict[str, GroupFigures]:
        figures: dict[str, GroupFigures] = {}
        tracked = list(self._tracked.values())
        by_pid_alive = {t.key[0]: t for t in tracked if t.alive}
        for t in tracked:
            g = figures.setdefault(t.group, GroupFigures())
            own = (t.last_own - t.first_own) / CLK_TCK
            g.sampled_cpu_seconds += own
            g.cpu_seconds += own
            g.max_hwm = max(g.max_hwm, t.hwm)
            g.processes += 1
        # exact correction: a live parent's reaped-children CPU grew by the full totals of the
        # processes it reaped in the window; what sampling saw of them is subtracted.
        dead = [t for t in tracked if not t.alive]
        for parent in by_pid_alive.values():
            reaped_growth = (parent.last_reaped - parent.first_reaped) / CLK_TCK
            if reaped_growth <= 0:
                continue
            descendants = _dead_descendants(parent, dead)
            if not descendants:
                continue
            seen_of_them = 0.0
            share: dict[str, float] = {}
            for d in descendants:
                seen = (d.last_own - d.first_own) / CLK_TCK
                seen_of_them += seen
                share[d.group] = share.get(d.group, 0.0) + seen
            # a dead direct child alive at the window's start carried CPU from before it
            pre = sum((d.first_own + d.first_reaped) / CLK_TCK for d in descendants
                      if d.ppid == parent.key[0] and not d.born_in_window)
            residual = reaped_growth - pre - seen_of_them
            target = max(share, key=share.get) if share else parent.group
            g = figures.setdefault(target, GroupFigures())
            g.residual_seconds += residual
            g.cpu_seconds += residual
        for group, peak in self._peak_rss.items():
            figures.setdefault(group, GroupFigures()).peak_rss = peak
        return figures


def _dead_descendants(parent: Tracked, dead: list[Tracked]) -> list[Tracked]:
    """Dead processes whose chain of (dead) parents leads to `parent`."""
    by_ppid: dict[int, list[Tracked]] = {}
    for d in dead:
        by_ppid.setdefault(d.ppid, []).append(d)
    out, stack = [], [parent.key[0]]
    while stack:
        pid = stack.pop()
        for d in by_ppid.pop(pid, []):
            out.append(d)
            stack.append(d.key[0])
    return out


class CpuCgroup:
    """A cgroup-v1 `cpuacct` group that the benchmarked process joins before it starts, so every
    process it ever starts is in it (children inherit the group; orphans re-parented to init and
    processes that exited stay counted). Its `cpuacct.usage` is the kernel's own total of CPU time
    of the whole tree: the outside measurement the /proc sampler is checked against. Needs root
    and a cpuacct hierarchy; `CpuCgroup.create()` returns None without them."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, name: str) -> CpuCgroup | None:
        path = cls.ROOT / name
        try:
            path.mkdir()
        except OSError:
            return None
        return cls(path)

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def cpu_seconds(self) -> float:
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        """Removes the group once its processes are gone (retried a few seconds)."""
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile of `values`, linear between the closest ranks; NaN for none."""
    if not values:
        return math.nan
    values = sorted(values)
    k = (len(values) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far, its own and its reaped children's (an
    embedded server's, from outside it); 0.0 once it is gone."""
    stat = read_stat(pid)
    return (stat.own_ticks + stat.reaped_ticks) / CLK_TCK if stat else 0.0


# ------------------------------------------------------------------------------------------------
# the platform


def http_json(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def log(message: str) -> None:
    """A progress line on stderr, stamped with the UTC time (the tables go to stdout)."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def git_revision() -> str:
    """The product's commit, and whether acts_pipeline/ has uncommitted changes."""
    import subprocess

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "acts_pipeline"],
                               cwd=PROJECT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown revision"
    return f"{rev}{' + uncommitted changes in acts_pipeline/' if dirty else ''}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def print_grid(headers: list[str], table: list[list]) -> None:
    """`table` under `headers` as a boxed plain-text grid, columns as wide as their widest cell."""
    widths = [max(len(str(row[i])) for row in [headers, *table]) for i in range(len(headers))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    print(line)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print(line)
    for row in table:
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(row, widths)) + " |")
    print(line)


def checkpoint(home: Path) -> None:
    """Fold the SQLite write-ahead logs of a Dagster instance's `history` into their databases,
    so file sizes are the stored bytes (retried while a writer holds a log)."""
    import contextlib
    import glob
    import sqlite3

    for path in glob.glob(str(home / "history" / "**" / "*.db"), recursive=True):
        if os.path.exists(path + "-wal"):
            with contextlib.closing(sqlite3.connect(path)) as conn:
                for _ in range(50):
                    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    if not busy:
                        break
                    time.sleep(0.1)


def history_db_bytes(home: Path) -> int:
    """The bytes of the instance's SQLite databases under `history`, write-ahead logs folded in."""
    import glob

    checkpoint(home)
    return sum(os.path.getsize(p) for p in glob.glob(str(home / "history" / "**" / "*.db"), recursive=True))


def machine_line(label: str) -> str:
    return f"{label}: load average {load_average()} (1/5/15 min)"


def print_run_header(script: str, argv: list[str]) -> None:
    """What every figure depends on, printed before a benchmark starts: the machine, the
    versions, the product's revision, the load, and the command line."""
    import platform as py_platform

    import dagster

    print(f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {py_platform.platform()}, "
          f"{cpu_model()}")
    print(f"python {py_platform.python_version()}, dagster {dagster.__version__}, product at {git_revision()}")
    print(machine_line(f"start {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"))
    print(f"command: python benchmarks/{script} {' '.join(argv)}", flush=True)


# ------------------------------------------------------------------------------------------------
# measuring from outside: an independent exchange stand-in and the database, apart from the tree


def naive_tree_sums(sampler: ProcessSampler) -> tuple[float, float, float]:
    """What a tool that sums per-process CPU over a process tree reports, without the correction
    `ProcessSampler._figures` makes, from the same samples (call it after `close_window`).

    Such a tool (psutil's `cpu_times()` of every process it saw: user + system, and
    children_user + children_system) counts a process that exits inside the window twice: its
    own CPU while it was seen alive, and again in its parent's reaped-children CPU once the parent
    has reaped it (a run process's CPU ends in the code server's cutime; the run's own helpers in
    the run process's, then the code server's). Returns, in core-seconds over the window:
    (own CPU of every process seen, growth of the reaped-children CPU of the processes alive at
    the window's end, growth of it in processes that exited, as last seen)."""
    with sampler._lock:  # noqa: SLF001 - the sampler's own state, read under its lock
        tracked = list(sampler._tracked.values())  # noqa: SLF001
    own = sum(t.last_own - t.first_own for t in tracked) / CLK_TCK
    reaped_live = sum(t.last_reaped - t.first_reaped for t in tracked if t.alive) / CLK_TCK
    reaped_dead = sum(t.last_reaped - t.first_reaped for t in tracked if not t.alive) / CLK_TCK
    return own, reaped_live, reaped_dead


@dataclass
class StandinExchange:
    """`benchmarks/standin_exchange.py` running in a session of its own (not in the measured
    tree): the exchange an outside measurement uses instead of the project's simulator."""

    process: object  # subprocess.Popen
    api_url: str
    log_path: Path

    @property
    def stats_url(self) -> str:
        return self.api_url.removesuffix("/api") + "/_standin/stats"

    def stop(self, timeout: float = 10.0) -> None:
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_standin(symbols: list[str], log_path: Path, timeout: float = 30.0) -> StandinExchange:
    """Start the stand-in on a free port with `symbols`; up once it printed its URL and answers."""
    import re
    import subprocess

    from acts_pipeline.platform.processes import free_port

    port = free_port()
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(PROJECT / "benchmarks" / "standin_exchange.py"), "--port", str(port),
             "--symbols", ",".join(symbols)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"standin exchange on (\S+)", log_path.read_text(errors="replace"))
        if match:
            try:
                http_json(match.group(1) + "/v3/ping", timeout=2)
                return StandinExchange(process, match.group(1), log_path)
            except OSError:
                pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the stand-in exchange did not come up:\n{log_path.read_text(errors='replace')[-3000:]}")


# ------------------------------------------------------------------------------------------------
# the exchange's weight ledger, and the stream recorder seen from outside (recorder.py and
# minute_collection.py --book-source stream)


class SimulatorWatcher:
    """Reads the exchange's stats (`/_simulator/stats`, or the stand-in's `/_standin/stats`: the
    same per-wall-minute ledger, Binance's rule) and keeps the largest `used_weight` of each wall
    minute. `read()` by hand, or `start()` a thread that reads every `interval` s."""

    def __init__(self, base_url: str, interval: float = 0.5, stats_path: str = "/_simulator/stats"):
        self.url = base_url.rstrip("/").removesuffix("/api") + stats_path
        self.interval = interval
        self.max_weight: dict[datetime, int] = {}
        self.statuses: dict[str, int] = {}
        self.last: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="simulator-stats")

    def read(self) -> dict:
        stats = http_json(self.url)
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        self.max_weight[minute] = max(self.max_weight.get(minute, 0), stats.get("used_weight", 0))
        self.statuses = stats.get("responses", stats.get("statuses", {}))
        self.last = stats
        return stats

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.read()
            except OSError:
                pass
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def max_between(self, start: datetime, end: datetime) -> int:
        """The largest per-minute weight of the wall minutes from `start`'s to `end`'s."""
        first = start.replace(second=0, microsecond=0)
        return max((w for m, w in self.max_weight.items() if first <= m <= end), default=0)


def wait_for_sync(health_url: str, symbols: int, limit_s: float, *, poll: float = 0.5,
                  on_poll=None, alive=None) -> float | None:
    """Polls the recorder's `/health?symbols=0` until it reports `symbols` symbols in sync; the
    `time.monotonic()` at which it did, or None after `limit_s` seconds. `on_poll()` runs at every
    poll; `alive()` returning False stops the wait (the platform exited)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if on_poll is not None:
            on_poll()
        try:
            if http_json(f"{health_url}?symbols=0")["symbols_in_sync"] >= symbols:
                return time.monotonic()
        except OSError:
            pass
        if alive is not None and not alive():
            raise RuntimeError("the platform exited while waiting for the recorder to get in sync")
        time.sleep(poll)
    return None


def recorder_counters(health: dict) -> tuple[int, int]:
    """(messages received over all connections, REST snapshots taken over all symbols) of a full
    `/health` answer: differences of two answers give messages a second and re-snapshots."""
    return (sum(c["messages"] for c in health["connections"]),
            sum(s["snapshots"] for s in health.get("symbols", {}).values()))


def watch_close(db, close: datetime, expected: int, timeout: float = 10.0) -> list[float]:
    """When the boundary books of `close` were in MongoDB, watched from outside: polls which
    symbols have a decision stored at that close (`boundary_books` batches of the close's minute,
    their `usable` and `unusable` lists only, as `BoundaryBooks.decided` reads them; by `minute`,
    indexed: an unindexed query would scan the collection on every poll and slow the very writes
    it times) from now until `expected` symbols are there or `timeout` s after the close. Every
    20 ms for the first 2 s after the close, then every 0.5 s (a poll that finds batches reads
    them whole on the embedded server: a symbol never decided must not make it read them 50
    times a second). Returns, for each book found, the
    seconds after the close of the first poll that saw it (sorted; at most `expected` values).
    Call it just before the close."""
    minute = close - timedelta(minutes=1)
    arrivals: list[float] = []
    while True:
        n = len({s for batch in db.boundary_books.find({"minute": minute}, {"_id": False, "usable": True,
                                                                            "unusable": True})
                 for s in (*batch.get("usable", ()), *batch.get("unusable", ()))})
        after = (datetime.now(UTC) - close).total_seconds()
        if n > len(arrivals):
            arrivals.extend([max(after, 0.0)] * (min(n, expected) - len(arrivals)))
        if len(arrivals) >= expected or after > timeout:
            return arrivals
        time.sleep(0.02 if after < 2 else 0.5)


def boundary_books_of(db, query: dict) -> tuple[list[dict], list[dict]]:
    """The boundary books of the `boundary_books` batches matching `query`, flat (one symbol at one
    close, `storage.boundary_books.books_of`): (each (symbol, close)'s latest decision, which is
    what the snapshot asset reads; every decision, revisions included)."""
    from acts_pipeline.storage.boundary_books import books_of, latest

    every = [book for batch in db.boundary_books.find(query) for book in books_of(batch)]
    return list(latest(every).values()), every


def truth_levels(side: list[list[str]]) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in side]


def equals_true_book(truth_url: str, symbol: str, close: datetime, depth: int, bids: list, asks: list,
                     last_update_id: int) -> bool:
    """Whether a stored book (`bids`/`asks` as [[price, qty], ...] floats, best first) is the
    simulator's true book of `symbol` at `close` (`GET /_simulator/true_book`, every diff event with
    E at or before the close applied, none after), level for level, and its last update id."""
    close_ms = int(close.timestamp() * 1000)
    truth = http_json(f"{truth_url}?symbol={symbol}&at_ms={close_ms}&limit={depth}", timeout=30)
    return (bids == truth_levels(truth["bids"]) and asks == truth_levels(truth["asks"])
            and last_update_id == truth["lastUpdateId"])
