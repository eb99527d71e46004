"""The Dagster instance settings ACTS relies on, and the check that an instance folder has them.

A `DAGSTER_HOME` without a `dagster.yaml`, or with one of another project, is a valid Dagster
instance on Dagster's defaults, and Dagster says nothing: the platform would run with an event
log that writes every cell event in two transactions (12 core-seconds a minute at 500 symbols),
no limit on concurrent runs, no re-run of a run whose process died, no run monitoring and sensor
ticks kept for ever. So `acts-pipeline dev` and `acts-pipeline check-instance` (the production
services' pre-start check) read the folder's `dagster.yaml` and refuse to go on, naming each
missing setting, instead of running without them.

`missing_settings` is a pure function of the parsed `dagster.yaml`: it checks that each setting is
there and on, not its tuning (a `max_concurrent_runs` of 10 is a choice; none at all is not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from acts_pipeline.core.errors import ConfigurationError

INSTANCE_FILE = "dagster.yaml"
BATCHED_SQLITE_EVENT_LOG = ("acts_pipeline.platform.event_log", "BatchedSqliteEventLogStorage")
POSTGRES_STORAGE = ("acts_pipeline.platform.postgres_storage", "PostgresStorage")
QUEUED_RUN_COORDINATOR = "QueuedRunCoordinator"


@dataclass(frozen=True)
class Setting:
    """One thing the instance must have: what it is called in a message, and the test of it."""

    name: str
    present: Callable[[Mapping[str, Any]], bool]


def _get(config: Mapping[str, Any], *path: str) -> Any:
    value: Any = config
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _class_of(block: Any) -> tuple[str | None, str | None]:
    return (_get(block, "module"), _get(block, "class")) if isinstance(block, Mapping) else (None, None)


def _batched_event_log(config: Mapping[str, Any]) -> bool:
    """The SQLite event log with the one-transaction batch write, or PostgreSQL storage (which
    writes a batch in one insert by itself)."""
    if _class_of(config.get("event_log_storage")) == BATCHED_SQLITE_EVENT_LOG:
        return True
    storage = config.get("storage")
    return isinstance(storage, Mapping) and (
        "postgres" in storage or _class_of(storage.get("custom")) == POSTGRES_STORAGE)


def _run_queue(config: Mapping[str, Any]) -> bool:
    if _get(config, "run_queue", "max_concurrent_runs") is not None:
        return True
    coordinator = config.get("run_coordinator")
    return (_class_of(coordinator)[1] == QUEUED_RUN_COORDINATOR
            and _get(coordinator, "config", "max_concurrent_runs") is not None)


REQUIRED = (
    Setting("the batched event log (event_log_storage: BatchedSqliteEventLogStorage, or PostgreSQL storage)",
            _batched_event_log),
    Setting("the run queue with its limit (run_coordinator: QueuedRunCoordinator with max_concurrent_runs)",
            _run_queue),
    Setting("run retries (run_retries: enabled)", lambda c: _get(c, "run_retries", "enabled") is True),
    Setting("run monitoring with a maximum run time (run_monitoring: enabled, max_runtime_seconds)",
            lambda c: _get(c, "run_monitoring", "enabled") is True
            and _get(c, "run_monitoring", "max_runtime_seconds") is not None),
    Setting("sensors evaluated in threads (sensors: use_threads)", lambda c: _get(c, "sensors", "use_threads") is True),
    Setting("retention of sensor ticks (retention: sensor: purge_after_days)",
            lambda c: _get(c, "retention", "sensor", "purge_after_days") is not None),
)


def missing_settings(config: Mapping[str, Any] | None) -> list[str]:
    """The names of the required settings `config` (a parsed dagster.yaml; None for no file)
    lacks, in the order of `REQUIRED`."""
    config = config if isinstance(config, Mapping) else {}
    return [setting.name for setting in REQUIRED if not setting.present(config)]


def read_instance_config(home: Path) -> Mapping[str, Any] | None:
    """`home`'s dagster.yaml parsed; None if there is none. Raises `ConfigurationError` if it
    does not parse."""
    path = home / INSTANCE_FILE
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path} is not valid YAML: {exc}") from None


def _folder_is_new(home: Path) -> bool:
    return not home.exists() or (home.is_dir() and not any(home.iterdir()))


def check_instance_folder(home: Path, *, fix: str, template: Path | None = None) -> str | None:
    """Make sure the instance folder `home` (a DAGSTER_HOME) has ACTS's settings.

    - It has a dagster.yaml with all of them: nothing to do (None).
    - It is new (missing or empty) and `template` is given: `template` is copied in as its
      dagster.yaml; returns what was done, to be said.
    - Otherwise `ConfigurationError` naming each missing setting, then `fix` (how to fix it). A
      folder that already holds anything is never written to: another project may use it.
    """
    if template is not None and _folder_is_new(home):
        home.mkdir(parents=True, exist_ok=True)
        (home / INSTANCE_FILE).write_bytes(template.read_bytes())
        return f"DAGSTER_HOME {home} was empty: wrote ACTS's instance settings there ({home / INSTANCE_FILE})"
    config = read_instance_config(home)
    missing = missing_settings(config)
    if not missing:
        return None
    if config is None:
        raise ConfigurationError(f"DAGSTER_HOME {home} has no {INSTANCE_FILE}: Dagster would run this instance on its "
                                 f"defaults, without {'; '.join(missing)}. {fix}")
    raise ConfigurationError(f"{home / INSTANCE_FILE} lacks settings ACTS relies on: {'; '.join(missing)}. {fix}")
