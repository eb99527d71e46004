"""The `ACTS_*` environment variables: each one's default, its parser and its error message.

Each setting has a parser of the raw text (`parse_depth_limit(" 500 ")`), used wherever a value
of that setting arrives: a resource field bound to the variable with Dagster's `EnvVar`
(`orchestration/environment.py`), the CLI, a test. Its reader (`depth_limit(environ)`) applies the
parser to the variable; `check_environment` runs every reader, which is how the code location and
the CLI refuse a bad value when they load, naming the variable. Nothing here runs at import time,
and no message echoes a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from acts_pipeline.core.errors import ConfigurationError

DEFAULT_BINANCE_API_URL = "https://api.binance.com/api"
DEFAULT_MONGO_DB = "acts"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT")
DEFAULT_DEPTH_LIMIT = 100
#: Binance accepts 1..5000 levels per side on `GET /api/v3/depth`.
MAX_DEPTH_LIMIT = 5000
#: How long after a minute's close its book may still be labelled with that minute.
DEFAULT_CAPTURE_TOLERANCE_SECONDS = 10.0
#: Exchange requests in flight at once (`BinanceExchange.max_workers`).
DEFAULT_MAX_IN_FLIGHT = 32

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def redact_uri(uri: str) -> str:
    """`uri` without user info, query string or fragment: safe for logs and messages.

    A string with no `//host` part, or with an `@` outside it (`mongodb:/user:pw@host`,
    `user:pw@host`, a password with an unescaped `/`, `?` or `#`), is not shown at all: urlsplit
    would leave the credential in the path, where nothing can tell it apart.
    """
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname or "", parts.port  # `port` raises on a non-numeric port
    except ValueError:
        return "<unparseable URI>"
    if not parts.netloc or ("@" in uri and "@" not in parts.netloc):
        return "<unparseable URI>"
    if port:
        host = f"{host}:{port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def mongo_uri(environ: Mapping[str, str] | None = None) -> str:
    return parse_mongo_uri(_env(environ).get("ACTS_MONGO_URI", ""))


def parse_mongo_uri(raw: str | None) -> str:
    uri = (raw or "").strip()
    if not uri:
        raise ConfigurationError(
            "ACTS_MONGO_URI is not set: give the MongoDB connection string, or run "
            "`acts-pipeline dev`, which starts an embedded server and sets it"
        )
    if not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigurationError(
            f"ACTS_MONGO_URI must start with mongodb:// or mongodb+srv://, got {redact_uri(uri)!r}"
        )
    return uri


def mongo_db(environ: Mapping[str, str] | None = None) -> str:
    return parse_mongo_db(_env(environ).get("ACTS_MONGO_DB", ""))


def parse_mongo_db(raw: str | None) -> str:
    name = (raw or "").strip() or DEFAULT_MONGO_DB
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", name):
        raise ConfigurationError(f"ACTS_MONGO_DB must be a plain database name, got {name!r}")
    return name


def _url(url: str, variable: str, schemes: tuple[str, str]) -> str:
    """`url` without a trailing slash, if it has one of `schemes`, a host (and a numeric port)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in schemes or not parts.hostname:
        kinds = "http(s) URL" if schemes == ("http", "https") else f"{schemes[0]}:// or {schemes[1]}:// URL"
        raise ConfigurationError(f"{variable} must be a{'n' if kinds[0] == 'h' else ''} {kinds}, got {redact_uri(url)!r}")
    return url.rstrip("/")


def _http_url(url: str, variable: str) -> str:
    return _url(url, variable, ("http", "https"))


def binance_api_url(environ: Mapping[str, str] | None = None) -> str:
    return parse_binance_api_url(_env(environ).get("ACTS_BINANCE_API_URL", ""))


def parse_binance_api_url(raw: str | None) -> str:
    return _http_url((raw or "").strip() or DEFAULT_BINANCE_API_URL, "ACTS_BINANCE_API_URL")


