"""Benchmark: Dagster UI pages (asset page, partitions tab, launch and backfill dialogs) against the
size of the minute partition window, with a seeded event log, through the real webserver.

    python benchmarks/ui_pages.py [--symbols 100] [--window-hours 6,24,168,720] [--history-hours 7]

What it does:

1. A fresh temporary DAGSTER_HOME with the repo's `dagster.yaml` (so the event log is
   `acts_pipeline.platform.event_log.BatchedSqliteEventLogStorage`), N TRADING symbols of the simulator's
   real exchangeInfo (USDT-quoted first) registered as the dynamic partitions "symbols", and a
   history of H hours of minute runs seeded as the product writes them: one run record per minute
   (job, tags and asset selection of `minute_sensor`'s request; its STARTING, START and SUCCESS
   events stored through `DagsterInstance.handle_new_event`, which also sets the run's status and
   times, and its ENQUEUED event through the event log only: the run storage wants a code origin
   to queue a run), and in it one ASSET_MATERIALIZATION per stored (minute, symbol) cell of
   `order_book_snapshot`, `order_book_features` and `klines_1m`, with the I/O manager's per-cell
   metadata (`ui_metadata.cell_metadata` of a realistic document: the book, features or candle),
   written through the instance's event log storage `store_event_batch`, one batch per asset
   per run (as the I/O manager batches one output's cells). Not seeded: the ~45 step, engine and
   check events a real minute run also writes (~70 KB in its run shard at 100 symbols, against
   ~740 KB of cell materializations): they do not touch the partition views.
2. For each window W of `--window-hours`: the real `dagster-webserver -w workspace.yaml` (a copy of
   the repo's) on a free port with `ACTS_PARTITION_WINDOW_HOURS=W`, that DAGSTER_HOME, and
   `ACTS_MONGO_URI=mongodb://127.0.0.1:1` (nothing is read from MongoDB); no daemon. Windows above
   the setting's maximum (2160) load the same definitions through a small wrapper file that sets the
   window before `acts_pipeline.definitions` is imported (same location name). Waits until the
   code location is LOADED.
3. Times the GraphQL requests the UI sends for each page, with the UI's own query documents,
   extracted at run time (with their fragments) from the webserver's bundled JS source maps
   (`dagster_webserver/webapp/build/_next/static/chunks/*.js.map`, `ui-core/src/...`), and the
   variables the UI passes (read from the same sources):
   - asset page (overview of `order_book_snapshot`): AssetViewDefinitionQuery, AssetGraphLiveQuery
     (live data: partition stats, the partitioned checks' statuses), AssetStaleStatusDataQuery,
     AssetOverviewMetadataEventsQuery, AssetHealthQuery;
   - partitions tab: PartitionHealthQuery (every partition key by dimension and the
     materialization status ranges), AssetPartitionDetailQuery and AssetPartitionStaleQuery for
     the focused partition (the latest seeded minute, first symbol);
   - launch dialog (Materialize... on `order_book_snapshot`): LaunchAssetLoaderQuery,
     LaunchAssetLoaderResourceQuery, PartitionHealthQuery (the dialog's own fetch),
     LaunchAssetWarningsQuery, RunningBackfillsNoticeQuery;
   - backfill dialog (Materialize all, the three minute assets, B minutes x N symbols chosen):
     LaunchAssetLoaderQuery, PartitionHealthQuery of each asset (the dialog fetches them one after
     the other), BackfillPreviewQuery, and the LaunchPartitionBackfill mutation with the explicit
     partition names the dialog sends (each call creates a backfill; no daemon runs it; they are
     cancelled in storage after the window). Launching enumerates every minute x symbol key of
     the definition (~1 KB each in the webserver): it is skipped, with a note, above
     `--backfill-max-keys` (6 M) or when memory would not suffice.
   Each request: the first (cold) call in the fresh webserver, then the median of 3 warm calls.
   A page's figure is the sum of its requests (the browser sends them together, but the
   webserver's Python serves CPU-bound resolvers one at a time). Also: the first
   PartitionHealthQuery after adding one symbol (a new dynamic partition changes the partitions
   definition's id, so the status cache is rebuilt from every event) and after removing it again;
   the PartitionHealthQuery response size; the peak RSS (VmHWM) of the webserver and of its code
   server, read after the pages and after the backfill.
   Note on "cold": the status cache is keyed by the partitions definition's id, which includes
   the window's start, so the first partition query in each column rebuilds the cache from all the
   seeded events, as the first one after each hourly reload of the rolling window would. The
   product rebuilds it right after the reload with one `partitionStats` query of every asset
   (`acts_pipeline.platform.window_reload.WARM_QUERY`); so does this script, timed, after the code location
   loads ("warm-up"), unless `--no-warm-up`. The cold figures are the first calls after it.
4. Event-log growth: bytes on disk under DAGSTER_HOME/history (runs.db, index shard, run shards;
   WAL checkpointed) added by the seeding, per seeded cell and per day at N symbols x 1440
   minutes x 3 assets (the seeded history is whole hours at N symbols, so per day = growth / H x 24).
5. One table: rows = pages and their requests, columns = windows (cold / warm seconds), plus the
   ratio of the last column to the first. The seeded history is the same for every column: the
   default (7 hours) is what the default 6-hour window holds at most, with the hourly retention;
   a window longer than the history has the same cells in a longer definition.

Load: 2 cores shared with other benchmarks. The 1-minute load average is printed at the start and
end of every window's measurement; each request records the load before and after it, and a
figure measured while it was above 1.5 is marked `*` (warm calls are re-run, up to 6 in all,
while the load is below 1.5, and the median is taken over the unmarked ones if any). The webserver's own work counts in that load (up to 1 while a long query runs).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform as py_platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _platform import (  # noqa: E402
    PROJECT,
    checkpoint,
    clean_env,
    cpu_model,
    git_revision,
    load_average,
    log,
    print_grid,
    read_hwm,
    read_rss,
    self_cpu_seconds,
    symbols_for,
)

from acts_pipeline.platform.processes import free_port  # noqa: E402

VENV_BIN = Path(sys.executable).parent
WEBAPP_CHUNKS = "dagster_webserver/webapp/build/_next/static/chunks"
ASSETS = ("order_book_snapshot", "order_book_features", "klines_1m")
ASSET = ASSETS[0]
COLLECTIONS = {"order_book_snapshot": "order_book_snapshots", "order_book_features": "order_book_features",
               "klines_1m": "klines_1m"}
MINUTE_JOB = "__anonymous_asset_job_minute_sensor"  # the job name of minute_sensor's runs
MAX_SETTING_HOURS = 2160  # acts_pipeline.settings.MAX_PARTITION_WINDOW_HOURS
MAX_HISTORY_HOURS = 72.0  # 0.4 to 1.5 ms per event (load): 3 days = 1.3 M events, 10 to 70 minutes
LOAD_LIMIT = 1.5
WARM_CALLS = 3
WARM_ATTEMPTS = 6
HEAVY_TIMEOUT = 3600.0

# the UI's documents used, by page; each request: (row label, operation name, variables builder)
OPERATIONS = (
    "AssetViewDefinitionQuery", "AssetGraphLiveQuery", "AssetStaleStatusDataQuery",
    "AssetOverviewMetadataEventsQuery", "AssetHealthQuery", "PartitionHealthQuery",
    "AssetPartitionDetailQuery", "AssetPartitionStaleQuery", "LaunchAssetLoaderQuery",
    "LaunchAssetLoaderResourceQuery", "LaunchAssetWarningsQuery", "RunningBackfillsNoticeQuery",
    "BackfillPreviewQuery", "LaunchPartitionBackfill",
)
WORKSPACE_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } ... on PythonError { message } } }"""
OVERRIDE_WORKSPACE = """# benchmark (benchmarks/ui_pages.py): the product's definitions with a window above the setting's maximum
load_from:
  - python_file:
      relative_path: {path}
      location_name: acts_pipeline
      working_directory: {cwd}
"""
OVERRIDE_DEFINITIONS = """# benchmark (benchmarks/ui_pages.py): acts_pipeline.definitions with a {hours}-hour minute window,
# above ACTS_PARTITION_WINDOW_HOURS's maximum: the setting is replaced before the partitions are built.
import acts_pipeline.settings as _settings

_settings.partition_window_hours = lambda environ=None: {hours}

from acts_pipeline.definitions import defs  # noqa: E402,F401
"""




