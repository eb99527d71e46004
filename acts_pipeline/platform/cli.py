"""`acts-pipeline`: run the platform, manage the tracked symbols, run the exchange simulator."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from acts_pipeline import settings
from acts_pipeline.core.cells import MINUTE_FORMAT
from acts_pipeline.core.errors import ConfigurationError, ExchangeError
from acts_pipeline.storage.collections import CELL_COLLECTIONS

def _project_dir() -> Path:
    """The folder holding workspace.yaml and dagster.yaml: the current one or a parent."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "workspace.yaml").is_file() and (folder / "dagster.yaml").is_file():
            return folder
    raise ConfigurationError("run acts-pipeline from the project folder (the one with workspace.yaml and dagster.yaml)")


def _dagster_home(project: Path, state: Path) -> Path:
    """An existing DAGSTER_HOME, or `dagster_home` with the project's dagster.yaml in the
    environment's ignored state folder (`.acts`, TEST's `.acts-test`).

    A DAGSTER_HOME set by the user must have the project's instance settings: an empty one gets
    them written (and says so); one without them stops here, naming each missing setting
    (acts_pipeline/platform/instance_settings.py)."""
    from acts_pipeline.platform.instance_settings import check_instance_folder

    if os.environ.get("DAGSTER_HOME"):
        home = Path(os.environ["DAGSTER_HOME"])
        if not home.is_absolute():  # Dagster's own rule, said before anything starts
            raise ConfigurationError(f"DAGSTER_HOME must be an absolute path, got {str(home)!r}")
        own = state / "dagster_home"
        wrote = check_instance_folder(
            home, template=project / "dagster.yaml",
            fix=f"ACTS's settings are in {project / 'dagster.yaml'}: copy or merge them in, or unset DAGSTER_HOME to use "
                f"the project's own instance ({own})")
        if wrote:
            _say(wrote)
        return home
    home = state / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project / "dagster.yaml", home / "dagster.yaml")
    return home


RUNTIME_FILE = "runtime.json"
DEFAULT_WEBSERVER_URL = "http://127.0.0.1:3000"


def _runtime_path(state: Path) -> Path:
    return state / RUNTIME_FILE


def _enter_environment(project: Path, chosen: str | None) -> str:
    """Adds the settings of the environment (`--env`, else ACTS_ENV, else DEV) from its file in
    config/ to this process's environment, under what is set already (which wins); its name."""
    from acts_pipeline.platform.environments import environment_settings

    os.environ.update(environment_settings(project, os.environ, chosen=chosen))
    return settings.acts_env()


def _use_running_platform(chosen: str | None) -> None:
    """Point this command at the platform `acts-pipeline dev` is running here in its environment
    (`--env`, else ACTS_ENV, else DEV), for the variables the user did not set: the environment's
    settings, its embedded database, its simulator and its Dagster instance."""
    from acts_pipeline.platform.environments import state_folder

    try:
        project = _project_dir()
    except ConfigurationError:
        if chosen is not None:
            os.environ["ACTS_ENV"] = settings.parse_acts_env(chosen)
        return
    if _enter_environment(project, chosen) == "prod":
        return  # PROD's services and commands have their environment file (deploy/), no local state
    state = state_folder(project, os.environ)
    runtime = _runtime_path(state)
    if runtime.is_file():
        for key, value in json.loads(runtime.read_text()).items():
            os.environ.setdefault(key, value)
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(_dagster_home(project, state))


def _check_configuration() -> None:
    """Fail at start-up, naming the variable, rather than in the first run (or the code
    location's load, which checks the same)."""
    settings.check_environment()


def _check_mongo(uri: str) -> None:
    from acts_pipeline.storage.client import MongoStore

    try:
        MongoStore.connect(uri, settings.mongo_db(), timeout_ms=5000).ping()
    except Exception as exc:  # noqa: BLE001 - reported with the variable, never the URI's secrets
        raise ConfigurationError(f"ACTS_MONGO_URI ({settings.redact_uri(uri)}): {exc}") from None