def webserver_url(environ: Mapping[str, str] | None = None) -> str | None:
    """`ACTS_DAGSTER_WEBSERVER_URL`: the Dagster webserver that `acts-pipeline symbols` and
    `reload-code` talk to (`acts-pipeline dev` sets it for the commands run beside it); None if unset."""
    url = _env(environ).get("ACTS_DAGSTER_WEBSERVER_URL", "").strip()
    return _http_url(url, "ACTS_DAGSTER_WEBSERVER_URL") if url else None


def parse_symbols(raw: str, *, variable: str = "ACTS_SYMBOLS") -> tuple[str, ...]:
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in raw.split(",") if s.strip()))
    if not symbols:
        raise ConfigurationError(f"{variable} is empty: list at least one symbol, e.g. BTCUSDT,ETHUSDT")
    bad = [s for s in symbols if not _SYMBOL_RE.match(s)]
    if bad:
        raise ConfigurationError(f"{variable} has malformed symbols: {', '.join(bad)}")
    return symbols


def initial_symbols(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    raw = _env(environ).get("ACTS_SYMBOLS")
    if raw is None:
        return DEFAULT_SYMBOLS
    return parse_symbols(raw)


DEFAULT_SYMBOLS_TEXT = ",".join(DEFAULT_SYMBOLS)


def _whole_number(environ: Mapping[str, str] | None, variable: str, unit: str, default: int, highest: int) -> int:
    """`variable` as a whole number of `unit` in 1..`highest`; `default` when unset or blank."""
    return _parse_whole_number(_env(environ).get(variable, ""), variable, unit, default, highest)


def _parse_whole_number(raw: str | int | None, variable: str, unit: str, default: int, highest: int) -> int:
    raw = str(raw if raw is not None else "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{variable} must be a whole number of {unit}, got {raw!r}") from None
    if not 1 <= value <= highest:
        raise ConfigurationError(f"{variable} must be between 1 and {highest}, got {value}")
    return value


def depth_limit(environ: Mapping[str, str] | None = None) -> int:
    return parse_depth_limit(_env(environ).get("ACTS_DEPTH_LIMIT", ""))


def parse_depth_limit(raw: str | int | None) -> int:
    return _parse_whole_number(raw, "ACTS_DEPTH_LIMIT", "levels", DEFAULT_DEPTH_LIMIT, MAX_DEPTH_LIMIT)


def spool_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`ACTS_SPOOL_DIR`, else `acts_spool` in `DAGSTER_HOME`, else `.acts/spool` here: a folder
    every run process of the instance shares, on a disk that survives restarts."""
    env = _env(environ)
    return parse_spool_dir(env.get("ACTS_SPOOL_DIR"), dagster_home=env.get("DAGSTER_HOME"))


def parse_spool_dir(raw: str | None, *, dagster_home: str | None = None) -> Path:
    """The spool folder `raw` names; blank: `acts_spool` in the instance's home (`dagster_home`,
    else `DAGSTER_HOME` now), else `.acts/spool` in the working directory."""
    if raw and raw.strip():
        return Path(raw.strip())
    home = dagster_home if dagster_home is not None else os.environ.get("DAGSTER_HOME", "")
    if home.strip():
        return Path(home.strip()) / "acts_spool"
    return Path.cwd() / ".acts" / "spool"


def exchange_block_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where run processes share the exchange's Retry-After or ban (next to the spool)."""
    return block_path_beside(spool_dir(environ))


def block_path_beside(spool: Path) -> Path:
    return spool.parent / "acts_exchange_block.json"


def weight_path_beside(spool: Path) -> Path:
    """The request-weight ledger every process of the instance shares (`SharedWeight`)."""
    return spool.parent / "acts_exchange_weight"


