"""Benchmark: Dagster UI pages (asset page, partitions tab, launch and backfill dialogs) through the
real webserver over a seeded instance: against the size of the minute partition window, or
(`--history`) with a year of the history assets' runs beside the live window.

    python benchmarks/ui_pages.py [--symbols 100] [--window-hours 6,24,168,720] [--history-hours 7]
    python benchmarks/ui_pages.py --history [--symbols 500] [--history-days 365] [--history-months 12]

What it does (window columns; `--history` below):

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
   variables the UI passes (the requests and variables headless chromium sees the UI of Dagster
   1.13 send on each page):
   - app shell (what any page's first load sends): PermissionsQuery, InstanceWarningQuery,
     CodeLocationStatusQuery, LocationWorkspaceQuery, LocationWorkspaceAssetsQuery,
     AssetRecordsQuery (every asset's record, for the search);
   - asset page (overview of `order_book_snapshot`): AssetViewDefinitionQuery, AssetGraphLiveQuery
     (live data: partition stats, the partitioned checks' statuses), AssetStaleStatusDataQuery,
     AssetOverviewMetadataEventsQuery, AssetsFreshnessInfoQuery, AssetDefinitionCollisionQuery;
   - partitions tab: PartitionHealthQuery (every partition key by dimension and the
     materialization status ranges), AssetPartitionDetailQuery and AssetPartitionStaleQuery for
     the focused partition (the latest seeded minute, first symbol);
   - launch dialog (Materialize... on `order_book_snapshot`): LaunchAssetLoaderQuery,
     LaunchAssetLoaderResourceQuery, PartitionHealthQuery (the dialog's own fetch),
     LaunchAssetWarningsQuery, LaunchpadRootQuery, RunningBackfillsNoticeQuery, AssetsPermissionsQuery;
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
   default (2 hours) is what the default 1-hour window holds at most, with the hourly retention;
   a window longer than the history has the same cells in a longer definition.

Load: 2 cores shared with other benchmarks. The 1-minute load average is printed at the start and
end of every window's measurement; each request records the load before and after it, and a
figure measured while it was above 1.5 is marked `*` (warm calls are re-run, up to 6 in all,
while the load is below 1.5, and the median is taken over the unmarked ones if any). The webserver's own work counts in that load (up to 1 while a long query runs).

`--history` (issue 12's target: every page <= 2 s, cold and warm, with a year of history at 500
symbols; partition keys per asset <= 100,000):

1. One instance (the repo's `dagster.yaml`), N symbols registered, and in it:
   - the live minute window the code location shows by default (ACTS_PARTITION_WINDOW_HOURS' default,
     2 hours before the current hour to now), seeded as the window columns seed it;
   - a year of the history assets' runs (`seed_history`), written as the real runs write them
     (`RunWriter`: the run created from the product's own job with `create_run_for_job`, which
     stores its snapshots and the planned events Dagster writes at creation, then the run's
     events with the assets' own metadata functions where they are pure): per closed UTC day,
     the scheduled runs of `daily_coverage` (its gaps table, heatmap and `day_is_complete`
     evaluation: a WARN every 7th day), `daily_archive` and `mongo_retention`;
     `snapshots_from_boundary_books` for each day with gaps; `features_history` one backfill per
     month; `symbol_month_coverage` the schedule's run at each month's end (every symbol: its
     gap days, heatmap and `month_is_complete` evaluation; the schedule's other daily runs of
     the month are not seeded, see `seed_history`); `klines_history` one backfill per symbol of
     its last 12 months and the month in progress.
2. The real webserver over the product's code location (`workspace.yaml`, default window), the
   partition status warm-up the product sends after each reload, then every page: the app
   shell; `order_book_snapshot`'s asset page, partitions tab, launch dialog and the backfill
   dialog of the three minute assets (as the window columns); and for each history asset its
   asset page, partitions tab (the latest partition focused), events tab (FullPartitionsQuery,
   RecentAssetEventsQuery), launch dialog and backfill dialogs (preview and launch: every day
   of the year; for the month x symbol assets one symbol's last 12 months, as the README's
   backfill, and one month of every symbol), and for `daily_coverage` and `symbol_month_coverage`
   the checks tab (AssetChecksQuery, AssetCheckDetailsQuery) and the check's Partitions tab
   (AssetCheckPartitionHealthQuery and the latest partition's AssetCheckPartitionDetailQuery).
   Then the first PartitionHealthQuery of `klines_history`, `symbol_month_coverage` and
   `order_book_snapshot`, and AssetCheckPartitionHealthQuery of `month_is_complete`, after a
   symbol is added (the symbols dimension is part of their partitions). Cold and warm as above.
3. The table (each page: cold, warm, <= 2 s), the partition keys per partitioned asset now (from
   the webserver's answers) and in a year (the same definitions one year on), what was seeded.
   Exits 1 if a page is over 2 s or a request failed. `--keep` keeps the folder, `--reuse DIR`
   measures it again without seeding.
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
from acts_pipeline.settings import DEFAULT_PARTITION_WINDOW_HOURS as DEFAULT_WINDOW_HOURS  # noqa: E402

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

# the UI's documents used (the requests headless chromium sees the UI send for each page of
# Dagster 1.13, less ShouldShowNux, a one-row lookup outside ui-core)
APP_SHELL_OPERATIONS = ("PermissionsQuery", "InstanceWarningQuery", "CodeLocationStatusQuery", "LocationWorkspaceQuery",
                        "LocationWorkspaceAssetsQuery", "AssetRecordsQuery")
OPERATIONS = APP_SHELL_OPERATIONS + (
    "AssetViewDefinitionQuery", "AssetGraphLiveQuery", "AssetStaleStatusDataQuery",
    "AssetOverviewMetadataEventsQuery", "AssetsFreshnessInfoQuery", "AssetDefinitionCollisionQuery",
    "PartitionHealthQuery", "AssetPartitionDetailQuery", "AssetPartitionStaleQuery", "LaunchAssetLoaderQuery",
    "LaunchAssetLoaderResourceQuery", "LaunchAssetWarningsQuery", "LaunchpadRootQuery", "RunningBackfillsNoticeQuery",
    "AssetsPermissionsQuery", "BackfillPreviewQuery", "LaunchPartitionBackfill",
)
LOCATION = "acts_pipeline"
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


def end_pages(window: Window, watch: LoadWatch, instance, label: str, during: str) -> None:
    """After a window's pages: cancel the backfills the dialogs launched, close the instance, stop
    the load watch and say when the pages ended."""
    from dagster._core.execution.backfill import BulkActionStatus

    for backfill in instance.get_backfills(status=BulkActionStatus.REQUESTED):
        instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))
        window.backfills += 1
    instance.dispose()
    window.max_load1 = watch.stop()
    window.load_end = load_average()
    print(machine_line(f"{label}: end {datetime.now(UTC):%H:%M:%S} UTC (1-min max during {during} "
                       f"{window.max_load1:.2f})"), flush=True)


def shut_down(server: Webserver, watch: LoadWatch | None, window: Window) -> None:
    """Stop the webserver and the load watch whatever happened; note it if the watch killed it."""
    server.stop()
    if watch is not None:
        watch.stop()
        if watch.killed_at:
            window.notes.append(f"webserver stopped by the harness at {watch.killed_at / 2**30:.1f} GB RSS "
                                "(half the memory available): later requests failed")


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


def measure_app_shell(m: Measurer, page: str = "app shell (every page's first load)") -> None:
    """What the UI sends on its first load, whatever the page: permissions, daemon warnings, code
    location status, the location's workspace and assets, every asset's record (the search)."""
    for operation in APP_SHELL_OPERATIONS:
        variables = ({"name": LOCATION} if operation.startswith("LocationWorkspace")
                     else {"limit": 1000} if operation == "AssetRecordsQuery" else {})
        m.measure(page, operation, operation, variables)


def measure_asset_page(m: Measurer, page: str, prefix: str, key: dict, partitioned: bool = True) -> None:
    """An asset's page (Overview), as the UI loads it: definition, live data, staleness, latest
    metadata events, freshness, the definition-collision notice; for an unpartitioned asset the
    Overview's recent events too (the last 7 days)."""
    m.measure(page, f"{prefix}AssetViewDefinitionQuery", "AssetViewDefinitionQuery", {"assetKey": key})
    m.measure(page, f"{prefix}AssetGraphLiveQuery", "AssetGraphLiveQuery", {"assetKeys": [key]})
    m.measure(page, f"{prefix}AssetStaleStatusDataQuery", "AssetStaleStatusDataQuery", {"assetKeys": [key]})
    m.measure(page, f"{prefix}AssetOverviewMetadataEventsQuery", "AssetOverviewMetadataEventsQuery", {"assetKey": key})
    m.measure(page, f"{prefix}AssetsFreshnessInfoQuery", "AssetsFreshnessInfoQuery", {"assetKeys": [key]})
    m.measure(page, f"{prefix}AssetDefinitionCollisionQuery", "AssetDefinitionCollisionQuery", {"assetKeys": [key]})
    if not partitioned:
        after = str(int((datetime.now(UTC) - timedelta(days=7)).timestamp() * 1000))
        m.measure(page, f"{prefix}RecentAssetEventsQuery (7 days)", "RecentAssetEventsQuery",
                  {"limit": 100, "assetKey": key, "after": after,
                   "eventTypeSelectors": ["MATERIALIZATION", "FAILED_TO_MATERIALIZE", "OBSERVATION"]})


