"""`acts-pipeline`: run the platform, manage the tracked symbols, run the exchange simulator."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from acts_pipeline import settings
from acts_pipeline.errors import ConfigurationError, ExchangeError

STATE_DIR_NAME = ".acts"


def _project_dir() -> Path:
    """The folder holding workspace.yaml and dagster.yaml: the current one or a parent."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "workspace.yaml").is_file() and (folder / "dagster.yaml").is_file():
            return folder
    raise ConfigurationError("run acts-pipeline from the project folder (the one with workspace.yaml and dagster.yaml)")


def _dagster_home(project: Path) -> Path:
    """An existing DAGSTER_HOME, or the project's ignored .acts/dagster_home with its dagster.yaml."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = project / STATE_DIR_NAME / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project / "dagster.yaml", home / "dagster.yaml")
    return home


def _check_configuration() -> None:
    """Fail at start-up, naming the variable, rather than in the first run."""
    settings.depth_limit()
    settings.initial_symbols()
    settings.binance_api_url()
    settings.mongo_db()
    settings.capture_tolerance_seconds()


def _check_mongo(uri: str) -> None:
    from acts_pipeline.storage import MongoStore

    try:
        MongoStore.connect(uri, settings.mongo_db(), timeout_ms=5000).ping()
    except Exception as exc:  # noqa: BLE001 - reported with the variable, never the URI's secrets
        raise ConfigurationError(f"ACTS_MONGO_URI ({settings.redact_uri(uri)}): {exc}") from None


def cmd_dev(args: argparse.Namespace) -> int:
    from acts_pipeline.processes import mongo_uri_of, simulator_api_url, start_embedded_mongo, start_simulator

    project = _project_dir()
    state = project / STATE_DIR_NAME
    state.mkdir(exist_ok=True)
    env = dict(os.environ)
    children = []
    try:
        if args.simulated:
            simulator = start_simulator(log_path=state / "simulator.log")
            children.append(simulator)
            env["ACTS_BINANCE_API_URL"] = simulator_api_url(simulator)
            print(f"exchange simulator on {env['ACTS_BINANCE_API_URL']} (log: {simulator.log_path})")
        if not env.get("ACTS_MONGO_URI"):
            mongo = start_embedded_mongo(state / "mongo", log_path=state / "mongo.log")
            children.append(mongo)
            env["ACTS_MONGO_URI"] = mongo_uri_of(mongo)
            print(f"embedded MongoDB on {env['ACTS_MONGO_URI']} (data: {state / 'mongo'})")
        os.environ.update({k: v for k, v in env.items() if k.startswith("ACTS_")})
        _check_configuration()
        _check_mongo(env["ACTS_MONGO_URI"])
        env["DAGSTER_HOME"] = str(_dagster_home(project))
        print(f"Dagster UI on http://127.0.0.1:{args.port} (instance: {env['DAGSTER_HOME']})", flush=True)
        dagster = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", str(project / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(args.port)],
            cwd=project, env=env)
        try:
            return dagster.wait()
        except KeyboardInterrupt:
            # dagster dev got the same Ctrl-C and is shutting its webserver and daemon down.
            try:
                return dagster.wait(30)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                dagster.send_signal(signal.SIGTERM)
                return dagster.wait(10)
    finally:
        for child in reversed(children):
            child.stop()


def _instance():
    from dagster import DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(_dagster_home(_project_dir()))
    return DagsterInstance.get()


def cmd_symbols(args: argparse.Namespace) -> int:
    from acts_pipeline.exchange import ExchangeClient
    from acts_pipeline.symbols import SymbolError, add_symbols, registered_symbols, remove_symbols

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
        return 0
    removed = remove_symbols(instance, args.symbols)
    print(f"removed: {', '.join(removed)}" if removed else "none of those were tracked")
    return 0


def cmd_simulate_exchange(args: argparse.Namespace) -> int:
    from acts_pipeline.simulator.__main__ import main as simulator_main

    return simulator_main(["--host", args.host, "--port", str(args.port)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acts-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the Dagster UI and daemon on the embedded database")
    dev.add_argument("--simulated", action="store_true", help="also start the offline exchange simulator and use it")
    dev.add_argument("--port", type=int, default=3000, help="Dagster UI port (default 3000)")
    dev.set_defaults(func=cmd_dev)

    symbols = commands.add_parser("symbols", help="list, add (checked against exchangeInfo) or remove symbols")
    symbols.add_argument("action", choices=["add", "remove", "list"])
    symbols.add_argument("symbols", nargs="*", metavar="SYMBOL")
    symbols.set_defaults(func=cmd_symbols)

    simulate = commands.add_parser("simulate-exchange", help="run the offline Binance simulator")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8765)
    simulate.set_defaults(func=cmd_simulate_exchange)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigurationError, ExchangeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