def capture_tolerance_seconds(environ: Mapping[str, str] | None = None) -> float:
    return parse_capture_tolerance(_env(environ).get("ACTS_CAPTURE_TOLERANCE_SECONDS", ""))


def parse_capture_tolerance(raw: str | float | None) -> float:
    raw = str(raw if raw is not None else "").strip()
    if not raw:
        return DEFAULT_CAPTURE_TOLERANCE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"ACTS_CAPTURE_TOLERANCE_SECONDS must be a number of seconds, got {raw!r}") from None
    if not 0.5 <= value <= 50:
        raise ConfigurationError(f"ACTS_CAPTURE_TOLERANCE_SECONDS must be between 0.5 and 50, got {value}")
    return value


DEFAULT_BINANCE_WS_URL = "wss://stream.binance.com:9443"
BOOK_SOURCES = ("stream", "rest")
DEFAULT_BOOK_SOURCE = "stream"
DEFAULT_RECORDER_RETENTION_DAYS = 7
MAX_RECORDER_RETENTION_DAYS = 90
#: Levels per side of the recorder's REST snapshots: the range its books are complete in, so more
#: than the published ACTS_DEPTH_LIMIT. Measured by benchmarks/recorder.py (2026-12-01): 100 (the
#: published depth) re-snapshots constantly; 500 (weight 25) needed none in steady state at 500 and
#: 1262 symbols and syncs 1262 symbols in 9.2 minutes at half the IP's weight; 1000 (weight 50)
#: would take about 21.
DEFAULT_RECORDER_SNAPSHOT_DEPTH = 500


def binance_ws_url(environ: Mapping[str, str] | None = None) -> str:
    return parse_binance_ws_url(_env(environ).get("ACTS_BINANCE_WS_URL", ""))


def parse_binance_ws_url(raw: str | None) -> str:
    return _url((raw or "").strip() or DEFAULT_BINANCE_WS_URL, "ACTS_BINANCE_WS_URL", ("ws", "wss"))


def book_source(environ: Mapping[str, str] | None = None) -> str:
    return parse_book_source(_env(environ).get("ACTS_BOOK_SOURCE", ""))


def parse_book_source(raw: str | None) -> str:
    value = (raw or "").strip().lower() or DEFAULT_BOOK_SOURCE
    if value not in BOOK_SOURCES:
        raise ConfigurationError(f"ACTS_BOOK_SOURCE must be one of {', '.join(BOOK_SOURCES)}, got {value!r}")
    return value


def recorder_retention_days(environ: Mapping[str, str] | None = None) -> int:
    return parse_recorder_retention_days(_env(environ).get("ACTS_RECORDER_RETENTION_DAYS", ""))


def parse_recorder_retention_days(raw: str | int | None) -> int:
    return _parse_whole_number(raw, "ACTS_RECORDER_RETENTION_DAYS", "days", DEFAULT_RECORDER_RETENTION_DAYS,
                               MAX_RECORDER_RETENTION_DAYS)


def recorder_snapshot_depth(environ: Mapping[str, str] | None = None) -> int:
    return _parse_whole_number(_env(environ).get("ACTS_RECORDER_SNAPSHOT_DEPTH", ""), "ACTS_RECORDER_SNAPSHOT_DEPTH",
                               "levels", DEFAULT_RECORDER_SNAPSHOT_DEPTH, MAX_DEPTH_LIMIT)


def recorder_health_port(environ: Mapping[str, str] | None = None) -> int | None:
    """`ACTS_RECORDER_HEALTH_PORT`: where the recorder serves /health on 127.0.0.1; None: unset
    (`acts-pipeline record` then picks 8790, `dev` a free port)."""
    raw = _env(environ).get("ACTS_RECORDER_HEALTH_PORT", "").strip()
    return _parse_whole_number(raw, "ACTS_RECORDER_HEALTH_PORT", "port", 0, 65535) if raw else None