def measure_launch_dialog(m: Measurer, page: str, prefix: str, key: dict, partitioned: bool) -> None:
    """Materialize... on one asset: the loader and its job's resources; for a partitioned asset
    the dialog's own requests (partition health, warnings, launchpad, running backfills,
    permissions). Clicking Materialize on an unpartitioned asset launches a run at once: only the
    loader's requests are timed."""
    m.measure(page, f"{prefix}LaunchAssetLoaderQuery", "LaunchAssetLoaderQuery", {"assetKeys": [key]})
    nodes = (m.responses.get("LaunchAssetLoaderQuery", {}).get("data") or {}).get("assetNodes") or [{}]
    repo = nodes[0].get("repository") or {}
    job = (nodes[0].get("jobNames") or ["__ASSET_JOB"])[0]
    names = {"repositoryName": repo.get("name", "__repository__"),
             "repositoryLocationName": (repo.get("location") or {}).get("name", LOCATION)}
    m.measure(page, f"{prefix}LaunchAssetLoaderResourceQuery", "LaunchAssetLoaderResourceQuery",
              {"pipelineName": job, **names})
    if not partitioned:
        return
    m.measure(page, f"{prefix}PartitionHealthQuery (dialog)", "PartitionHealthQuery", {"assetKey": key})
    m.measure(page, f"{prefix}LaunchAssetWarningsQuery", "LaunchAssetWarningsQuery", {"upstreamAssetKeys": []})
    m.measure(page, f"{prefix}LaunchpadRootQuery", "LaunchpadRootQuery",
              {**names, "pipelineName": job, "assetSelection": [key]})
    m.measure(page, f"{prefix}RunningBackfillsNoticeQuery", "RunningBackfillsNoticeQuery", {})
    m.measure(page, f"{prefix}AssetsPermissionsQuery", "AssetsPermissionsQuery", {"assetKeys": [key]})


def measure_minute_pages(m: Measurer, server: Webserver, symbols: list[str], last_minute: datetime,
                         backfill_minutes: int, backfill_max_keys: int, prefix: str = "") -> None:
    """The pages of the minute x symbol assets (`order_book_snapshot`; the backfill dialog of the three):
    asset page, partitions tab, launch dialog, backfill dialog; `last_minute` is the latest seeded
    minute (the focused partition and the end of the backfill's minutes); `prefix` starts each page's name."""
    window = m.window
    key = {"path": [ASSET]}
    keys = [{"path": [a]} for a in ASSETS]
    focused = f"{last_minute:%Y-%m-%d-%H:%M}|{symbols[0]}"

    measure_asset_page(m, f"{prefix}asset page", "", key)

    page = f"{prefix}partitions tab"
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

    measure_launch_dialog(m, f"{prefix}launch dialog", "", key, partitioned=True)
    window.rss_pages = server.peak_rss_mb()

    page = f"{prefix}backfill dialog"
    chosen_minutes = [last_minute - timedelta(minutes=i) for i in range(backfill_minutes)][::-1]
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
        log(f"  {window.hours} h  {label}: skipped, {all_keys:,} partition keys to enumerate")
    else:
        m.measure(page, label, "LaunchPartitionBackfill",
                  {"backfillParams": {"tags": [{"key": "dagster/from_ui", "value": "true"}],
                                      "assetSelection": keys, "partitionNames": names, "fromFailure": False}})
    window.rss_backfill = server.peak_rss_mb()


def measure_window(hours: int, cwd: Path, home: Path, documents: dict[str, str], symbols: list[str],
                   extra_symbol: str, seeded: Seeded, backfill_minutes: int, quiet_wait: float,
                   backfill_max_keys: int, warm_up: bool) -> Window:
    from dagster import DagsterInstance

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
        measure_app_shell(m)
        measure_minute_pages(m, server, symbols, seeded.last_minute, backfill_minutes, backfill_max_keys)
        key = {"path": [ASSET]}

        # a new symbol changes the dynamic partitions, hence the partitions definition's id: the
        # status cache is rebuilt from every event on the next partition query
        instance = DagsterInstance.get()
        instance.add_dynamic_partitions("symbols", [extra_symbol])
        m.measure("symbol change", "PartitionHealthQuery after adding a symbol", "PartitionHealthQuery",
                  {"assetKey": key}, warm=False)
        instance.delete_dynamic_partition("symbols", extra_symbol)
        m.measure("symbol change", "PartitionHealthQuery after removing it", "PartitionHealthQuery",
                  {"assetKey": key}, warm=False)
        end_pages(window, watch, instance, f"window {hours} h", "it")
    finally:
        shut_down(server, watch, window)
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
          f"hourly): ~{(DEFAULT_WINDOW_HOURS + 1) / 24 * per_day / 2**30:.1f} GB at the default "
          f"{DEFAULT_WINDOW_HOURS}-hour window, "
          f"~{(30 + 1) * per_day / 2**30:.0f} GB if 30 days were kept (SQLite reuses freed pages; the files do "
          f"not shrink without VACUUM)")
    print(f"seeding: {seeded.seconds:.0f} s, {seeded.event_seconds / max(seeded.cells, 1) * 1000:.2f} ms per "
          f"materialization in store_event_batch (100-cell batches), minutes {seeded.first_minute:%Y-%m-%d %H:%M} to "
          f"{seeded.last_minute:%Y-%m-%d %H:%M} UTC")


# ------------------------------------------------------------------------------------------------
# --history: a year of the history assets' runs beside the live minute window, and their pages

COVERAGE_ASSET = "daily_coverage"
CHECK_NAME = "day_is_complete"  # coverage_assets.CHECK_NAME
KLINES_HISTORY = "klines_history"
MONTH_COVERAGE_ASSET = "symbol_month_coverage"
MONTH_CHECK_NAME = "month_is_complete"  # symbol_coverage.CHECK_NAME
#: The history assets of the code location (acts_pipeline/definitions.py), in the order measured.
HISTORY_ASSETS = (COVERAGE_ASSET, MONTH_COVERAGE_ASSET, KLINES_HISTORY, "features_history",
                  "snapshots_from_boundary_books", "daily_archive", "mongo_retention")