def cmd_dev(args: argparse.Namespace) -> int:
    from acts_pipeline.platform.event_log import EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_VARIABLE
    from acts_pipeline.platform.processes import (
        Supervisor,
        free_port,
        mongo_uri_of,
        simulator_api_url,
        simulator_ws_url,
        start_embedded_mongo,
        start_recorder,
        start_simulator,
    )
    from acts_pipeline.platform.environments import state_folder

    project = _project_dir()
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop is a Ctrl-C
    # Ctrl-C works even when started from a shell that ignores SIGINT (`nohup ... &`, CI jobs):
    # an ignored SIGINT would also be inherited by dagster dev, which then could not be stopped.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    environment = _enter_environment(project, args.env)  # config/<env>.env under what is set already
    if environment == "prod":
        raise ConfigurationError("acts-pipeline dev runs DEV or TEST on this machine; PROD runs from deploy/ "
                                 "(README, \"Deploying to production\")")
    _check_configuration()  # before anything starts: a bad value stops here, naming its variable
    ui_port = args.port or settings.dagster_port()

    def other_port() -> int:
        """A free port that is not the UI's, which nothing listens on until Dagster starts."""
        while (port := free_port()) == ui_port:
            pass
        return port

    state = state_folder(project, os.environ)
    home = _dagster_home(project, state)  # and so does an instance folder without the project's settings
    state.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not env.get("ACTS_ARCHIVE_DIR", "").strip():
        env["ACTS_ARCHIVE_DIR"] = str(state / "archive")  # each environment's archive in its own folder
    _say(f"ACTS {environment.upper()}: state in {state}, MongoDB database {settings.mongo_db(env)}")
    down: list[str] = []  # what has been started, so far, for the last line
    children = []
    started: dict[str, str] = {}  # what other acts-pipeline commands here should talk to
    try:
        if args.simulated:
            simulator = start_simulator(port=other_port(), log_path=state / "simulator.log")
            children.append(simulator)
            down.insert(0, "the simulator")
            env["ACTS_BINANCE_API_URL"] = started["ACTS_BINANCE_API_URL"] = simulator_api_url(simulator)
            env["ACTS_BINANCE_WS_URL"] = started["ACTS_BINANCE_WS_URL"] = simulator_ws_url(simulator)
            _say(f"exchange simulator on {env['ACTS_BINANCE_API_URL']} (log: {simulator.log_path})")
        if not env.get("ACTS_MONGO_URI"):
            mongo = start_embedded_mongo(state / "mongo", port=other_port(), log_path=state / "mongo.log")
            children.append(mongo)
            down.insert(0, "the embedded database")
            env["ACTS_MONGO_URI"] = started["ACTS_MONGO_URI"] = mongo_uri_of(mongo)
            _say(f"embedded MongoDB on {env['ACTS_MONGO_URI']} (data: {state / 'mongo'})")
        os.environ.update({k: v for k, v in env.items() if k.startswith("ACTS_")})
        _check_mongo(env["ACTS_MONGO_URI"])
        env["DAGSTER_HOME"] = os.environ["DAGSTER_HOME"] = str(home)
        # Run processes hand each output's cell materializations to the event log as one batch
        # (acts_pipeline/platform/event_log.py); a value set by the user wins.
        env.setdefault(EVENT_BATCH_SIZE_VARIABLE, EVENT_BATCH_SIZE)
        _fail_orphaned_runs(Path(env["DAGSTER_HOME"]))
        if settings.book_source(env) == "stream":
            # The same port on every restart: the health address printed here stays right.
            port = settings.recorder_health_port(env) or other_port()
            recorder = Supervisor(
                "the stream recorder", lambda: start_recorder(env, port=port, log_path=state / "recorder.log"),
                say=_say, stopping=_STOPPING).start()
            children.append(recorder)
            down.insert(0, "the stream recorder")
            _say(f"stream recorder health on http://127.0.0.1:{recorder.port}/health (log: {recorder.log_path}); "
                 "restarted if it exits")
        # `symbols add|remove` run beside it ask this webserver to rebuild the partition status
        env["ACTS_DAGSTER_WEBSERVER_URL"] = started["ACTS_DAGSTER_WEBSERVER_URL"] = f"http://127.0.0.1:{ui_port}"
        _runtime_path(state).write_text(json.dumps(started))
        down.insert(0, "Dagster")
        return _run_dagster(project, env, ui_port, state / "dagster.log")
    finally:
        _stopping()
        _runtime_path(state).unlink(missing_ok=True)
        for child in reversed(children):
            child.stop()
        if down:
            _say(f"ACTS stopped: {_spoken_list(down)} {'is' if len(down) == 1 else 'are'} down")