#: How much lower Dagster's processes run than the recorder and the database under `dev` (the
#: Unix niceness of `dagster dev`, which its webserver, daemon, code servers and run processes
#: inherit). At each close the recorder decides every symbol's boundary book and the database
#: stores them while the minute run reads and writes: on a small machine the kernel then favours
#: the ones whose latency the close is measured by.
DEFAULT_DAGSTER_NICENESS = 5
MAX_NICENESS = 19


def dagster_niceness(environ: Mapping[str, str] | None = None) -> int:
    """`ACTS_DAGSTER_NICENESS` (0..19, default 5): the niceness `dev` starts Dagster with; 0 leaves
    it as the recorder's and the database's."""
    raw = _env(environ).get("ACTS_DAGSTER_NICENESS", "").strip()
    if not raw:
        return DEFAULT_DAGSTER_NICENESS
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"ACTS_DAGSTER_NICENESS must be a whole number from 0 to {MAX_NICENESS}, "
                                 f"got {raw!r}") from None
    if not 0 <= value <= MAX_NICENESS:
        raise ConfigurationError(f"ACTS_DAGSTER_NICENESS must be between 0 and {MAX_NICENESS}, got {value}")
    return value


#: The live minute x symbol partitions reach back this many whole hours before the hour the code
#: location loaded. Dagster's guidance is at most 100,000 keys per asset, and its partition pages
#: cost time in proportion to the cells (benchmarks/ui_pages.py): 1 hour is at most 121 minutes,
#: 60,500 cells at 500 symbols (the partitions tab 0.8 to 1.0 s; with 2 hours, 2.1 to 2.6).
#: Older minutes are in the history assets, and `klines_history_catch_up_sensor` fetches the
#: klines still missing when their minutes leave the window.
DEFAULT_PARTITION_WINDOW_HOURS = 1
MAX_PARTITION_WINDOW_HOURS = 90 * 24
MAX_PARTITION_WINDOW_DAYS = 90


def partition_window_hours(environ: Mapping[str, str] | None = None) -> int:
    """`ACTS_PARTITION_WINDOW_HOURS` (1..2160): how many whole hours before the current hour the
    minute partitions reach back. `ACTS_PARTITION_WINDOW_DAYS` (1..90), the earlier setting, is
    still read as that many days of hours; setting both is an error. Read when the code location
    loads (`definitions.py` narrows the minute partitions to the live window then), never at import."""
    env = _env(environ)
    hours_set = bool(env.get("ACTS_PARTITION_WINDOW_HOURS", "").strip())
    days_set = bool(env.get("ACTS_PARTITION_WINDOW_DAYS", "").strip())
    if hours_set and days_set:
        raise ConfigurationError(
            "ACTS_PARTITION_WINDOW_HOURS and ACTS_PARTITION_WINDOW_DAYS are both set: "
            "keep ACTS_PARTITION_WINDOW_HOURS only")
    if days_set:
        return 24 * _whole_number(environ, "ACTS_PARTITION_WINDOW_DAYS", "days", 1, MAX_PARTITION_WINDOW_DAYS)
    return _whole_number(environ, "ACTS_PARTITION_WINDOW_HOURS", "hours", DEFAULT_PARTITION_WINDOW_HOURS,
                         MAX_PARTITION_WINDOW_HOURS)


# --- The research archive and MongoDB's retention of archived days (issue 12) ---------------------

DEFAULT_SNAPSHOT_RETENTION_DAYS = 30
#: The one spelling of "never delete" for ACTS_FEATURES_RETENTION_DAYS / ACTS_KLINES_RETENTION_DAYS.
KEEP_FOREVER = "forever"
MAX_RETENTION_DAYS = 100 * 366


def archive_dir(environ: Mapping[str, str] | None = None) -> str:
    """`ACTS_ARCHIVE_DIR`: the root of the daily Parquet archive (`storage/archive.py`)."""
    return parse_archive_dir(_env(environ).get("ACTS_ARCHIVE_DIR"))