#: The check of each history asset that has one, with partitions.
HISTORY_CHECKS = {COVERAGE_ASSET: CHECK_NAME, MONTH_COVERAGE_ASSET: MONTH_CHECK_NAME}
DAY_ASSETS = (COVERAGE_ASSET, "features_history", "snapshots_from_boundary_books", "daily_archive")
HISTORY_OPERATIONS = OPERATIONS + ("RecentAssetEventsQuery", "FullPartitionsQuery", "AssetChecksQuery",
                                   "AssetCheckDetailsQuery", "AssetCheckPartitionHealthQuery",
                                   "AssetCheckPartitionDetailQuery")
HISTORY_SEEDED_FILE = "ui_pages_history_seeded.json"
#: Every this many days, a day with gaps (a few symbols missing an hour or some minutes), filled
#: two days later by snapshots_from_boundary_books, within the recorder's retention.
GAP_EVERY_DAYS = 7
ASSET_JOB = "__ASSET_JOB"


@dataclass
class HistorySeeded:
    symbols: int = 0
    days: list[str] = field(default_factory=list)
    months: list[str] = field(default_factory=list)
    runs: dict[str, int] = field(default_factory=dict)
    materializations: dict[str, int] = field(default_factory=dict)
    check_evaluations: int = 0
    seconds: float = 0.0
    bytes_before: int = 0
    bytes_after: int = 0
    coverage_event_bytes: int = 0
    keys_in_a_year: dict[str, int] = field(default_factory=dict)
    live: dict = field(default_factory=dict)  # the live minute window's Seeded, as JSON


def product_definitions():
    """The code location's own `Definitions` (acts_pipeline/definitions.py), as the webserver loads
    it; nothing is read from MongoDB."""
    os.environ["ACTS_MONGO_URI"] = "mongodb://127.0.0.1:1"
    from acts_pipeline.definitions import defs

    return defs()


def gap_masks(index: int, symbols: list[str], collection_index: int) -> dict[str, dict[int, int]]:
    """The synthetic gaps of day number `index` in one collection: every `GAP_EVERY_DAYS`th day
    a few symbols miss an hour and some minutes; {symbol: {hour: minute mask}} of those symbols."""
    from acts_pipeline.core.coverage import FULL_HOUR

    gaps: dict[str, dict[int, int]] = {}
    if index % GAP_EVERY_DAYS == GAP_EVERY_DAYS - 1:
        full = {h: FULL_HOUR for h in range(24)}
        for k in range(1 + (index + collection_index) % 12):
            symbol = symbols[(index * 13 + k * 37) % len(symbols)]
            gaps[symbol] = {**full, (index + k) % 24: 0, (index + 5) % 24: FULL_HOUR & ~(0b1011 << (k % 50))}
    return gaps


def coverage_day(day: datetime, symbols: list[str], index: int):
    """`daily_coverage`'s own metadata and check result (`coverage_assets.coverage_metadata` and
    `coverage_check`) for a synthetic day of `symbols` (`gap_masks`: the gaps table and the
    heatmap carry rows every `GAP_EVERY_DAYS`th day); other days are complete."""
    from acts_pipeline.core.coverage import FULL_HOUR, day_coverage
    from acts_pipeline.orchestration.coverage_assets import COLLECTIONS, coverage_check, coverage_metadata

    full = {h: FULL_HOUR for h in range(24)}
    tracked = dict.fromkeys(symbols, day - timedelta(days=400))
    days = [day_coverage(name, day, {**dict.fromkeys(symbols, full), **gap_masks(index, symbols, c)}, tracked, symbols)
            for c, name in enumerate(COLLECTIONS)]
    return coverage_metadata(days), coverage_check(days)


def month_coverage_run(month: datetime, days: list[datetime], first_index: int, symbols: list[str]):
    """What one run of `symbol_month_coverage` over `month` x `symbols` writes: per symbol its
    materialization (`symbol_coverage.month_metadata` of the month's closed `days`, whose day
    numbers start at `first_index`) and its `month_is_complete` evaluation, and the run's summary
    check result."""
    from dagster import AssetCheckEvaluation, AssetCheckResult, AssetCheckSeverity, AssetMaterialization

    from acts_pipeline.core.coverage import FULL_HOUR, day_coverage
    from acts_pipeline.orchestration.coverage_assets import COLLECTIONS
    from acts_pipeline.orchestration.symbol_coverage import CHECK_NAME as MONTH_CHECK, month_metadata

    full = {h: FULL_HOUR for h in range(24)}
    gaps = [[gap_masks(first_index + d, symbols, c) for c in range(len(COLLECTIONS))] for d in range(len(days))]
    materializations, evaluations, with_gaps = [], [], []
    for symbol in symbols:
        tracked = {symbol: month - timedelta(days=400)}
        symbol_days = [[day_coverage(name, day, {symbol: gaps[d][c].get(symbol, full)}, tracked, [symbol])
                        for c, name in enumerate(COLLECTIONS)] for d, day in enumerate(days)]
        metadata, missing = month_metadata(symbol, month, symbol_days)
        key = f"{month:%Y-%m-%d}|{symbol}"
        materializations.append(AssetMaterialization(asset_key=MONTH_COVERAGE_ASSET, partition=key, metadata=metadata))
        lacking = {name: n for name, n in missing.items() if n}
        if lacking:
            with_gaps.append(f"{symbol} {month:%Y-%m}")
        evaluations.append(AssetCheckEvaluation(
            asset_key=materializations[-1].asset_key, check_name=MONTH_CHECK, partition=key, passed=not lacking,
            severity=AssetCheckSeverity.WARN,
            description=(f"{symbol} {month:%Y-%m}: missing minutes: " + ", ".join(f"{n} {m}" for n, m in lacking.items()))
            if lacking else f"{symbol} {month:%Y-%m}: complete over {len(days)} closed day(s)"))
    summary = AssetCheckResult(
        check_name=MONTH_CHECK, passed=not with_gaps, severity=AssetCheckSeverity.WARN,
        description=(f"{len(with_gaps)} of {len(symbols)} (month, symbol) with gaps: " + ", ".join(with_gaps[:10])
                     + (" ..." if len(with_gaps) > 10 else "")) if with_gaps else f"all {len(symbols)} (month, symbol) complete")
    return materializations, evaluations, summary