def _run_dagster(project: Path, env: dict[str, str], port: int, log_path: Path) -> int:
    """`dagster dev` until it exits or Ctrl-C; its exit code. Its output goes to `log_path`, and
    to the terminal only what a person should read (acts_pipeline/platform/dev_output.py)."""
    from acts_pipeline.platform.dev_output import DagsterOutput
    from acts_pipeline.platform.window_reload import HourlyReloader

    _say(f"Dagster UI on http://127.0.0.1:{port} (instance: {env['DAGSTER_HOME']})")
    _say(f"Dagster's full output goes to {log_path}; its warnings and errors show here. Ctrl-C stops ACTS.")
    # dagster dev gets its own process group, so that everything it starts (webserver, daemon,
    # code servers, run processes) can be stopped together, whatever lingers. Its working folder
    # stays the project's: workspace.yaml's `working_directory: .` is resolved against it (Dagster
    # rebases only `python_file` paths onto the workspace file's folder).
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(project / "workspace.yaml"),
               "-h", "127.0.0.1", "-p", str(port)]
    niceness = settings.dagster_niceness(env)
    if niceness and shutil.which("nice"):
        # Everything Dagster starts inherits it; the recorder and the database keep theirs
        # (settings.DEFAULT_DAGSTER_NICENESS says why).
        command = ["nice", "-n", str(niceness), *command]
    dagster = subprocess.Popen(
        command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output = DagsterOutput(dagster.stdout, log_path, show=_say).start()
    # Moves the rolling partition window every hour (acts_pipeline/platform/window_reload.py).
    reloader = HourlyReloader(f"http://127.0.0.1:{port}", log=_say).start()
    try:
        code = dagster.wait()
        _say(f"dagster dev exited by itself with code {code} (its output: {log_path})")
        return code
    except KeyboardInterrupt:
        _stopping()
        _say("ACTS stopping (a minute run in flight is let finish: up to a minute)")
        return _stop_dagster(dagster)
    finally:
        reloader.stop()
        _stop_dagster(dagster)
        output.close()


def _say(line: str) -> None:
    """One line to the terminal, in one write: Dagster's output and the hourly reload's log come
    from two threads."""
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def _spoken_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _fail_orphaned_runs(home: Path) -> None:
    """Mark runs still "in progress" from a platform that was stopped or died as failed.

    This command starts the instance's only daemon, so no run can be in progress now. Dagster's
    default run launcher cannot health-check run processes, so a run killed with the platform
    would otherwise stay STARTED for ever and hold one of `max_concurrent_runs` slots.
    """
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    in_progress = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(filters=RunsFilter(statuses=in_progress))
        for run in runs:
            instance.report_run_failed(
                run, message="the platform stopped while this run was in progress; its minutes are gaps")
    if runs:
        print(f"marked {len(runs)} runs left in progress by the previous start as failed")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


#: Set once `dev` starts stopping: from then on no child process is restarted.
_STOPPING = threading.Event()


def _stopping() -> None:
    """From here on the platform is stopping: a second Ctrl-C (or SIGTERM) must not cut the stop
    short with a traceback and leave processes behind, and a child that exits stays down."""
    _STOPPING.set()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop_dagster(process: subprocess.Popen) -> int:
    """Ctrl-C for `dagster dev` alone, which shuts its webserver, daemon and code servers down;
    then SIGTERM, then SIGKILL, for whatever of its process group is left (a run in flight gets
    the grace time to finish). The Ctrl-C is not sent to the whole group: it would interrupt
    Dagster's compute-log watchers of a running run, each printing a KeyboardInterrupt traceback."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    for sig, grace in ((None, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if sig is not None:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break  # the group is gone
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        # dagster dev is gone; make sure nothing it started outlives it
        deadline = time.monotonic() + grace
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not _group_alive(process.pid):
            break
    return process.returncode if process.returncode is not None else -signal.SIGKILL


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _instance():
    from dagster import DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        raise ConfigurationError("DAGSTER_HOME is not set: run from the project folder or set it")
    return DagsterInstance.get()


def cmd_symbols(args: argparse.Namespace) -> int:
    from acts_pipeline.exchange import ExchangeClient
    from acts_pipeline.orchestration.symbols import SymbolError, add_symbols, registered_symbols, remove_symbols

    instance = _instance()
    if args.action == "list":
        for symbol in registered_symbols(instance):
            print(symbol)
        return 0
    if not args.symbols:
        raise ConfigurationError(f"symbols {args.action} needs at least one symbol")
    if args.action == "add":
        client = ExchangeClient(settings.binance_api_url(), depth_limit=settings.depth_limit())
        try:
            added = add_symbols(instance, client, args.symbols)
        except SymbolError as exc:
            print(f"error: nothing registered: {exc}", file=sys.stderr)
            return 2
        finally:
            client.close()
        print(f"added: {', '.join(added)}" if added else "already tracked")
        if added:
            _warm_partition_status()
        return 0
    removed = remove_symbols(instance, args.symbols)
    print(f"removed: {', '.join(removed)}" if removed else "none of those were tracked")
    if removed:
        _warm_partition_status()
    return 0


def _warm_partition_status() -> None:
    """After a symbol change, have the webserver rebuild the partition status caches (keyed by the
    partitions definition, which the symbols are part of), so that no page pays for it. The
    change itself is done: a webserver that cannot be reached is a warning, not a failure."""
    from acts_pipeline.platform.window_reload import ReloadError, warm_up

    url = settings.webserver_url()
    if url is None:
        return
    try:
        print(warm_up(url))
    except ReloadError as exc:
        print(f"warning: partition status not rebuilt ({exc}); the first partition page of each asset will "
              "rebuild it", file=sys.stderr)


def _store():
    from acts_pipeline.storage.client import MongoStore

    return MongoStore.connect(settings.mongo_uri(), settings.mongo_db())


def cmd_coverage(args: argparse.Namespace) -> int:
    """Per symbol and collection: expected, stored and missing minutes. Over the last N closed
    minutes each symbol counts from when it was first collected or first stored (so a backfill
    shows as stored); over an explicit --start/--end every minute is expected."""
    from acts_pipeline.core.cells import floor_minute
    from acts_pipeline.core.quality import counted_from, coverage, minute_spans
    from acts_pipeline.orchestration.symbols import registered_symbols

    # Up to the last closed minute. Its run stores it within seconds of the close; until then it
    # is listed missing, which is what MongoDB holds at that moment.
    closed_end = floor_minute(datetime.now(UTC))
    if args.start is None:
        if args.end is not None:
            raise ConfigurationError("--end needs --start")
        start, end = closed_end - timedelta(minutes=args.minutes), closed_end
    else:
        start, end = args.start, min(args.end or closed_end, closed_end)
        if args.end is not None and args.end <= args.start:
            raise ConfigurationError(f"--end {args.end:%Y-%m-%d %H:%M} UTC must be after "
                                     f"--start {args.start:%Y-%m-%d %H:%M} UTC")
        if start >= closed_end:
            raise ConfigurationError(f"--start {start:%Y-%m-%d %H:%M} UTC is not a closed minute yet")
    chosen = set(settings.parse_symbols(args.symbols, variable="--symbols")) if args.symbols is not None else None

    store = _store()
    symbols = chosen if chosen is not None else set(registered_symbols(_instance()))
    tracked = {s: since for s, since in store.tracked_since().items() if s in symbols}
    expects = "every minute expected" if args.start else "each symbol from its first collected or stored minute"
    span = (end - start) // timedelta(minutes=1)
    print(f"coverage of {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC ({span} closed minutes, {expects})")
    header = (f"{'collection':<22} {'symbol':<14} {'from':<17} {'expected':>8} {'stored':>7} {'missing':>7}  "
              "missing minutes")
    print(header)
    print("-" * len(header))
    total_missing = 0
    listed = set()
    for collection in [args.collection] if args.collection else CELL_COLLECTIONS:
        stored = {s: minutes for s, minutes in store.stored_minutes(collection, start, end).items() if s in symbols}
        expected_from = dict.fromkeys(symbols, start) if args.start else counted_from(tracked, stored)
        for row in coverage(expected_from, stored, start, end):
            total_missing += row.missing
            listed.add(row.symbol)
            print(f"{collection:<22} {row.symbol:<14} {row.tracked_since:%Y-%m-%d %H:%M} {row.expected:>8} "
                  f"{row.stored:>7} {row.missing:>7}  {minute_spans(row.missing_minutes) or '-'}")
    if symbols - listed:
        print(f"no data and no run so far: {', '.join(sorted(symbols - listed))}")
    return 1 if total_missing and args.fail_on_missing else 0


def _utc_minute(text: str) -> datetime:
    """A minute given on the command line, UTC: `2026-11-30T10:00` (ISO 8601; an offset is
    converted) or the partition key format `2026-11-30-10:00` (as the UI shows minutes)."""
    try:
        moment = datetime.strptime(text, MINUTE_FORMAT)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a UTC minute: {text!r} (write it as 2026-11-30T10:00 or 2026-11-30-10:00)") from None
    if moment.second or moment.microsecond:
        raise argparse.ArgumentTypeError(f"not a whole minute: {text!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _positive_minutes(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"not a positive whole number of minutes: {text!r}")
    return int(text)


def cmd_spool(args: argparse.Namespace) -> int:
    from acts_pipeline.storage.durable import Spool, flush_spool

    spool = Spool(settings.spool_dir())
    if args.action == "status":
        print(f"{spool.count()} batches waiting in {spool.folder}")
        return 0
    written = flush_spool(_store(), spool)
    print(f"wrote {written} spooled batches; {spool.count()} left in {spool.folder}")
    return 0


def cmd_reload_code(args: argparse.Namespace) -> int:
    from acts_pipeline.platform.window_reload import HourlyReloader, ReloadError, reload_and_warm

    url = args.url or settings.webserver_url() or DEFAULT_WEBSERVER_URL
    if args.every_hour:
        # A service of its own in production (deploy/): what `dev` does beside dagster dev.
        signal.signal(signal.SIGTERM, _interrupt)
        reloader = HourlyReloader(url, log=_say).start()
        _say(f"reloading the code location of {url} 10 s past every hour; Ctrl-C stops")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            _say("hourly reload stopped")
        finally:
            reloader.stop()
        return 0
    try:
        print(reload_and_warm(url))
    except ReloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_check_instance(args: argparse.Namespace) -> int:
    """The production services' check before they start (deploy/): DAGSTER_HOME has ACTS's
    instance settings, and its storage opens (PostgreSQL reachable, its tables created)."""
    from acts_pipeline.platform.instance_settings import check_instance_folder

    if not os.environ.get("DAGSTER_HOME"):
        raise ConfigurationError("DAGSTER_HOME is not set: point it at the instance folder holding deploy/dagster.yaml")
    home = Path(os.environ["DAGSTER_HOME"])
    check_instance_folder(home, fix="Install deploy/dagster.yaml there as dagster.yaml (README, \"Deploying to "
                          "production\").")
    try:
        instance = _instance()
        instance.get_runs_count()
    except ConfigurationError:
        raise
    except Exception as exc:  # noqa: BLE001 - said with its first cause; drivers do not echo passwords
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise ConfigurationError(f"the instance in {home} does not open: {detail}") from None
    storage = getattr(instance.run_storage, "postgres_url", None)
    where = f"PostgreSQL at {settings.redact_uri(storage)}" if storage else type(instance.run_storage).__name__
    print(f"instance {home}: ACTS's settings are there; storage {where}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    """The stream recorder in the foreground, on the Dagster instance's tracked symbols."""
    import logging

    from acts_pipeline.orchestration.partitions import SYMBOLS_PARTITIONS_NAME
    from acts_pipeline.recorder.service import RecorderConfig, serve

    # The recorder's own news at INFO; the libraries' (Dagster's storage migrations) at WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("acts_pipeline").setLevel(logging.INFO)
    settings.check_environment(require_mongo_uri=True)
    config = RecorderConfig.from_environment(health_port=args.health_port)
    instance = _instance()

    def tracked() -> list[str]:
        return list(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))

    _say(f"stream recorder: streams from {settings.redact_uri(config.ws_url)}, books to MongoDB "
         f"{settings.redact_uri(config.mongo_uri)} database {config.mongo_db}; Ctrl-C stops it")
    serve(config, tracked, on_listening=lambda url: _say(f"recorder health on {url}"))
    _say("stream recorder stopped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acts-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    # Which environment a command is in: its settings file in config/, its state folder.
    environment = argparse.ArgumentParser(add_help=False)
    environment.add_argument("--env", choices=settings.ENVIRONMENTS, default=None,
                             help="the environment: its settings are config/<env>.env, under the variables set "
                             "(default: ACTS_ENV, else dev)")

    dev = commands.add_parser("dev", parents=[environment],
                              help="run the Dagster UI and daemon on the embedded database")
    dev.add_argument("--simulated", action="store_true", help="also start the offline exchange simulator and use it")
    dev.add_argument("--port", type=int, default=None,
                     help="Dagster UI port (default ACTS_DAGSTER_PORT: 3000 in DEV, 3001 in TEST)")
    dev.set_defaults(func=cmd_dev)

    symbols = commands.add_parser("symbols", parents=[environment], help="list, add (checked against exchangeInfo) or remove symbols")
    symbols.add_argument("action", choices=["add", "remove", "list"])
    symbols.add_argument("symbols", nargs="*", metavar="SYMBOL")
    symbols.set_defaults(func=cmd_symbols)

    cover = commands.add_parser("coverage", parents=[environment], help="stored vs missing (minute, symbol) cells, per collection")
    window = cover.add_mutually_exclusive_group()
    window.add_argument("--minutes", type=_positive_minutes, default=60,
                        help="how many closed minutes to look back (default 60); each symbol counts from its first "
                        "collected or stored minute")
    window.add_argument("--start", type=_utc_minute, help="first minute of an explicit range, UTC (2026-11-30T10:00 or "
                        "2026-11-30-10:00), in which every minute is expected for every symbol")
    cover.add_argument("--end", type=_utc_minute, help="end of the explicit range, excluded (default: the last closed "
                       "minute's end)")
    cover.add_argument("--symbols", metavar="A,B", help="only these symbols (default: the registered ones)")
    cover.add_argument("--collection", choices=CELL_COLLECTIONS, help="only this collection (default: all three)")
    cover.add_argument("--fail-on-missing", action="store_true", help="exit 1 when any cell is missing")
    cover.set_defaults(func=cmd_coverage)

    spool = commands.add_parser("spool", parents=[environment], help="batches waiting for MongoDB: status, or flush them now")
    spool.add_argument("action", choices=["status", "flush"])
    spool.set_defaults(func=cmd_spool)

    reload = commands.add_parser("reload-code", parents=[environment], help="reload the code location, which moves the partition window, and "
                                 "rebuild the partition status caches (`dev` does it 10 s past every hour)")
    reload.add_argument("--url", help="the Dagster webserver (default: ACTS_DAGSTER_WEBSERVER_URL, else the one "
                        f"`acts-pipeline dev` runs from this project folder, else {DEFAULT_WEBSERVER_URL})")
    reload.add_argument("--every-hour", action="store_true", help="stay in the foreground and reload 10 s past every "
                        "hour, as `dev` does (a production service: deploy/)")
    reload.set_defaults(func=cmd_reload_code)

    record = commands.add_parser("record", help="run the stream recorder (local order books, the book at every "
                                 "minute close) on the tracked symbols")
    record.add_argument("--health-port", type=int, default=None,
                        help="port of its /health endpoint on 127.0.0.1 (default ACTS_RECORDER_HEALTH_PORT, else 8790)")
    record.set_defaults(func=cmd_record)

    check = commands.add_parser("check-instance", help="check that DAGSTER_HOME has ACTS's instance settings and that "
                                "its storage opens (the production services run it before they start)")
    check.set_defaults(func=cmd_check_instance)

    simulate = commands.add_parser("simulate-exchange", help="run the offline Binance simulator (REST and streams; "
                                   "its options: acts-pipeline simulate-exchange --help)")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8765)  # listed for --help; main() hands argv to the simulator
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate-exchange"]:
        # Every option (and --help) is the simulator's own: --seed, --retention, --ws-*, ...
        from acts_simulator.__main__ import main as simulator_main

        return simulator_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("symbols", "coverage", "spool", "reload-code", "record"):
            _use_running_platform(getattr(args, "env", None))
        return args.func(args)
    except (ConfigurationError, ExchangeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before a command set up its own stop: nothing to add
        return 130


if __name__ == "__main__":
    sys.exit(main())
