"""DEV, TEST and PROD: which environment a process is in, and its settings from the repository.

`ACTS_ENV` (`dev`, the default, `test` or `prod`) names the environment. DEV's and TEST's settings
are kept in the repository, `config/dev.env` and `config/test.env` in the project folder: the Mongo
database name, the symbols, the partition window and retention, the archive and state folders,
the alerts' deployment name and reminder, the UI port. PROD's are not: its services run from
deploy/ with their environment file (deploy/acts.env.example), so no file is read for it, and its
secrets (`DAGSTER_PG_URL`, `ACTS_MONGO_URI`, `ACTS_ALERT_WEBHOOK_URL`) come from the environment.

A file holds `KEY=VALUE` lines (blank lines and `#` comments aside), as systemd's
`EnvironmentFile=` reads them. Each key must be an ACTS setting and each value must pass that
setting's parser (`settings.check_environment`); a secret, `ACTS_ENV` itself, a repeated key, an
unknown key or a bad value is refused with the file, the line and the variable. A variable already
set in the process environment always wins over the file. Relative folders in a file are relative
to the project folder, so every process of the platform, whatever its working folder, sees the
same absolute path.

Read by `acts-pipeline` when a command starts (never at import): `dev` exports the result to every
process it starts (the code location, its runs, the recorder), which read plain variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from acts_pipeline import settings
from acts_pipeline.core.errors import ConfigurationError

CONFIG_DIR = "config"
#: The environments whose settings are files of the repository.
FILE_ENVIRONMENTS = ("dev", "test")
#: Settings that name a local folder: a relative one in a file is made absolute against the project.
FOLDER_VARIABLES = ("ACTS_STATE_DIR", "ACTS_ARCHIVE_DIR", "ACTS_SPOOL_DIR")


def config_file(project: Path, environment: str) -> Path | None:
    """The settings file of `environment` in the project folder; None for PROD (no file)."""
    return project / CONFIG_DIR / f"{environment}.env" if environment in FILE_ENVIRONMENTS else None


def parse_environment_file(text: str, *, name: str, base: Path | None = None) -> dict[str, str]:
    """The `KEY=VALUE` settings of a file's `text` (`name` says which file in messages); relative
    folders made absolute against `base`, when given. `ConfigurationError` naming the file, the
    line and the variable for anything that is not a good ACTS setting."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}, line {number}"
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigurationError(f"{where}: not a KEY=VALUE line: {line[:60]!r}")
        if key in settings.SECRETS:
            raise ConfigurationError(f"{where}: {key} is a secret: set it in the environment, never in a file of "
                                     "the repository")
        if key == "ACTS_ENV":
            raise ConfigurationError(f"{where}: ACTS_ENV chooses this file, it cannot be set in it")
        if key not in settings.VARIABLES:
            raise ConfigurationError(f"{where}: {key} is not an ACTS setting (README, \"Configuration\", lists them)")
        if key in lines:
            raise ConfigurationError(f"{where}: {key} is set again (first on line {lines[key]})")
        try:
            settings.check_environment({key: value})
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
        if key in FOLDER_VARIABLES and base is not None and value and "://" not in value:
            value = str(base / Path(value).expanduser())
        values[key], lines[key] = value, number
    return values


def read_environment_file(path: Path, *, base: Path) -> dict[str, str]:
    """The settings of the file at `path`. DEV's may be missing (a project folder made before the
    environments were): its settings are the built-in defaults. TEST's may not: without it TEST
    would share DEV's folders and database."""
    if not path.is_file():
        if path.stem == settings.DEFAULT_ENVIRONMENT:
            return {}
        raise ConfigurationError(f"{path} is missing: it holds the settings of ACTS_ENV={path.stem}, which without "
                                 "them would share DEV's state folder and database")
    return parse_environment_file(path.read_text(), name=str(path), base=base)


def environment_settings(project: Path, environ: Mapping[str, str], *, chosen: str | None = None) -> dict[str, str]:
    """The environment `environ` plus its environment's file: `chosen` (a command-line `--env`) or
    `environ`'s `ACTS_ENV` names it; what `environ` sets wins over the file. `ACTS_ENV` is set in
    the result, so that every process started with it knows where it belongs."""
    environment = settings.parse_acts_env(chosen if chosen is not None else environ.get("ACTS_ENV"))
    if chosen is not None and environ.get("ACTS_ENV", "").strip() and settings.acts_env(environ) != environment:
        raise ConfigurationError(f"--env {environment} and ACTS_ENV={settings.acts_env(environ)} disagree: "
                                 "give one of them")
    path = config_file(project, environment)
    from_file = read_environment_file(path, base=project) if path is not None else {}
    return {**from_file, **environ, "ACTS_ENV": environment}


def state_folder(project: Path, environ: Mapping[str, str]) -> Path:
    """The environment's local state folder (`ACTS_STATE_DIR`), absolute."""
    folder = settings.state_dir(environ)
    return folder if folder.is_absolute() else project / folder