def klines_month_metadata(month_key: str, symbol: str, now: datetime, index: int) -> dict:
    """`klines_history`'s own metadata of one stored month (`history_klines._month_metadata`)."""
    from acts_pipeline.orchestration.history_klines import Month, _month_metadata, month_key_parts, next_month

    start, _ = month_key_parts(f"{month_key}|{symbol}")
    end = min(next_month(start), now.replace(second=0, microsecond=0) - timedelta(minutes=2))
    month = Month(f"{month_key}|{symbol}", symbol, start, end)
    month.rows = month.minutes - index % 3  # a minute or two without a kline now and then
    month.requests = -(-month.minutes // 1000)
    month.first, month.last = start, end - timedelta(minutes=1)
    return _month_metadata(month)


def features_day_metadata(day: datetime, symbols: int, archived: bool) -> dict:
    """What `features_history` writes for one day (its metadata keys); `archived`: a day past
    MongoDB's snapshot retention, read back from the Parquet archive."""
    snapshots = symbols * 1440
    return {"snapshots": snapshots, "features_inserted": 0, "features_replaced": snapshots,
            "snapshots_from_mongodb": 0 if archived else snapshots, "snapshots_from_archive": snapshots if archived else 0,
            "symbols": symbols, "first_minute": f"{day:%Y-%m-%d}-00:00", "last_minute": f"{day:%Y-%m-%d}-23:59",
            "seconds": 212.4}


def boundary_day_metadata(symbols: list[str], day: datetime, index: int) -> dict:
    """`snapshots_from_boundary_books`' own metadata (`DayFill.metadata`) of a day with gaps,
    filled from the recorder's books but for a few cells."""
    from acts_pipeline.orchestration.history_snapshots import NO_BOOK, DayFill

    fill = DayFill()
    gap_symbols = [symbols[(index * 13 + k * 37) % len(symbols)] for k in range(1 + index % 12)]
    for k, symbol in enumerate(gap_symbols):
        fill.filled += 60
        fill.filled_by_symbol[symbol] += 60
        if k % 3 == 0:
            fill.miss(symbol, NO_BOOK, 3)
    fill.stored["stream"] = len(symbols) * 1440 - fill.filled - sum(fill.missing.values()) - 40
    fill.stored["rest"] = 40
    return fill.metadata(len(symbols), day - timedelta(days=6), 38.2)


def archive_day_metadata(day: datetime, symbols: int) -> dict:
    """`daily_archive`'s metadata keys for one day (rows, bytes, sha256, path per collection, the
    files table)."""
    import hashlib

    from dagster import MetadataValue

    root = "/srv/acts/.acts/archive"
    metadata: dict = {"day": f"{day:%Y-%m-%d}", "archive_root": root}
    lines = ["| collection | rows | MB | sha256 | path |", "|---|---|---|---|---|"]
    for short, collection, per_row in (("snapshots", "order_book_snapshots", 1650), ("features", "order_book_features", 160),
                                       ("klines", "klines_1m", 48)):
        rows, size = symbols * 1440, symbols * 1440 * per_row
        digest = hashlib.sha256(f"{collection}{day}".encode()).hexdigest()
        path = f"{collection}/date={day:%Y-%m-%d}/part-0.parquet"
        metadata[f"{short}_rows"] = MetadataValue.int(rows)
        metadata[f"{short}_bytes"] = MetadataValue.int(size)
        metadata[f"{short}_sha256"] = MetadataValue.text(digest)
        metadata[f"{short}_path"] = MetadataValue.path(f"{root}/{path}")
        lines.append(f"| {collection} | {rows:,} | {size / 1e6:.1f} | {digest[:16]} | {path} (written) |")
    metadata["files"] = MetadataValue.md("\n".join(lines))
    return metadata


def retention_metadata(day: datetime, symbols: int) -> dict:
    """`mongo_retention`'s metadata keys for one run (snapshots kept 30 days: one day deleted)."""
    from dagster import MetadataValue

    deleted = f"{day - timedelta(days=31):%Y-%m-%d}"
    metadata: dict = {}
    for short, days in (("snapshots", "30"), ("features", "forever"), ("klines", "forever")):
        metadata[f"{short}_retention_days"] = MetadataValue.text(days)
        metadata[f"{short}_deleted"] = MetadataValue.int(symbols * 1440 if short == "snapshots" else 0)
        metadata[f"{short}_days_deleted"] = MetadataValue.int(1 if short == "snapshots" else 0)
        metadata[f"{short}_days_kept"] = MetadataValue.int(0)
    metadata["days"] = MetadataValue.md("| collection | day | deleted | kept | why |\n|---|---|---|---|---|\n"
                                        f"| order_book_snapshots | {deleted} | {symbols * 1440:,} | 0 | archived and "
                                        "verified |")
    return metadata


class RunWriter:
    """Writes runs into the instance as the history assets' real runs leave them (checked against
    runs of each asset in process): the run created by `DagsterInstance.create_run_for_job` from
    the product's own job, which stores its job and execution plan snapshots and the
    ASSET_MATERIALIZATION_PLANNED (one per partition: the SQLite event log does not store
    partition subsets) and ASSET_CHECK_EVALUATION_PLANNED events Dagster writes when a run is
    created; then the run's events with their timestamps: RUN_ENQUEUED, RUN_STARTING,
    RUN_START, the engine and resource events, STEP_START, the asset's own events (its
    materializations with the asset's metadata, the output's STEP_OUTPUT with the same metadata
    where the asset returns a `MaterializeResult`, its check evaluation, the klines run summary
    observation), STEP_SUCCESS, the engine's end and RUN_SUCCESS. Not written: the compute log
    capture event and the steps' log lines (no asset view reads them)."""

    def __init__(self, instance, definitions):
        self.instance = instance
        self.definitions = definitions
        self.plans: dict[tuple[str, str], tuple] = {}
        self.pid = os.getpid()
        self.runs: dict[str, int] = {}
        self.materializations: dict[str, int] = {}
        self.check_evaluations = 0

    def _job(self, job_name: str, asset: str):
        from dagster import AssetKey
        from dagster._core.execution.api import create_execution_plan

        if (job_name, asset) not in self.plans:
            job_def = self.definitions.resolve_job_def(job_name)
            if job_name == ASSET_JOB:
                job_def = job_def.get_subset(asset_selection={AssetKey(asset)})
            self.plans[(job_name, asset)] = (job_def, create_execution_plan(job_def))
        return self.plans[(job_name, asset)]

    def _entry(self, run_id: str, job_name: str, kind, timestamp: float, message: str, data=None,
               step_key: str | None = None, compute: bool = False):
        from dagster._core.definitions.dependency import NodeHandle
        from dagster._core.events import DagsterEvent
        from dagster._core.events.log import EventLogEntry
        from dagster._core.execution.plan.handle import StepHandle

        node = NodeHandle(step_key, None) if step_key else None
        logging_tags = ({"job_name": job_name, "op_name": step_key, "resource_fn_name": "None",
                         "resource_name": "None", "run_id": run_id, "step_key": step_key} if compute else {})
        event = DagsterEvent(event_type_value=kind.value, job_name=job_name, message=message, pid=self.pid,
                             step_handle=StepHandle(node) if node else None, node_handle=node if compute else None,
                             step_kind_value="COMPUTE" if compute else None, logging_tags=logging_tags,
                             event_specific_data=data)
        return EventLogEntry(error_info=None, level=10, user_message=message, run_id=run_id, timestamp=timestamp,
                             step_key=step_key, job_name=job_name, dagster_event=event)

    def run(self, job_name: str, asset: str, tags: dict[str, str], started: datetime, materializations: list,
            output_metadata: dict | None = None, check=None, observation=None, seconds: float = 20.0,
            logged_checks: list | None = None, check_targets_latest: bool = True) -> str:
        """One run of `asset` (through `job_name`) that started at `started` and stored
        `materializations` (`AssetMaterialization`s with the asset's metadata); `logged_checks`:
        `AssetCheckEvaluation`s the step logs itself (one per partition, `context.log_event`);
        `check`: the `AssetCheckResult` the step returns (its output and evaluation, on the
        latest materialization if `check_targets_latest`, with the first materialization's
        partition); `observation`: metadata of the run's summary observation."""
        from dagster import AssetCheckEvaluation, AssetKey
        from dagster._core.definitions.asset_checks.asset_check_evaluation import (
            AssetCheckEvaluationTargetMaterializationData,
        )
        from dagster._core.events import (
            AssetObservationData,
            DagsterEventType as T,
            EngineEventData,
            StepMaterializationData,
            StepOutputData,
            StepSuccessData,
        )
        from dagster._core.execution.plan.objects import TypeCheckData
        from dagster._core.execution.plan.outputs import StepOutputHandle
        from dagster import AssetObservation

        job_def, plan = self._job(job_name, asset)
        selection = {AssetKey(asset)} if job_name == ASSET_JOB else None
        run = self.instance.create_run_for_job(job_def, execution_plan=plan, tags=tags, asset_selection=selection)
        run_id, job = run.run_id, run.job_name
        storage = self.instance.event_log_storage
        t = started.timestamp()
        e = lambda kind, dt, message, data=None, step=None, compute=False: self._entry(  # noqa: E731
            run_id, job, kind, t + dt, message, data, step, compute)
        pid_data = EngineEventData(metadata={"pid": str(self.pid), "step_keys": str([asset])})
        storage.store_event(e(T.RUN_ENQUEUED, -1.5, "Run enqueued."))
        head = [e(T.RUN_STARTING, -1.0, "Run starting."),
                e(T.RUN_START, 0.0, f'Started execution of run for "{job}".'),
                e(T.ENGINE_EVENT, 0.01, f"Executing steps in process (pid: {self.pid})", pid_data),
                e(T.RESOURCE_INIT_STARTED, 0.02, "Starting initialization of resources [io_manager, mongo].",
                  EngineEventData(marker_start="resources"), asset),
                e(T.RESOURCE_INIT_SUCCESS, 0.03, "Finished initialization of resources [io_manager, mongo].",
                  EngineEventData(marker_end="resources"), asset),
                e(T.STEP_START, 0.05, f'Started execution of step "{asset}".', None, asset, True)]
        for entry in head:
            self.instance.handle_new_event(entry)
        step = seconds / max(1, len(materializations))
        events = [e(T.ASSET_MATERIALIZATION, 0.1 + i * step, f"Materialized value {asset}.",
                    StepMaterializationData(mat), asset, True) for i, mat in enumerate(materializations)]
        if output_metadata is not None:  # a MaterializeResult's metadata is the output's too
            self.instance.handle_new_event(e(
                T.STEP_OUTPUT, seconds, 'Yielded output "result" of type "Nothing". (Type check passed).',
                StepOutputData(StepOutputHandle(asset, "result"), TypeCheckData(True, "result"),
                               metadata=output_metadata), asset, True))
        if len(events) > 1:
            storage.store_event_batch(events)
        elif events:
            self.instance.handle_new_event(events[0])
        self.materializations[asset] = self.materializations.get(asset, 0) + len(events)
        done = seconds + 0.1
        for i, evaluation in enumerate(logged_checks or []):
            self.instance.handle_new_event(e(
                T.ASSET_CHECK_EVALUATION, 0.1 + i * step, f"Asset check '{evaluation.check_name}' on '{asset}' "
                + ("passed." if evaluation.passed else "did not pass.") + f" Description: '{evaluation.description}'",
                evaluation, asset, True))
            self.check_evaluations += 1
        if check is not None:
            target = None
            if check_targets_latest:
                record = self.instance.fetch_materializations(AssetKey(asset), limit=1).records[0]
                target = AssetCheckEvaluationTargetMaterializationData(
                    storage_id=record.storage_id, run_id=run_id, timestamp=record.timestamp)
            evaluation = AssetCheckEvaluation(
                asset_key=AssetKey(asset), check_name=check.check_name, passed=check.passed, severity=check.severity,
                description=check.description, metadata=check.metadata,
                partition=materializations[0].partition if check_targets_latest else None,
                target_materialization_data=target)
            self.instance.handle_new_event(e(
                T.STEP_OUTPUT, done, f'Yielded output "{asset}_{check.check_name}" of type "Any". (Type check passed).',
                StepOutputData(StepOutputHandle(asset, f"{asset}_{check.check_name}"),
                               TypeCheckData(True, f"{asset}_{check.check_name}")), asset, True))
            self.instance.handle_new_event(e(
                T.ASSET_CHECK_EVALUATION, done, f"Asset check '{check.check_name}' on '{asset}' "
                + ("passed." if check.passed else "did not pass.") + f" Description: '{check.description}'",
                evaluation, asset, True))
            self.check_evaluations += 1
        if observation is not None:
            self.instance.handle_new_event(e(
                T.ASSET_OBSERVATION, done, f"DagsterEventType.ASSET_OBSERVATION for step {asset}",
                AssetObservationData(AssetObservation(asset_key=asset, metadata=observation)), asset, True))
        tail = [e(T.STEP_SUCCESS, done + 0.01, f'Finished execution of step "{asset}" in {done:.1f}s.',
                  StepSuccessData(duration_ms=done * 1000), asset, True),
                e(T.ENGINE_EVENT, done + 0.02, f"Finished steps in process (pid: {self.pid}) in {done:.1f}s", pid_data),
                e(T.RUN_SUCCESS, done + 0.1, f'Finished execution of run for "{job}".')]
        for entry in tail:
            self.instance.handle_new_event(entry)
        self.runs[asset] = self.runs.get(asset, 0) + 1
        return run_id


def seed_history(home: Path, symbols: list[str], n_days: int, n_months: int) -> HistorySeeded:
    """A year of the history assets' runs at `len(symbols)` symbols (already registered), oldest
    first, as an operator's platform leaves them (`RunWriter`):

    - per closed UTC day of the last `n_days`: `daily_coverage_schedule`'s run of `daily_coverage`
      (its real metadata, gaps table and heatmap, and its `day_is_complete` evaluation: a WARN
      every `GAP_EVERY_DAYS`th day), `daily_archive_schedule`'s of `daily_archive` and
      `mongo_retention_schedule`'s of `mongo_retention`;
    - `klines_history`: each symbol's last `n_months` months and the month in progress, one
      single-run backfill per symbol (the README's backfill of a symbol's year), each month
      materialized with the asset's metadata, and the run's summary observation;
    - `features_history`: one single-run backfill per month of days;
    - `symbol_month_coverage`: at each month's end, `symbol_month_coverage_schedule`'s run over
      that month x every symbol (its metadata, gap days table and day x hour heatmap per symbol,
      and `month_is_complete` per (month, symbol)). The schedule also runs on every other day of
      the month, each run replacing the month's state so far: those 29 or so runs a month are not
      seeded (they would take about 8 ms per check evaluation to write, half an hour a year at 500
      symbols); the partition views show the same, and only a cold rebuild of the status caches
      scans them.
    - `snapshots_from_boundary_books`: each day with gaps, two days later (within the recorder's
      retention).
    """
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import AssetMaterialization, DagsterInstance
    from dagster._serdes import serialize_value

    from acts_pipeline.orchestration import coverage_assets
    from acts_pipeline.orchestration.history_partitions import day_partitions, month_symbol_partitions

    from acts_pipeline.orchestration import symbol_coverage

    if (coverage_assets.CHECK_NAME, symbol_coverage.CHECK_NAME) != (CHECK_NAME, MONTH_CHECK_NAME):
        raise SystemExit(f"the checks are {coverage_assets.CHECK_NAME} and {symbol_coverage.CHECK_NAME}, not "
                         f"{CHECK_NAME} and {MONTH_CHECK_NAME}: update this script")
    result = HistorySeeded(symbols=len(symbols))
    started = time.perf_counter()
    definitions = product_definitions()
    instance = DagsterInstance.get()
    writer = RunWriter(instance, definitions)
    checkpoint(home)
    result.bytes_before = history_bytes(home)
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=n_days - i) for i in range(n_days)]
    result.days = [f"{d:%Y-%m-%d}" for d in days]
    months = sorted({f"{d:%Y-%m-01}" for d in days} | {f"{today:%Y-%m-01}"})[-(n_months + 1):]
    result.months = months

    def backfill_tags(first: str, last: str) -> dict[str, str]:
        return {"dagster/backfill": uuid.uuid4().hex[:8], "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last}

    # klines_history first: the symbols' year, backfilled when the platform was set up
    t0 = time.perf_counter()
    for n, symbol in enumerate(symbols):
        mats = [AssetMaterialization(asset_key=KLINES_HISTORY, partition=f"{m}|{symbol}",
                                     metadata=klines_month_metadata(m, symbol, now, n + j)) for j, m in enumerate(months)]
        summary = {"months_stored": len(mats), "months_failed": {}, "klines": sum(x.metadata["klines"].value for x in mats),
                   "requests": 526, "weight_used": 1052, "peak_weight_per_minute_seen": 2726,
                   "seconds_paused_for_weight": 41.0, "seconds": 328.0}
        writer.run(ASSET_JOB, KLINES_HISTORY, backfill_tags(f"{months[0]}|{symbol}", f"{months[-1]}|{symbol}"),
                   days[0] + timedelta(minutes=n), mats, observation=summary, seconds=328.0)
        if (n + 1) % 100 == 0:
            log(f"seeded {KLINES_HISTORY}: {n + 1}/{len(symbols)} symbols x {len(months)} months "
                f"({time.perf_counter() - t0:.0f} s), load {load_average()}")
    for i, day in enumerate(days):
        key = f"{day:%Y-%m-%d}"
        after = day + timedelta(days=1)
        metadata, check = coverage_day(day, symbols, i)
        materialization = AssetMaterialization(asset_key=COVERAGE_ASSET, partition=key, metadata=metadata)
        if i == 0:
            result.coverage_event_bytes = len(serialize_value(materialization))
        writer.run("daily_coverage_job", COVERAGE_ASSET,
                   {"dagster/schedule_name": "daily_coverage_schedule", "dagster/partition": key},
                   after + timedelta(minutes=10), [materialization], output_metadata=materialization.metadata,
                   check=check, seconds=24.0)
        mat = AssetMaterialization(asset_key="daily_archive", partition=key, metadata=archive_day_metadata(day, len(symbols)))
        writer.run("daily_archive_job", "daily_archive",
                   {"dagster/schedule_name": "daily_archive_schedule", "dagster/partition": key},
                   after + timedelta(minutes=15), [mat], output_metadata=mat.metadata, seconds=160.0)
        mat = AssetMaterialization(asset_key="mongo_retention", metadata=retention_metadata(after, len(symbols)))
        writer.run("mongo_retention_job", "mongo_retention", {"dagster/schedule_name": "mongo_retention_schedule"},
                   after + timedelta(minutes=45), [mat], output_metadata=mat.metadata, seconds=35.0)
        if i % GAP_EVERY_DAYS == GAP_EVERY_DAYS - 1 and day + timedelta(days=2) < now:
            mat = AssetMaterialization(asset_key="snapshots_from_boundary_books", partition=key,
                                       metadata=boundary_day_metadata(symbols, day, i))
            writer.run(ASSET_JOB, "snapshots_from_boundary_books", {"dagster/backfill": uuid.uuid4().hex[:8],
                                                                    "dagster/partition": key},
                       day + timedelta(days=2, hours=9), [mat], seconds=38.0)
        last_of_month = i == len(days) - 1 or f"{days[i + 1]:%m}" != f"{day:%m}"
        if last_of_month:
            first = next(j for j in range(i + 1) if f"{days[j]:%Y-%m}" == f"{day:%Y-%m}")
            mats = [AssetMaterialization(asset_key="features_history", partition=f"{d:%Y-%m-%d}",
                                         metadata=features_day_metadata(d, len(symbols), (today - d).days > 30))
                    for d in days[first:i + 1]]
            writer.run(ASSET_JOB, "features_history", backfill_tags(mats[0].partition, mats[-1].partition),
                       after + timedelta(hours=8), mats, seconds=212.0 * len(mats))
            # symbol_month_coverage_schedule's run of the day after the month's last (see seed_history)
            month = day.replace(day=1)
            mats, evaluations, summary = month_coverage_run(month, days[first:i + 1], first, symbols)
            writer.run(ASSET_JOB, MONTH_COVERAGE_ASSET,
                       {"dagster/schedule_name": "symbol_month_coverage_schedule",
                        "dagster/asset_partition_range_start": f"{month:%Y-%m-%d}|{symbols[0]}",
                        "dagster/asset_partition_range_end": f"{month:%Y-%m-%d}|{symbols[-1]}"},
                       after + timedelta(minutes=20), mats, logged_checks=evaluations, check=summary,
                       check_targets_latest=False, seconds=60.0)
        if (i + 1) % 73 == 0:
            log(f"seeded {i + 1}/{len(days)} days of {', '.join(DAY_ASSETS)}, mongo_retention "
                f"({time.perf_counter() - t0:.0f} s), load {load_average()}")
    # partition keys in a year, at the same symbols (the live window's are counted in the webserver)
    in_a_year = now + timedelta(days=365)
    for name, partitions_def in ((COVERAGE_ASSET, day_partitions), (KLINES_HISTORY, month_symbol_partitions),
                                 (MONTH_COVERAGE_ASSET, month_symbol_partitions)):
        result.keys_in_a_year[name] = len(partitions_def.get_partition_keys(current_time=in_a_year,
                                                                            dynamic_partitions_store=instance))
    result.runs, result.materializations = writer.runs, writer.materializations
    result.check_evaluations = writer.check_evaluations
    instance.dispose()
    checkpoint(home)
    result.bytes_after = history_bytes(home)
    result.seconds = time.perf_counter() - started
    return result


def save_history_seeded(home: Path, seeded: HistorySeeded, live: Seeded) -> None:
    live_json = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(live).items()}
    (home / HISTORY_SEEDED_FILE).write_text(json.dumps({**vars(seeded), "live": live_json}))