def parse_archive_dir(raw: str | None) -> str:
    """The archive root `raw` names: an fsspec URL (`s3://bucket/prefix`, `memory://acts`) as it is,
    a local folder made absolute; blank: `.acts/archive` in the working directory (the project
    folder `acts-pipeline dev` runs the platform from, beside its other local state)."""
    value = (raw or "").strip()
    if not value:
        return str(Path.cwd() / ".acts" / "archive")
    scheme, sep, rest = value.partition("://")
    if sep:
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) or not rest.strip("/"):
            raise ConfigurationError(f"ACTS_ARCHIVE_DIR must be a folder or an fsspec URL such as "
                                     f"s3://bucket/prefix, got {redact_uri(value)!r}")
        return value.rstrip("/") if scheme != "file" else str(Path(rest).absolute())
    return str(Path(value).expanduser().absolute())


def _parse_retention(raw: str | int | None, variable: str, default: int | None) -> int | None:
    """Days of documents MongoDB keeps (1..36600), or None: forever (`KEEP_FOREVER`)."""
    text = str(raw if raw is not None else "").strip()
    if not text:
        return default
    if text.lower() == KEEP_FOREVER:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ConfigurationError(
            f"{variable} must be a whole number of days or {KEEP_FOREVER!r}, got {text!r}") from None
    if not 1 <= value <= MAX_RETENTION_DAYS:
        raise ConfigurationError(
            f"{variable} must be between 1 and {MAX_RETENTION_DAYS} days (or {KEEP_FOREVER!r}), got {value}")
    return value


def parse_snapshot_retention_days(raw: str | int | None) -> int | None:
    return _parse_retention(raw, "ACTS_SNAPSHOT_RETENTION_DAYS", DEFAULT_SNAPSHOT_RETENTION_DAYS)


def snapshot_retention_days(environ: Mapping[str, str] | None = None) -> int | None:
    """`ACTS_SNAPSHOT_RETENTION_DAYS` (default 30): whole UTC days of snapshots MongoDB keeps
    once they are archived and verified; `forever` keeps them all."""
    return parse_snapshot_retention_days(_env(environ).get("ACTS_SNAPSHOT_RETENTION_DAYS"))


def parse_features_retention_days(raw: str | int | None) -> int | None:
    return _parse_retention(raw, "ACTS_FEATURES_RETENTION_DAYS", None)


def features_retention_days(environ: Mapping[str, str] | None = None) -> int | None:
    """`ACTS_FEATURES_RETENTION_DAYS` (default `forever`), as for snapshots."""
    return parse_features_retention_days(_env(environ).get("ACTS_FEATURES_RETENTION_DAYS"))


def parse_klines_retention_days(raw: str | int | None) -> int | None:
    return _parse_retention(raw, "ACTS_KLINES_RETENTION_DAYS", None)


def klines_retention_days(environ: Mapping[str, str] | None = None) -> int | None:
    """`ACTS_KLINES_RETENTION_DAYS` (default `forever`), as for snapshots."""
    return parse_klines_retention_days(_env(environ).get("ACTS_KLINES_RETENTION_DAYS"))


# --- Alerts (issue 13, item 5) --------------------------------------------------------------------

#: Between two messages about one ongoing problem, at least this long (a reminder).
DEFAULT_ALERT_REMINDER_MINUTES = 60
MAX_ALERT_REMINDER_MINUTES = 7 * 24 * 60


def alert_webhook_url(environ: Mapping[str, str] | None = None) -> str | None:
    """`ACTS_ALERT_WEBHOOK_URL`: the Slack-compatible incoming webhook alerts are posted to; None
    (unset or blank): alerts are off."""
    return parse_alert_webhook_url(_env(environ).get("ACTS_ALERT_WEBHOOK_URL"))