def load1() -> float:
    return os.getloadavg()[0]


def machine_line(label: str) -> str:
    return f"{label}: load average {load_average()} (1/5/15 min)"


# ------------------------------------------------------------------------------------------------
# the UI's query documents, from the webserver's bundle


def ui_documents(names: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """The GraphQL documents the UI sends for the named operations, each with the fragments it
    spreads (transitively), from the `gql` templates of the bundle's source maps (`ui-core/src`).
    Template interpolations (`${FRAGMENT}`) are dropped: fragments are resolved by name, as the
    bundled documents do. Returns ({name: document}, {name: source file})."""
    import dagster_webserver
    from graphql import parse, print_ast
    from graphql.language import Visitor, visit

    chunks = Path(dagster_webserver.__file__).parent / "webapp" / "build" / "_next" / "static" / "chunks"
    maps = sorted(glob.glob(str(chunks / "*.js.map")))
    if not maps:
        raise SystemExit(f"no source maps in {chunks}: cannot extract the UI's queries")
    definitions: dict[str, tuple[object, str]] = {}
    for path in maps:
        with open(path) as f:
            source_map = json.load(f)
        for source, content in zip(source_map["sources"], source_map.get("sourcesContent") or []):
            if not content or "ui-core/src/" not in source or "gql`" not in content:
                continue
            for template in re.findall(r"\bgql`(.*?)`", content, re.S):
                try:
                    document = parse(re.sub(r"\$\{[^}]*\}", "", template))
                except Exception:  # noqa: BLE001 - a template that is not a document
                    continue
                for definition in document.definitions:
                    name = getattr(definition, "name", None)
                    if name is not None:
                        definitions.setdefault(name.value, (definition, source.split("ui-core/")[-1]))

    def spreads(node) -> set[str]:
        found: set[str] = set()

        class Spreads(Visitor):
            def enter_fragment_spread(self, spread, *_):
                found.add(spread.name.value)

        visit(node, Spreads())
        return found

    documents, sources = {}, {}
    for name in names:
        if name not in definitions:
            raise SystemExit(f"operation {name} not found in the UI bundle ({chunks})")
        operation, source = definitions[name]
        needed, todo, seen = [], [operation], set()
        while todo:
            for spread in sorted(spreads(todo.pop())):
                if spread not in seen:
                    seen.add(spread)
                    needed.append(spread)
                    todo.append(definitions[spread][0])
        documents[name] = "\n\n".join(print_ast(d) for d in [operation, *(definitions[s][0] for s in needed)])
        sources[name] = source
    return documents, sources


# ------------------------------------------------------------------------------------------------
# seeding


@dataclass
class Seeded:
    runs: int = 0
    cells: int = 0
    events: int = 0
    seconds: float = 0.0
    event_seconds: float = 0.0
    event_json_bytes: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    first_minute: datetime | None = None
    last_minute: datetime | None = None


def history_bytes(home: Path) -> int:
    total = 0
    for root, _, files in os.walk(home / "history"):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def cell_metadata(asset: str, minute: datetime, n_symbols: int, index: int) -> dict:
    """What the MongoDB I/O manager attaches to one stored cell: the product's own
    `ui_metadata.cell_metadata` of a document shaped like the real ones (a 100-level book, a
    feature row, a candle). `n_symbols` is kept for the callers; the metadata no longer carries
    the batch's write counts."""
    from acts_pipeline.storage.ui_metadata import FEATURE_FIELDS, cell_metadata as product_cell_metadata

    price = 100.0 + index
    captured = minute + timedelta(seconds=60.02 + (index % 50) * 0.011)
    if asset == "order_book_snapshot":
        document = {"minute": minute, "captured_at": captured,
                    "bids": [[price - 0.01 * (i + 1), 1.0 + i] for i in range(100)],
                    "asks": [[price + 0.01 * (i + 1), 1.0 + i] for i in range(100)]}
    elif asset == "order_book_features":
        document = {field: price * 0.001 * (n + 1) for n, field in enumerate(FEATURE_FIELDS)}
    else:
        document = {"open": price, "high": price * 1.001, "low": price * 0.999, "close": price, "volume": 12.5,
                    "trades": 42}
    return product_cell_metadata(COLLECTIONS[asset], document)


def seed(home: Path, symbols: list[str], minutes: int, seed_assets: tuple[str, ...]) -> Seeded:
    """Register the symbols and write `minutes` minute runs ending at the last closed minute."""
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import AssetKey, AssetMaterialization, DagsterInstance
    from dagster._core.definitions.dependency import NodeHandle
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.execution.plan.handle import StepHandle
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    from acts_pipeline.core.cells import Cell, format_minute
    from acts_pipeline.orchestration.partitions import SYMBOLS_PARTITIONS_NAME
    from acts_pipeline.exchange import BinanceExchange
    from acts_pipeline.orchestration.sensors import minute_run_request

    result = Seeded()
    started = time.perf_counter()
    instance = DagsterInstance.get()
    instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, symbols)
    checkpoint(home)
    result.bytes_before = history_bytes(home)
    storage = instance.event_log_storage
    if type(storage).__name__ != "BatchedSqliteEventLogStorage":
        raise SystemExit(f"the instance's event log is {type(storage).__name__}, not the repo's batched one")

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    last = now - timedelta(minutes=1)  # the last closed minute
    first = last - timedelta(minutes=minutes - 1)
    result.first_minute, result.last_minute = first, last
    asset_keys = {a: AssetKey(a) for a in ASSETS}
    pid = os.getpid()

    def run_event(run_id: str, kind: DagsterEventType, timestamp: float, message: str) -> EventLogEntry:
        event = DagsterEvent(event_type_value=kind.value, job_name=MINUTE_JOB, message=message, pid=pid)
        return EventLogEntry(error_info=None, level=10, user_message=message, run_id=run_id,
                             timestamp=timestamp, job_name=MINUTE_JOB, dagster_event=event)

    report_every = max(1, minutes // 10)
    for i in range(minutes):
        minute = first + timedelta(minutes=i)
        key = format_minute(minute)
        request = minute_run_request(minute, symbols, BinanceExchange().levels())
        run_id = str(uuid.uuid4())
        tags = {**request.tags, "dagster/sensor_name": "minute_sensor", "dagster/run_key": key}
        instance.add_run(DagsterRun(job_name=MINUTE_JOB, run_id=run_id, status=DagsterRunStatus.NOT_STARTED,
                                    tags=tags, asset_selection=frozenset(asset_keys.values())))
        close = (minute + timedelta(minutes=1)).timestamp()
        # ENQUEUED only into the event log: the run storage wants a code origin to queue a run
        storage.store_event(run_event(run_id, DagsterEventType.RUN_ENQUEUED, close - 30.0, "Run enqueued."))
        for offset, kind, text in ((-28.5, DagsterEventType.RUN_STARTING, "Run starting."),
                                   (-25.0, DagsterEventType.RUN_START, f'Started execution of run for "{MINUTE_JOB}".')):
            instance.handle_new_event(run_event(run_id, kind, close + offset, text))
        t0 = time.perf_counter()
        for a_index, asset in enumerate(seed_assets):
            node = NodeHandle(asset, None)
            message = f"Materialized value {asset}."
            logging_tags = {"job_name": MINUTE_JOB, "op_name": asset, "resource_fn_name": "None",
                            "resource_name": "None", "run_id": run_id, "step_key": asset}
            batch = []
            for s_index, symbol in enumerate(symbols):
                materialization = AssetMaterialization(
                    asset_key=asset_keys[asset], partition=Cell(minute, symbol).partition_key,
                    metadata=cell_metadata(asset, minute, len(symbols), s_index))
                event = DagsterEvent(
                    event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value, job_name=MINUTE_JOB,
                    step_handle=StepHandle(node), node_handle=node, step_kind_value="COMPUTE",
                    logging_tags=logging_tags, event_specific_data=StepMaterializationData(materialization),
                    message=message, pid=pid)
                batch.append(EventLogEntry(error_info=None, level=10, user_message=message, run_id=run_id,
                                           timestamp=close + 0.5 + a_index * 0.3 + s_index * 1e-4,
                                           step_key=asset, job_name=MINUTE_JOB, dagster_event=event))
            if i == 0 and a_index == 0:
                from dagster._serdes import serialize_value
                result.event_json_bytes = len(serialize_value(batch[0]))
            storage.store_event_batch(batch)
            result.cells += len(batch)
        result.event_seconds += time.perf_counter() - t0
        instance.handle_new_event(run_event(run_id, DagsterEventType.RUN_SUCCESS, close + 3.0,
                                            f'Finished execution of run for "{MINUTE_JOB}".'))
        result.runs += 1
        result.events += 4
        if (i + 1) % report_every == 0:
            rate = result.event_seconds / result.cells * 1000 if result.cells else 0
            log(f"seeded {i + 1}/{minutes} minute runs, {result.cells} cells "
                f"({rate:.2f} ms per materialization in store_event_batch), load {load_average()}")
    result.events += result.cells
    instance.dispose()
    checkpoint(home)
    result.bytes_after = history_bytes(home)
    result.seconds = time.perf_counter() - started
    return result


def prune_oldest_hour(home: Path, seeded: Seeded) -> str:
    """Delete the seeded minute runs of the oldest hour, one `delete_run` each, as the hourly
    retention job (`acts_pipeline.orchestration.retention.delete_old_runs`) does when that hour leaves the
    window; the time it took and the bytes on disk before and after (SQLite keeps freed pages
    for reuse: the files do not shrink, later writes fill them)."""
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance, RunsFilter

    from acts_pipeline.core.cells import format_minute

    oldest = {format_minute(seeded.first_minute + timedelta(minutes=m)) for m in range(60)}
    instance = DagsterInstance.get()
    runs = [r for r in instance.get_runs(filters=RunsFilter(tags={"dagster/sensor_name": "minute_sensor"}))
            if r.tags.get("dagster/run_key") in oldest]
    checkpoint(home)
    before = history_bytes(home)
    cpu, t0 = time.process_time(), time.perf_counter()
    for run in runs:
        instance.delete_run(run.run_id)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu
    left = len(instance.get_runs(filters=RunsFilter(tags={"dagster/sensor_name": "minute_sensor"})))
    instance.dispose()
    checkpoint(home)
    after = history_bytes(home)
    return (f"retention of one hour: {len(runs)} minute runs deleted in {seconds:.1f} s ({cpu:.1f} s CPU in "
            f"this process), {left} left; history {before / 2**20:,.0f} MB before, {after / 2**20:,.0f} MB after "
            "(freed pages are reused, not returned)")


SEEDED_FILE = "ui_pages_seeded.json"


def save_seeded(home: Path, seeded: Seeded, symbols: int, history_hours: float) -> None:
    data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(seeded).items()}
    (home / SEEDED_FILE).write_text(json.dumps({**data, "symbols": symbols, "history_hours": history_hours}))