def load_history_seeded(home: Path) -> tuple[HistorySeeded, Seeded]:
    data = json.loads((home / HISTORY_SEEDED_FILE).read_text())
    live = data.pop("live")
    for k in ("first_minute", "last_minute"):
        live[k] = datetime.fromisoformat(live[k])
    return HistorySeeded(**data, live={}), Seeded(**live)


def measure_history_asset(m: Measurer, asset: str, focused: str | None, backfills: list[tuple[str, list[str]]],
                          check: str | None = None) -> None:
    """The pages of one history asset, with the requests the UI sends and their variables:
    asset page, partitions tab with the `focused` partition (None: unpartitioned), events tab,
    the check's tab and its partitions with the focused one (`check`), launch dialog
    (Materialize...), and each backfill dialog of `backfills` ((label, partition keys): the
    preview and the launch)."""
    key = {"path": [asset]}
    partitioned = focused is not None
    measure_asset_page(m, f"{asset}: asset page", f"{asset} ", key, partitioned)
    if partitioned:
        page = f"{asset}: partitions tab"
        m.measure(page, f"{asset} PartitionHealthQuery", "PartitionHealthQuery", {"assetKey": key})
        m.measure(page, f"{asset} AssetPartitionDetailQuery ({focused})", "AssetPartitionDetailQuery",
                  {"assetKey": key, "partitionKey": focused})
        m.measure(page, f"{asset} AssetPartitionStaleQuery ({focused})", "AssetPartitionStaleQuery",
                  {"assetKey": key, "partitionKey": focused})
        page = f"{asset}: events tab"
        m.measure(page, f"{asset} FullPartitionsQuery", "FullPartitionsQuery", {"assetKey": key})
        m.measure(page, f"{asset} RecentAssetEventsQuery (100)", "RecentAssetEventsQuery",
                  {"assetKey": key, "limit": 100, "partitions": [],
                   "eventTypeSelectors": ["MATERIALIZATION", "OBSERVATION", "FAILED_TO_MATERIALIZE"]})
    if check:
        page = f"{asset}: checks tab ({check})"
        m.measure(page, f"{asset} AssetChecksQuery", "AssetChecksQuery", {"assetKey": key})
        m.measure(page, f"{asset} AssetCheckDetailsQuery (31)", "AssetCheckDetailsQuery",
                  {"assetKey": key, "checkName": check, "limit": 31})
        page = f"{asset}: check {check} partitions"
        m.measure(page, f"{asset} AssetCheckPartitionHealthQuery", "AssetCheckPartitionHealthQuery",
                  {"assetKey": key, "checkName": check})
        m.measure(page, f"{asset} AssetCheckPartitionDetailQuery ({focused})", "AssetCheckPartitionDetailQuery",
                  {"assetKey": key, "checkName": check, "partitionKey": focused})
    measure_launch_dialog(m, f"{asset}: launch dialog", f"{asset} ", key, partitioned)
    for label, names in backfills:
        page = f"{asset}: backfill dialog ({label})"
        m.measure(page, f"{asset} BackfillPreviewQuery ({len(names):,} keys)", "BackfillPreviewQuery",
                  {"partitionNames": names, "assetKeys": [key]})
        m.measure(page, f"{asset} LaunchPartitionBackfill ({len(names):,} keys)", "LaunchPartitionBackfill",
                  {"backfillParams": {"tags": [{"key": "dagster/from_ui", "value": "true"}], "assetSelection": [key],
                                      "partitionNames": names, "fromFailure": False}})