def parse_alert_webhook_url(raw: str | None) -> str | None:
    """The webhook URL `raw` names, or None if blank. A webhook URL is a secret (Slack's carries its
    token in the path), so no message shows any of it."""
    url = (raw or "").strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ConfigurationError("ACTS_ALERT_WEBHOOK_URL must be an http(s) URL such as "
                                 "https://hooks.slack.com/services/...; its value is a secret and is not shown")
    return url


def alert_reminder_minutes(environ: Mapping[str, str] | None = None) -> int:
    return parse_alert_reminder_minutes(_env(environ).get("ACTS_ALERT_REMINDER_MINUTES", ""))


def parse_alert_reminder_minutes(raw: str | int | None) -> int:
    """`ACTS_ALERT_REMINDER_MINUTES` (1..10080, default 60): the least time between two messages
    about one ongoing problem."""
    return _parse_whole_number(raw, "ACTS_ALERT_REMINDER_MINUTES", "minutes", DEFAULT_ALERT_REMINDER_MINUTES,
                               MAX_ALERT_REMINDER_MINUTES)


# --- Environments: DEV, TEST, PROD (issue 13, item 3) --------------------------------------------

ENVIRONMENTS = ("dev", "test", "prod")
DEFAULT_ENVIRONMENT = "dev"
#: The local state folder of `acts-pipeline dev` in the project folder (DEV's; TEST's is in config/test.env).
DEFAULT_STATE_DIR = ".acts"
DEFAULT_DAGSTER_PORT = 3000
#: Settings that are secrets: read from the process environment only, never from a file of the
#: repository (`acts_pipeline/platform/environments.py` refuses them there).
SECRETS = ("ACTS_MONGO_URI", "ACTS_ALERT_WEBHOOK_URL", "DAGSTER_PG_URL")


def acts_env(environ: Mapping[str, str] | None = None) -> str:
    """`ACTS_ENV`: the environment this process belongs to, `dev` (default), `test` or `prod`."""
    return parse_acts_env(_env(environ).get("ACTS_ENV", ""))