def load_seeded(home: Path, symbols: int) -> tuple[Seeded, float]:
    data = json.loads((home / SEEDED_FILE).read_text())
    if data.pop("symbols") != symbols:
        raise SystemExit(f"the instance in {home} was seeded with another number of symbols")
    # a folder kept by an earlier version of this script says days
    history_hours = data.pop("history_hours") if "history_hours" in data else 24 * data.pop("history_days")
    for k in ("first_minute", "last_minute"):
        data[k] = datetime.fromisoformat(data[k])
    return Seeded(**data), history_hours


# ------------------------------------------------------------------------------------------------
# the webserver


class Webserver:
    def __init__(self, cwd: Path, home: Path, hours: int, log_path: Path):
        self.port = free_port()
        self.cwd = cwd
        self.log_path = log_path
        env = clean_env(DAGSTER_HOME=str(home), ACTS_MONGO_URI="mongodb://127.0.0.1:1")
        workspace = cwd / "workspace.yaml"
        if hours > MAX_SETTING_HOURS:
            wrapper = cwd / f"window_{hours}_hours.py"
            wrapper.write_text(OVERRIDE_DEFINITIONS.format(hours=hours))
            workspace = cwd / f"workspace_{hours}_hours.yaml"
            workspace.write_text(OVERRIDE_WORKSPACE.format(path=wrapper.name, cwd=cwd))
        else:
            env["ACTS_PARTITION_WINDOW_HOURS"] = str(hours)
        self._log = open(log_path, "w")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [str(VENV_BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def post(self, body: dict, timeout: float) -> tuple[dict, int]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/graphql", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw), len(raw)

    def wait_loaded(self, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited {self.process.returncode}:\n{self.tail()}")
            try:
                body, _ = self.post({"query": WORKSPACE_QUERY}, timeout=30)
                entries = body["data"]["workspaceOrError"].get("locationEntries") or []
                for entry in entries:
                    last = f"{entry['name']}: {entry['loadStatus']}"
                    error = entry.get("locationOrLoadError") or {}
                    if error.get("__typename") == "PythonError":
                        raise RuntimeError(f"code location failed to load: {error['message'][:2000]}")
                    if entry["loadStatus"] == "LOADED" and error.get("__typename") == "RepositoryLocation":
                        return time.monotonic() - self.started
            except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"code location not loaded within {timeout:g} s ({last}):\n{self.tail()}")

    def pids(self) -> dict[str, int]:
        """The webserver's pid and its code server's (a descendant running `api grpc`)."""
        found = {"webserver": self.process.pid}
        children: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                children.setdefault(ppid, []).append(int(name))
        stack = [self.process.pid]
        while stack:
            for child in children.get(stack.pop(), []):
                stack.append(child)
                try:
                    cmd = open(f"/proc/{child}/cmdline", "rb").read().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if "api grpc" in cmd or "code-server" in cmd:
                    found["code server"] = child
        return found

    def peak_rss_mb(self) -> dict[str, float]:
        return {name: read_hwm(pid) / 2**20 for name, pid in self.pids().items()}

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self._log.close()


# ------------------------------------------------------------------------------------------------
# measuring


@dataclass
class Call:
    seconds: float
    loaded: bool  # load above the limit before or after
    size: int
    error: str | None = None


@dataclass
class Figure:
    cold: Call | None = None
    warm: list[Call] = field(default_factory=list)

    @property
    def warm_seconds(self) -> tuple[float | None, bool]:
        calls = [c for c in self.warm if c.error is None]
        quiet = [c for c in calls if not c.loaded]
        chosen = quiet if quiet else calls
        if not chosen:
            return None, False
        return statistics.median(c.seconds for c in chosen), not quiet

    @property
    def error(self) -> str | None:
        for c in [self.cold, *self.warm]:
            if c is not None and c.error:
                return c.error
        return None


@dataclass
class Window:
    hours: int
    figures: dict[str, Figure] = field(default_factory=dict)
    pages: dict[str, list[str]] = field(default_factory=dict)
    minute_partitions: int = 0
    window_start: str = ""
    health_kb: float = 0.0
    load_s: float = 0.0
    rss_pages: dict[str, float] = field(default_factory=dict)
    rss_backfill: dict[str, float] = field(default_factory=dict)
    load_start: str = ""
    load_end: str = ""
    max_load1: float = 0.0
    notes: list[str] = field(default_factory=list)
    backfills: int = 0
    warm_up_s: float | None = None


def find_python_error(value) -> str | None:
    if isinstance(value, dict):
        if value.get("__typename") in ("PythonError", "InvalidSubsetError", "PartitionSetNotFoundError",
                                       "UnauthorizedError", "InvalidStepError", "InvalidOutputError"):
            return f"{value['__typename']}: {str(value.get('message'))[:300]}"
        for v in value.values():
            found = find_python_error(v)
            if found:
                return found
    elif isinstance(value, list):
        for v in value[:50]:
            found = find_python_error(v)
            if found:
                return found
    return None


class LoadWatch:
    """Samples the 1-minute load every second in a thread (the largest value over a window), and
    stops the webserver if its memory passes `rss_limit` (the machine is shared)."""

    def __init__(self, server: Webserver | None = None, rss_limit: int = 0):
        self.max = 0.0
        self.server = server
        self.rss_limit = rss_limit
        self.killed_at: int = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="load-watch")
        self._thread.start()

    def _loop(self):
        while not self._stop.is_set():
            self.max = max(self.max, load1())
            if self.server is not None and self.rss_limit and not self.killed_at:
                rss = read_rss(self.server.process.pid)
                if rss > self.rss_limit:
                    self.killed_at = rss
                    log(f"webserver RSS {rss / 2**30:.1f} GB > limit {self.rss_limit / 2**30:.1f} GB: stopping it")
                    try:
                        os.killpg(self.server.process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self._stop.wait(1.0)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.max


def wait_for_quiet(max_wait: float) -> None:
    deadline = time.monotonic() + max_wait
    if load1() > LOAD_LIMIT:
        log(f"1-minute load {load1():.2f} > {LOAD_LIMIT}: waiting up to {max_wait:.0f} s for it to drop")
    while load1() > LOAD_LIMIT and time.monotonic() < deadline:
        time.sleep(5)


class Measurer:
    def __init__(self, server: Webserver, documents: dict[str, str], window: Window):
        self.server = server
        self.documents = documents
        self.window = window
        self.responses: dict[str, dict] = {}

    def call(self, operation: str, variables: dict, timeout: float = HEAVY_TIMEOUT) -> Call:
        body = {"operationName": operation, "query": self.documents[operation], "variables": variables}
        before = load1()
        t0 = time.perf_counter()
        error = None
        try:
            data, size = self.server.post(body, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - report, keep measuring the others
            data, size, error = {}, 0, f"{type(exc).__name__}: {exc}"[:300]
        seconds = time.perf_counter() - t0
        if error is None:
            if data.get("errors"):
                error = "GraphQL: " + "; ".join(str(e.get("message"))[:200] for e in data["errors"][:2])
            else:
                error = find_python_error(data.get("data"))
        self.responses[operation] = data
        return Call(seconds, max(before, load1()) > LOAD_LIMIT, size, error)

    def measure(self, page: str, label: str, operation: str, variables: dict, warm: bool = True) -> Figure:
        figure = self.window.figures.setdefault(label, Figure())
        self.window.pages.setdefault(page, [])
        if label not in self.window.pages[page]:
            self.window.pages[page].append(label)
        figure.cold = self.call(operation, variables)
        log(f"  {self.window.hours} h  {label}: cold {figure.cold.seconds:.3f} s"
            f"{' *' if figure.cold.loaded else ''}{'  ERROR ' + figure.cold.error if figure.cold.error else ''}")
        if warm and not figure.cold.error:
            for _ in range(WARM_CALLS):
                figure.warm.append(self.call(operation, variables))
            # calls measured under load are re-run (up to WARM_ATTEMPTS in all) while the load is low
            while (len(figure.warm) < WARM_ATTEMPTS and sum(1 for c in figure.warm if not c.loaded) < WARM_CALLS
                   and load1() <= LOAD_LIMIT):
                figure.warm.append(self.call(operation, variables))
            w, loaded = figure.warm_seconds
            if w is not None:
                log(f"  {self.window.hours} h  {label}: warm median {w:.3f} s{' *' if loaded else ''} "
                    f"({', '.join(f'{c.seconds:.3f}' + ('*' if c.loaded else '') for c in figure.warm)})")
        return figure


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def measure_window(hours: int, cwd: Path, home: Path, documents: dict[str, str], symbols: list[str],
                   extra_symbol: str, seeded: Seeded, backfill_minutes: int, quiet_wait: float,
                   backfill_max_keys: int, warm_up: bool) -> Window:
    from dagster import DagsterInstance
    from dagster._core.execution.backfill import BulkActionStatus

    window = Window(hours)
    watch = None
    server = Webserver(cwd, home, hours, cwd / f"webserver_{hours}h.log")
    try:
        window.load_s = server.wait_loaded()
        log(f"{hours} h window: code location loaded in {window.load_s:.1f} s (port {server.port})")
        if warm_up:
            # What the product does after each hourly reload (acts_pipeline/platform/window_reload.py): one
            # partitionStats query of every asset rebuilds the status caches before a user comes.
            from acts_pipeline.platform.window_reload import WARM_QUERY

            t0 = time.perf_counter()
            body, _ = server.post({"query": WARM_QUERY}, timeout=HEAVY_TIMEOUT)
            window.warm_up_s = time.perf_counter() - t0
            if body.get("errors"):
                window.notes.append(f"warm-up query failed: {body['errors'][0].get('message')}"[:300])
            log(f"{hours} h window: partition status warmed up in {window.warm_up_s:.1f} s")
        wait_for_quiet(quiet_wait)
        window.load_start = load_average()
        print(machine_line(f"window {hours} h: start {datetime.now(UTC):%H:%M:%S} UTC"), flush=True)
        watch = LoadWatch(server, rss_limit=int(0.5 * (mem_available() + read_rss(server.process.pid))))
        m = Measurer(server, documents, window)
        key = {"path": [ASSET]}
        keys = [{"path": [a]} for a in ASSETS]
        focused = f"{seeded.last_minute:%Y-%m-%d-%H:%M}|{symbols[0]}"

        page = "asset page"
        m.measure(page, "AssetViewDefinitionQuery", "AssetViewDefinitionQuery", {"assetKey": key})
        m.measure(page, "AssetGraphLiveQuery", "AssetGraphLiveQuery", {"assetKeys": [key]})
        m.measure(page, "AssetStaleStatusDataQuery", "AssetStaleStatusDataQuery", {"assetKeys": [key]})
        m.measure(page, "AssetOverviewMetadataEventsQuery", "AssetOverviewMetadataEventsQuery", {"assetKey": key})
        m.measure(page, "AssetHealthQuery", "AssetHealthQuery", {"assetKeys": [key]})

        page = "partitions tab"
        health = m.measure(page, "PartitionHealthQuery", "PartitionHealthQuery", {"assetKey": key})
        response = m.responses.get("PartitionHealthQuery", {})
        window.health_kb = health.cold.size / 1024 if health.cold else 0
        try:
            dims = response["data"]["assetNodeOrError"]["partitionKeysByDimension"]
            minute_keys = next(d["partitionKeys"] for d in dims if d["name"] == "minute")
            window.minute_partitions = len(minute_keys)
            window.window_start = minute_keys[0]
        except (KeyError, TypeError, StopIteration, IndexError):
            window.notes.append("PartitionHealthQuery response without the minute dimension's keys")
        m.measure(page, "AssetPartitionDetailQuery (focused key)", "AssetPartitionDetailQuery",
                  {"assetKey": key, "partitionKey": focused})
        m.measure(page, "AssetPartitionStaleQuery (focused key)", "AssetPartitionStaleQuery",
                  {"assetKey": key, "partitionKey": focused})

        page = "launch dialog"
        m.measure(page, "LaunchAssetLoaderQuery", "LaunchAssetLoaderQuery", {"assetKeys": [key]})
        nodes = (m.responses.get("LaunchAssetLoaderQuery", {}).get("data") or {}).get("assetNodes") or [{}]
        repo = nodes[0].get("repository") or {}
        job_names = nodes[0].get("jobNames") or ["__ASSET_JOB"]
        m.measure(page, "LaunchAssetLoaderResourceQuery", "LaunchAssetLoaderResourceQuery",
                  {"pipelineName": job_names[0], "repositoryName": repo.get("name", "__repository__"),
                   "repositoryLocationName": (repo.get("location") or {}).get("name", "acts_pipeline")})
        m.measure(page, "PartitionHealthQuery (dialog)", "PartitionHealthQuery", {"assetKey": key})
        m.measure(page, "LaunchAssetWarningsQuery", "LaunchAssetWarningsQuery", {"upstreamAssetKeys": []})
        m.measure(page, "RunningBackfillsNoticeQuery", "RunningBackfillsNoticeQuery", {})
        window.rss_pages = server.peak_rss_mb()

        page = "backfill dialog"
        chosen_minutes = [seeded.last_minute - timedelta(minutes=i) for i in range(backfill_minutes)][::-1]
        names = [f"{minute:%Y-%m-%d-%H:%M}|{s}" for minute in chosen_minutes for s in symbols]
        m.measure(page, "LaunchAssetLoaderQuery (3 assets)", "LaunchAssetLoaderQuery", {"assetKeys": keys})
        for a in ASSETS:
            m.measure(page, f"PartitionHealthQuery {a}", "PartitionHealthQuery", {"assetKey": {"path": [a]}})
        m.measure(page, f"BackfillPreviewQuery ({len(names)} keys)", "BackfillPreviewQuery",
                  {"partitionNames": names, "assetKeys": keys})
        # Launching validates the selection against every partition key of the definition
        # (`MultiPartitionsDefinition.get_partition_keys`: minutes x symbols MultiPartitionKey
        # objects, ~1 KB each, measured: 1.1 M keys -> +0.9 GB, and more on the next call).
        all_keys = window.minute_partitions * len(symbols)
        available = mem_available()
        label = f"LaunchPartitionBackfill ({len(names)} keys x 3)"
        if all_keys > backfill_max_keys or all_keys * 2048 > 0.8 * available:
            window.notes.append(
                f"{label} not launched: it would build {all_keys:,} partition keys (~{all_keys / 2**20:.1f} GB per "
                f"call, growing with repeated calls; limit --backfill-max-keys {backfill_max_keys:,}, "
                f"MemAvailable {available / 2**30:.1f} GB)")
            log(f"  {hours} h  {label}: skipped, {all_keys:,} partition keys to enumerate")
        else:
            m.measure(page, label, "LaunchPartitionBackfill",
                      {"backfillParams": {"tags": [{"key": "dagster/from_ui", "value": "true"}],
                                          "assetSelection": keys, "partitionNames": names, "fromFailure": False}})
        window.rss_backfill = server.peak_rss_mb()

        # a new symbol changes the dynamic partitions, hence the partitions definition's id: the
        # status cache is rebuilt from every event on the next partition query
        instance = DagsterInstance.get()
        instance.add_dynamic_partitions("symbols", [extra_symbol])
        m.measure("symbol change", "PartitionHealthQuery after adding a symbol", "PartitionHealthQuery",
                  {"assetKey": key}, warm=False)
        instance.delete_dynamic_partition("symbols", extra_symbol)
        m.measure("symbol change", "PartitionHealthQuery after removing it", "PartitionHealthQuery",
                  {"assetKey": key}, warm=False)
        for backfill in instance.get_backfills(status=BulkActionStatus.REQUESTED):
            instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))
            window.backfills += 1
        instance.dispose()
        window.max_load1 = watch.stop()
        window.load_end = load_average()
        print(machine_line(f"window {hours} h: end {datetime.now(UTC):%H:%M:%S} UTC (1-min max during it "
                           f"{window.max_load1:.2f})"), flush=True)
    finally:
        server.stop()
        if watch is not None:
            watch.stop()
            if watch.killed_at:
                window.notes.append(f"webserver stopped by the harness at {watch.killed_at / 2**30:.1f} GB RSS "
                                    "(half the memory available): later requests failed")
    return window


# ------------------------------------------------------------------------------------------------
# the table


def cell_text(figure: Figure | None) -> str:
    if figure is None:
        return ""
    if figure.error:
        return "error"
    cold = f"{figure.cold.seconds:.2f}{'*' if figure.cold.loaded else ''}" if figure.cold else "-"
    warm, loaded = figure.warm_seconds
    return f"{cold} / {warm:.2f}{'*' if loaded else ''}" if warm is not None else cold


def page_total(window: Window, page: str) -> tuple[float, float | None, bool]:
    cold, warm, loaded, any_warm = 0.0, 0.0, False, False
    for label in window.pages.get(page, []):
        f = window.figures[label]
        if f.error or f.cold is None:
            continue
        cold += f.cold.seconds
        loaded |= f.cold.loaded
        w, w_loaded = f.warm_seconds
        if w is not None:
            warm += w
            any_warm = True
            loaded |= w_loaded
    return cold, (warm if any_warm else None), loaded


def ratio_text(a: float | None, b: float | None) -> str:
    return f"{b / a:.1f}x" if a and b is not None and a > 0 else ""


def print_table(windows: list[Window], symbols: int, backfill_minutes: int) -> None:
    # the last column against the first (e.g. 720 h, a month, against the default 6 h)
    ratio = len(windows) > 1
    first, last = windows[0], windows[-1]
    headers = ["page / request (s: cold / warm median of 3)"] + [f"{w.hours} h window" for w in windows]
    if ratio:
        headers.append(f"{last.hours} h / {first.hours} h (cold; warm)")
    table: list[list[str]] = []

    def add(label: str, values: list[str], r: str = "") -> None:
        table.append([label, *values, *([r] if ratio else [])])

    add("window start (minute key)", [w.window_start for w in windows])
    add("minute partitions in the definition", [f"{w.minute_partitions:,}" for w in windows],
        ratio_text(first.minute_partitions, last.minute_partitions) if ratio else "")
    add(f"partition keys (x {symbols} symbols)", [f"{w.minute_partitions * symbols:,}" for w in windows])
    add("code location load (s)", [f"{w.load_s:.1f}" for w in windows])
    add("partition status warm-up after the load (s)",
        [f"{w.warm_up_s:.1f}" if w.warm_up_s is not None else "(none)" for w in windows])
    pages = []
    for w in windows:
        for p in w.pages:
            if p not in pages:
                pages.append(p)
    for page in pages:
        if page != "symbol change":
            totals = [page_total(w, page) for w in windows]
            union = {label for w in windows for label in w.pages.get(page, [])}
            values = [(f"{c:.2f} / {wm:.2f}{'*' if ld else ''}" if wm is not None else f"{c:.2f}{'*' if ld else ''}")
                      + (" (partial)" if set(w.pages.get(page, [])) != union
                         or any(w.figures[x].error for x in w.pages.get(page, [])) else "")
                      for (c, wm, ld), w in zip(totals, windows)]
            r = ""
            if ratio:
                a, b = page_total(first, page), page_total(last, page)
                r = f"{ratio_text(a[0], b[0])}; {ratio_text(a[1], b[1])}"
            title = page.upper() + (f" ({backfill_minutes} min x {symbols} symbols x 3 assets)" if page == "backfill dialog" else "")
            add(f"{title} total", values, r)
        else:
            add("SYMBOL CHANGE (one call each: the status cache is rebuilt)", ["" for _ in windows])
        labels = []
        for w in windows:
            for label in w.pages.get(page, []):
                if label not in labels:
                    labels.append(label)
        for label in labels:
            figs = [w.figures.get(label) for w in windows]
            r = ""
            if ratio and first.figures.get(label) and last.figures.get(label):
                a, b = first.figures[label], last.figures[label]
                if not a.error and not b.error and a.cold and b.cold:
                    r = "; ".join(x for x in (ratio_text(a.cold.seconds, b.cold.seconds),
                                              ratio_text(a.warm_seconds[0], b.warm_seconds[0])) if x)
            add(f"  {label}", [cell_text(f) for f in figs], r)
    add("PartitionHealthQuery response (KB)", [f"{w.health_kb:,.0f}" for w in windows],
        ratio_text(first.health_kb, last.health_kb) if ratio else "")
    for name in ("webserver", "code server"):
        add(f"peak RSS {name} after pages / after backfill (MB)",
            [f"{w.rss_pages.get(name, 0):.0f} / {w.rss_backfill.get(name, 0):.0f}" for w in windows])
    add("load avg at start (1/5/15)", [w.load_start for w in windows])
    add("load avg at end (1/5/15)", [w.load_end for w in windows])
    add("max 1-min load during", [f"{w.max_load1:.2f}{' (>1.5)' if w.max_load1 > LOAD_LIMIT else ''}" for w in windows])

    print_grid(headers, table)
    for w in windows:
        for label, f in w.figures.items():
            if f.error:
                print(f"note ({w.hours} h): {label}: {f.error}")
        for note in w.notes:
            print(f"note ({w.hours} h): {note}")


def print_growth(seeded: Seeded, symbols: int, history_hours: float, seed_assets: tuple[str, ...]) -> None:
    grown = seeded.bytes_after - seeded.bytes_before
    per_cell = grown / seeded.cells if seeded.cells else 0
    per_day_cells = symbols * 1440 * 3
    per_day = grown / history_hours * 24 * (3 / len(seed_assets)) if history_hours else 0
    print(f"event log growth: {grown / 2**20:,.1f} MB on disk under DAGSTER_HOME/history for {seeded.runs:,} minute runs "
          f"and {seeded.cells:,} cell materializations ({seeded.events:,} events); "
          f"{per_cell / 1024:.2f} KB per cell (run records and run events included), one serialized "
          f"materialization {seeded.event_json_bytes:,} B (stored twice: run shard and index shard)")
    print(f"event log growth per day at {symbols} symbols x 1440 minutes x 3 assets ({per_day_cells:,} cells): "
          f"{per_day / 2**30:.2f} GB/day; bounded by retention (runs older than the window deleted "
          f"hourly): ~{(6 + 1) / 24 * per_day / 2**30:.1f} GB at the default 6-hour window, "
          f"~{(30 + 1) * per_day / 2**30:.0f} GB if 30 days were kept (SQLite reuses freed pages; the files do "
          f"not shrink without VACUUM)")
    print(f"seeding: {seeded.seconds:.0f} s, {seeded.event_seconds / max(seeded.cells, 1) * 1000:.2f} ms per "
          f"materialization in store_event_batch (100-cell batches), minutes {seeded.first_minute:%Y-%m-%d %H:%M} to "
          f"{seeded.last_minute:%Y-%m-%d %H:%M} UTC")


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=100, help="registered symbols (default 100)")
    parser.add_argument("--window-hours", default="6,24,168,720",
                        help="comma-separated minute-window sizes in hours (default 6,24,168,720; above 2160 via "
                             "a wrapper)")
    parser.add_argument("--history-hours", type=float, default=7.0,
                        help="hours of minute runs seeded (default 7: what the default 6-hour window holds just "
                             f"before the hourly reload, with retention; at most {MAX_HISTORY_HOURS:g})")
    parser.add_argument("--backfill-minutes", type=int, default=60,
                        help="minutes x all symbols chosen in the backfill dialog (default 60)")
    parser.add_argument("--backfill-max-keys", type=int, default=6_000_000,
                        help="do not launch the backfill when the definition holds more minute x symbol keys "
                             "than this (launching enumerates them all, ~1 KB each; default 6,000,000)")
    parser.add_argument("--quiet-wait", type=float, default=60,
                        help="before each window, wait up to S s for the 1-minute load to drop below 1.5")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="do not warm the partition status up after the code location loads (the product does, "
                             "after each hourly reload): cold figures then include rebuilding the status cache")
    parser.add_argument("--prune-hour", action="store_true",
                        help="after measuring, delete the oldest hour of seeded minute runs as the hourly retention "
                             "job does, and time it (changes the seeded instance)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary DAGSTER_HOME and logs")
    parser.add_argument("--reuse", metavar="DIR",
                        help="measure again on a folder kept by --keep (same seeded history, no seeding)")
    args = parser.parse_args(argv)
    windows_hours = [int(x) for x in args.window_hours.split(",") if x.strip()]
    if not 0 < args.history_hours <= MAX_HISTORY_HOURS:
        raise SystemExit(f"--history-hours must be in (0, {MAX_HISTORY_HOURS:g}] (seeding ~0.4 ms per event)")
    seed_assets = ASSETS

    import dagster
    wall = time.monotonic()
    harness_cpu = self_cpu_seconds()
    print(f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {py_platform.platform()}, "
          f"{cpu_model()}")
    print(f"python {py_platform.python_version()}, dagster {dagster.__version__}, product at {git_revision()}")
    print(machine_line(f"start {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"))
    print(f"command: python benchmarks/ui_pages.py {' '.join(argv if argv is not None else sys.argv[1:])}", flush=True)

    documents, sources = ui_documents(OPERATIONS)
    print("UI documents (from the bundle's source maps): " +
          ", ".join(f"{n} ({sources[n].split('/src/')[-1]})" for n in OPERATIONS), flush=True)
    all_symbols = symbols_for(args.symbols + 1)
    symbols, extra_symbol = all_symbols[:-1], all_symbols[-1]

    if args.reuse:
        tmp = Path(args.reuse).resolve()
        cwd, home = tmp / "project", tmp / "dagster_home"
        if not (home / SEEDED_FILE).exists():
            raise SystemExit(f"--reuse {tmp}: no {SEEDED_FILE} in {home} (a folder kept by --keep)")
    else:
        tmp = Path(tempfile.mkdtemp(prefix="acts-ui-pages-"))
        cwd = tmp / "project"
        home = tmp / "dagster_home"
        cwd.mkdir()
        home.mkdir()
        shutil.copyfile(PROJECT / "workspace.yaml", cwd / "workspace.yaml")
        shutil.copyfile(PROJECT / "dagster.yaml", cwd / "dagster.yaml")
        shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    windows: list[Window] = []
    failed = 0
    try:
        if args.reuse:
            seeded, args.history_hours = load_seeded(home, len(symbols))
            os.environ["DAGSTER_HOME"] = str(home)
            print(f"reusing the instance seeded in {home} ({seeded.runs:,} minute runs, "
                  f"{seeded.first_minute:%Y-%m-%d %H:%M} to {seeded.last_minute:%Y-%m-%d %H:%M} UTC)", flush=True)
        else:
            minutes = round(args.history_hours * 60)
            log(f"seeding {minutes} minute runs x {len(symbols)} symbols x {len(seed_assets)} assets into {home}")
            print(machine_line(f"seeding start {datetime.now(UTC):%H:%M:%S} UTC"), flush=True)
            seeded = seed(home, symbols, minutes, seed_assets)
            save_seeded(home, seeded, len(symbols), args.history_hours)
            print(machine_line(f"seeding end {datetime.now(UTC):%H:%M:%S} UTC"), flush=True)
        for hours in windows_hours:
            try:
                windows.append(measure_window(hours, cwd, home, documents, symbols, extra_symbol, seeded,
                                              args.backfill_minutes, args.quiet_wait, args.backfill_max_keys,
                                              not args.no_warm_up))
            except Exception as exc:  # noqa: BLE001 - report it, and still print what was measured
                failed += 1
                print(f"window {hours} h: FAILED: {type(exc).__name__}: {exc}"[:4000], flush=True)
        print(f"history seeded (same for every column): {args.history_hours:g} hour(s) = {seeded.runs:,} minute runs, "
              f"{seeded.cells:,} cells ({len(symbols)} symbols x {len(seed_assets)} assets)")
        if windows:
            print_table(windows, len(symbols), args.backfill_minutes)
        print("figures: seconds per GraphQL request, wall time at the client; cold = first call in a fresh "
              "webserver, after the partition status warm-up the product runs after each reload (with "
              "--no-warm-up, partition queries include rebuilding the status cache, whose key includes the "
              "window's start); warm = median of 3; a page = sum of its requests; * = 1-minute load above 1.5 "
              "before or after the call")
        print_growth(seeded, len(symbols), args.history_hours, seed_assets)
        if args.prune_hour:
            print(prune_oldest_hour(home, seeded), flush=True)
    finally:
        if args.keep or args.reuse:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(machine_line(f"end {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"))
    print(f"total run time {time.monotonic() - wall:.0f} s; harness CPU (this process, seeding included): "
          f"{self_cpu_seconds() - harness_cpu:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