def partition_key_count(response: dict) -> int | None:
    """The partition keys of a PartitionHealthQuery response: the product of its dimensions'."""
    try:
        dims = response["data"]["assetNodeOrError"]["partitionKeysByDimension"]
    except (KeyError, TypeError):
        return None
    count = 1
    for dim in dims:
        count *= len(dim["partitionKeys"])
    return count if dims else None


def measure_history(cwd: Path, home: Path, documents: dict[str, str], symbols: list[str], extra_symbol: str,
                    seeded: HistorySeeded, live: Seeded, args: argparse.Namespace) -> tuple[Window, dict[str, int]]:
    """The real webserver over the product's code location (default live window), and every
    page: the live minute assets' (as the window columns), then each history asset's; then the
    first partition query of `klines_history` and `order_book_snapshot` after a symbol is added
    (the symbols dimension changes: their status caches are rebuilt). Returns the figures and the
    partition keys per partitioned asset, from the webserver's PartitionHealthQuery answers."""
    from dagster import DagsterInstance

    from acts_pipeline.settings import DEFAULT_PARTITION_WINDOW_HOURS

    window = Window(DEFAULT_PARTITION_WINDOW_HOURS)
    keys: dict[str, int] = {}
    watch = None
    server = Webserver(cwd, home, DEFAULT_PARTITION_WINDOW_HOURS, cwd / "webserver_history.log")
    try:
        window.load_s = server.wait_loaded()
        log(f"history: code location loaded in {window.load_s:.1f} s (port {server.port})")
        if not args.no_warm_up:
            from acts_pipeline.platform.window_reload import WARM_QUERY

            t0 = time.perf_counter()
            body, _ = server.post({"query": WARM_QUERY}, timeout=HEAVY_TIMEOUT)
            window.warm_up_s = time.perf_counter() - t0
            if body.get("errors"):
                window.notes.append(f"warm-up query failed: {body['errors'][0].get('message')}"[:300])
            log(f"history: partition status warmed up in {window.warm_up_s:.1f} s")
        wait_for_quiet(args.quiet_wait)
        window.load_start = load_average()
        print(machine_line(f"pages: start {datetime.now(UTC):%H:%M:%S} UTC"), flush=True)
        watch = LoadWatch(server, rss_limit=int(0.5 * (mem_available() + read_rss(server.process.pid))))
        m = Measurer(server, documents, window)
        body, _ = server.post({"query": "{ assetNodes { assetKey { path } } }"}, timeout=120)
        have = {"/".join(n["assetKey"]["path"]) for n in (body.get("data") or {}).get("assetNodes") or []}
        missing = set(HISTORY_ASSETS) - have
        if missing:
            raise RuntimeError(f"the code location has no {', '.join(sorted(missing))} (acts_pipeline/definitions.py)")

        measure_app_shell(m)
        measure_minute_pages(m, server, symbols, live.last_minute, args.backfill_minutes, args.backfill_max_keys,
                             prefix=f"{ASSET}: ")
        keys[ASSET] = window.minute_partitions * len(symbols)
        last_day = seeded.days[-1]
        month_keys = [f"{month}|{symbols[0]}" for month in seeded.months]
        closed_months = month_keys[-13:-1]  # the last 12 closed months of one symbol
        for asset in HISTORY_ASSETS:
            if asset in (KLINES_HISTORY, MONTH_COVERAGE_ASSET):
                focused = month_keys[-2]
                backfills = [(f"1 symbol x {len(closed_months)} months", closed_months),
                             (f"1 month x {len(symbols)} symbols", [f"{seeded.months[-2]}|{s}" for s in symbols])]
            elif asset == "mongo_retention":
                focused, backfills = None, []
            else:
                focused = last_day
                backfills = [(f"{len(seeded.days)} days", seeded.days)]
            measure_history_asset(m, asset, focused, backfills, HISTORY_CHECKS.get(asset))
            if focused is not None:
                count = partition_key_count(m.responses.get("PartitionHealthQuery", {}))
                if count is not None:
                    keys[asset] = count
        window.rss_pages = server.peak_rss_mb()

        # a symbol added from the UI: the symbols dimension changes, and with it the partitions
        # definition's identity that keys the status cache of every asset partitioned by symbol
        instance = DagsterInstance.get()
        instance.add_dynamic_partitions("symbols", [extra_symbol])
        for asset in (KLINES_HISTORY, MONTH_COVERAGE_ASSET, ASSET):
            m.measure("symbol added", f"{asset} PartitionHealthQuery after adding a symbol", "PartitionHealthQuery",
                      {"assetKey": {"path": [asset]}}, warm=False)
        m.measure("symbol added", f"{MONTH_COVERAGE_ASSET} AssetCheckPartitionHealthQuery after adding a symbol",
                  "AssetCheckPartitionHealthQuery",
                  {"assetKey": {"path": [MONTH_COVERAGE_ASSET]}, "checkName": MONTH_CHECK_NAME}, warm=False)
        instance.delete_dynamic_partition("symbols", extra_symbol)
        window.rss_backfill = server.peak_rss_mb()
        end_pages(window, watch, instance, "pages", "them")
    finally:
        shut_down(server, watch, window)
    return window, keys