def parse_acts_env(raw: str | None) -> str:
    value = (raw or "").strip().lower() or DEFAULT_ENVIRONMENT
    if value not in ENVIRONMENTS:
        raise ConfigurationError(f"ACTS_ENV must be one of {', '.join(ENVIRONMENTS)}, got {value!r}")
    return value


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`ACTS_STATE_DIR`: the folder of `acts-pipeline dev`'s local state (embedded database files,
    Dagster instance, spool, archive, logs); relative: to the project folder. Default `.acts`."""
    return parse_state_dir(_env(environ).get("ACTS_STATE_DIR"))


def parse_state_dir(raw: str | None) -> Path:
    value = (raw or "").strip() or DEFAULT_STATE_DIR
    if "://" in value or value in (".", ".."):
        raise ConfigurationError(f"ACTS_STATE_DIR must be a local folder of its own, got {value!r}")
    return Path(value).expanduser()


def dagster_port(environ: Mapping[str, str] | None = None) -> int:
    """`ACTS_DAGSTER_PORT`: the port of the Dagster UI `acts-pipeline dev` serves (default 3000;
    `--port` wins)."""
    return _whole_number(environ, "ACTS_DAGSTER_PORT", "port", DEFAULT_DAGSTER_PORT, 65535)


def alert_deployment(environ: Mapping[str, str] | None = None) -> str:
    """`ACTS_ALERT_DEPLOYMENT`: how each alert names this platform; default `ACTS <ENV>` after
    `ACTS_ENV` (`ACTS DEV`, `ACTS TEST`, `ACTS PROD`)."""
    env = _env(environ)
    return parse_alert_deployment(env.get("ACTS_ALERT_DEPLOYMENT"), environment=acts_env(env))


def parse_alert_deployment(raw: str | None, *, environment: str = DEFAULT_ENVIRONMENT) -> str:
    value = (raw or "").strip()
    if not value:
        return f"ACTS {environment.upper()}"
    if len(value) > 40 or not value.isprintable():
        raise ConfigurationError(f"ACTS_ALERT_DEPLOYMENT must be a short name on one line (at most 40 characters), "
                                 f"got {value[:60]!r}")
    return value


def _prod_has_its_database(environ: Mapping[str, str] | None = None) -> None:
    """PROD has no embedded database: its MongoDB is a secret of the environment."""
    env = _env(environ)
    if acts_env(env) == "prod" and not env.get("ACTS_MONGO_URI", "").strip():
        raise ConfigurationError("ACTS_ENV=prod needs ACTS_MONGO_URI (a secret, set in the environment, e.g. "
                                 "/etc/acts/acts.env): PROD has no embedded database")


#: Every setting's reader, in the order a person reads the README's table. `check_environment`
#: runs them all; the CLI's `dev` and the code location call it when they start.
READERS = (mongo_db, binance_api_url, binance_ws_url, book_source, webserver_url, initial_symbols, depth_limit,
           capture_tolerance_seconds, partition_window_hours, recorder_retention_days, recorder_snapshot_depth,
           recorder_health_port, archive_dir, snapshot_retention_days, features_retention_days,
           klines_retention_days, alert_webhook_url, alert_reminder_minutes, acts_env, alert_deployment, state_dir,
           dagster_port, dagster_niceness, _prod_has_its_database)
#: Every variable a reader above reads (and the spool folder's), for the environment files: a key
#: of config/<env>.env must be one of these (`acts_pipeline/platform/environments.py`).
VARIABLES = ("ACTS_ENV", "ACTS_MONGO_URI", "ACTS_MONGO_DB", "ACTS_BINANCE_API_URL", "ACTS_BINANCE_WS_URL",
             "ACTS_BOOK_SOURCE", "ACTS_DAGSTER_WEBSERVER_URL", "ACTS_DAGSTER_PORT", "ACTS_SYMBOLS", "ACTS_DEPTH_LIMIT",
             "ACTS_CAPTURE_TOLERANCE_SECONDS", "ACTS_PARTITION_WINDOW_HOURS", "ACTS_PARTITION_WINDOW_DAYS",
             "ACTS_RECORDER_RETENTION_DAYS", "ACTS_RECORDER_SNAPSHOT_DEPTH", "ACTS_RECORDER_HEALTH_PORT",
             "ACTS_DAGSTER_NICENESS",
             "ACTS_STATE_DIR", "ACTS_SPOOL_DIR", "ACTS_ARCHIVE_DIR", "ACTS_SNAPSHOT_RETENTION_DAYS",
             "ACTS_FEATURES_RETENTION_DAYS", "ACTS_KLINES_RETENTION_DAYS", "ACTS_ALERT_WEBHOOK_URL",
             "ACTS_ALERT_REMINDER_MINUTES", "ACTS_ALERT_DEPLOYMENT")


def check_environment(environ: Mapping[str, str] | None = None, *, require_mongo_uri: bool = False) -> None:
    """Reads every `ACTS_*` setting; one `ConfigurationError` listing every bad value, if any.
    `ACTS_MONGO_URI` is checked when set (or when `require_mongo_uri`): a code location loads
    without it (its resource says so when a run needs the database), except in PROD."""
    env = _env(environ)
    readers = list(READERS)
    if require_mongo_uri or env.get("ACTS_MONGO_URI", "").strip():
        readers.insert(0, mongo_uri)
    problems = []
    for reader in readers:
        try:
            reader(env)
        except ConfigurationError as exc:
            if str(exc) not in problems:  # a bad ACTS_ENV is said once, not by each reader that reads it
                problems.append(str(exc))
    if len(problems) == 1:
        raise ConfigurationError(problems[0])
    if problems:
        raise ConfigurationError(f"{len(problems)} bad settings: " + "; ".join(problems))