def print_history(window: Window, seeded: HistorySeeded, live: Seeded, keys: dict[str, int]) -> int:
    """The table of pages (cold, warm, <= 2 s), the partition keys per asset, what was seeded;
    returns the number of pages over 2 s or with an error."""
    table: list[list[str]] = []
    over = []
    for page, labels in window.pages.items():
        cold, warm, loaded = page_total(window, page)
        errors = [label for label in labels if window.figures[label].error]
        worst = max(cold, warm or 0.0)
        verdict = "-" if page == "symbol added" else ("error" if errors else ("yes" if worst <= 2.0 else "NO"))
        table.append([page.upper(), f"{cold:.2f}{'*' if loaded else ''}", f"{warm:.2f}" if warm is not None else "-",
                      verdict])
        if verdict in ("NO", "error"):
            over.append(page)
        for label in labels:
            f = window.figures[label]
            w, w_loaded = f.warm_seconds
            table.append([f"  {label}", "error" if f.error else f"{f.cold.seconds:.3f}{'*' if f.cold.loaded else ''}",
                          f"{w:.3f}{'*' if w_loaded else ''}" if w is not None else "-", ""])
    print_grid(["page / request", "cold (s)", "warm (s, median of 3)", "page <= 2 s"], table)
    for label, f in window.figures.items():
        if f.error:
            print(f"note: {label}: {f.error}")
    for note in window.notes:
        print(f"note: {note}")
    rows = []
    for asset, count in keys.items():
        in_a_year = seeded.keys_in_a_year.get(asset)
        if asset in ("features_history", "snapshots_from_boundary_books", "daily_archive"):
            in_a_year = seeded.keys_in_a_year.get(COVERAGE_ASSET)  # the same day partitions
        if asset == ASSET:
            in_a_year = count  # the live window does not grow
        rows.append([asset, f"{count:,}", f"{in_a_year:,}" if in_a_year else "-",
                     "yes" if max(count, in_a_year or 0) <= 100_000 else "NO"])
    print_grid(["partitioned asset", f"keys now ({seeded.symbols} symbols)", "keys in a year", "<= 100,000"], rows)
    grown = seeded.bytes_after - seeded.bytes_before
    print(f"seeded: the live window, {live.runs:,} minute runs ({live.first_minute:%H:%M} to {live.last_minute:%H:%M} "
          f"UTC) and {live.cells:,} cell materializations ({seeded.symbols} symbols x 3 assets) in {live.seconds:.0f} s; "
          f"a year of history, {sum(seeded.runs.values()):,} runs ("
          + ", ".join(f"{a} {n:,}" for a, n in seeded.runs.items()) + ") with "
          + ", ".join(f"{a} {n:,}" for a, n in seeded.materializations.items())
          + f" materializations and {seeded.check_evaluations:,} check evaluations "
          f"({seeded.days[0]} .. {seeded.days[-1]}; months {seeded.months[0]} .. {seeded.months[-1]}), "
          f"in {seeded.seconds:.0f} s, event log +{grown / 2**20:.0f} MB (one daily_coverage materialization "
          f"serialized: {seeded.coverage_event_bytes / 1024:.1f} KB with its gaps table and heatmap)")
    print(f"code location load {window.load_s:.1f} s; partition status warm-up "
          + (f"{window.warm_up_s:.1f} s" if window.warm_up_s is not None else "(none)")
          + "; peak RSS after the pages " + ", ".join(f"{k} {v:.0f} MB" for k, v in window.rss_pages.items())
          + ", at the end " + ", ".join(f"{k} {v:.0f} MB" for k, v in window.rss_backfill.items())
          + f"; load avg at start {window.load_start}, at end {window.load_end}, max 1-min {window.max_load1:.2f}; "
          f"{window.backfills} backfills launched and cancelled (no daemon)")
    print("pages over 2 s (cold or warm) or failing: " + (", ".join(over) if over else "none"))
    return len(over)


def run_history(args: argparse.Namespace, argv: list[str] | None) -> int:
    """`--history`: the live minute window and a year of the history assets' runs at N symbols
    in one instance, then every page of the live and history assets through the real webserver."""
    import dagster

    wall = time.monotonic()
    print(f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {py_platform.platform()}, "
          f"{cpu_model()}")
    print(f"python {py_platform.python_version()}, dagster {dagster.__version__}, product at {git_revision()}")
    print(machine_line(f"start {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"))
    print(f"command: python benchmarks/ui_pages.py {' '.join(argv if argv is not None else sys.argv[1:])}", flush=True)
    documents, _ = ui_documents(HISTORY_OPERATIONS)
    all_symbols = symbols_for(args.symbols + 1)
    symbols, extra_symbol = all_symbols[:-1], all_symbols[-1]
    if args.reuse:
        tmp = Path(args.reuse).resolve()
        cwd, home = tmp / "project", tmp / "dagster_home"
        if not (home / HISTORY_SEEDED_FILE).exists():
            raise SystemExit(f"--reuse {tmp}: no {HISTORY_SEEDED_FILE} in {home} (a folder kept by --history --keep)")
    else:
        tmp = Path(tempfile.mkdtemp(prefix="acts-ui-history-"))
        cwd, home = tmp / "project", tmp / "dagster_home"
        cwd.mkdir()
        home.mkdir()
        for name in ("workspace.yaml", "dagster.yaml"):
            shutil.copyfile(PROJECT / name, cwd / name)
        shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    try:
        if args.reuse:
            seeded, live = load_history_seeded(home)
            if seeded.symbols != len(symbols):
                raise SystemExit(f"the instance in {home} was seeded with {seeded.symbols} symbols (--symbols)")
            os.environ["DAGSTER_HOME"] = str(home)
            print(f"reusing the instance seeded in {home}", flush=True)
        else:
            from acts_pipeline.orchestration.partitions import SYMBOLS_PARTITIONS_NAME, window_start
            from acts_pipeline.settings import DEFAULT_PARTITION_WINDOW_HOURS

            print(machine_line(f"seeding start {datetime.now(UTC):%H:%M:%S} UTC"), flush=True)
            os.environ["DAGSTER_HOME"] = str(home)
            from dagster import DagsterInstance

            with DagsterInstance.get() as instance:
                instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, symbols)
            log(f"seeding {args.history_days} days and {args.history_months} months x {len(symbols)} symbols "
                f"of history into {home}")
            seeded = seed_history(home, symbols, args.history_days, args.history_months)
            # then the live window the code location will show (whole hours before this hour, to
            # now), last, so that it is still the window when the webserver loads
            now = datetime.now(UTC)
            minutes = int((now - window_start(now, DEFAULT_PARTITION_WINDOW_HOURS)).total_seconds() // 60)
            log(f"seeding the live window: {minutes} minute runs x {len(symbols)} symbols x {len(ASSETS)} assets")
            live = seed(home, symbols, minutes, ASSETS)
            save_history_seeded(home, seeded, live)
            print(machine_line(f"seeding end {datetime.now(UTC):%H:%M:%S} UTC"), flush=True)
        window, keys = measure_history(cwd, home, documents, symbols, extra_symbol, seeded, live, args)
        failing = print_history(window, seeded, live, keys)
        print("figures: seconds per GraphQL request, wall time at the client; cold = first call in a fresh "
              "webserver, after the partition status warm-up the product sends after each reload (unless "
              "--no-warm-up); warm = median of 3; a page = sum of its requests; * = 1-minute load above 1.5 "
              "before or after the call")
    finally:
        if args.keep or args.reuse:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(machine_line(f"end {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"))
    print(f"total run time {time.monotonic() - wall:.0f} s")
    return 1 if failing else 0


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=None,
                        help="registered symbols (default 100; with --history 500)")
    parser.add_argument("--window-hours", default="1,2,24,168",
                        help="comma-separated minute-window sizes in hours (default 1,2,24,168; above 2160 via "
                             "a wrapper)")
    parser.add_argument("--history-hours", type=float, default=DEFAULT_WINDOW_HOURS + 1.0,
                        help="hours of minute runs seeded (default 2: what the default 1-hour window holds just "
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
    parser.add_argument("--history", action="store_true",
                        help="instead of the window columns: the default live window and a year of the history "
                             "assets' runs in one instance, and every page of the live and history assets")
    parser.add_argument("--history-days", type=int, default=365,
                        help="with --history: closed UTC days of history (default 365)")
    parser.add_argument("--history-months", type=int, default=12,
                        help="with --history: closed months of klines_history per symbol, besides the month in "
                             "progress (default 12)")
    parser.add_argument("--reuse", metavar="DIR",
                        help="measure again on a folder kept by --keep (same seeded history, no seeding)")
    args = parser.parse_args(argv)
    if args.history:
        args.symbols = args.symbols or 500
        return run_history(args, argv)
    args.symbols = args.symbols or 100
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
