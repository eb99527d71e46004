"""The `ACTS_*` environment variables, read and validated on demand, never at import time.

Resources call these readers when Dagster builds them (and the CLI when it starts), so a test or
a deployment changes configuration by changing the environment, with no module reloading. A bad
value fails fast with a `ConfigurationError` that names the variable and never echoes a secret.
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
    uri = _env(environ).get("ACTS_MONGO_URI", "").strip()
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
    name = _env(environ).get("ACTS_MONGO_DB", "").strip() or DEFAULT_MONGO_DB
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", name):
        raise ConfigurationError(f"ACTS_MONGO_DB must be a plain database name, got {name!r}")
    return name


def _http_url(url: str, variable: str) -> str:
    """`url` without a trailing slash, if it is an http(s) URL with a host (and a numeric port)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{variable} must be an http(s) URL, got {redact_uri(url)!r}")
    return url.rstrip("/")


def binance_api_url(environ: Mapping[str, str] | None = None) -> str:
    url = _env(environ).get("ACTS_BINANCE_API_URL", "").strip() or DEFAULT_BINANCE_API_URL
    return _http_url(url, "ACTS_BINANCE_API_URL")


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


def _whole_number(environ: Mapping[str, str] | None, variable: str, unit: str, default: int, highest: int) -> int:
    """`variable` as a whole number of `unit` in 1..`highest`; `default` when unset or blank."""
    raw = _env(environ).get(variable, "").strip()
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
    return _whole_number(environ, "ACTS_DEPTH_LIMIT", "levels", DEFAULT_DEPTH_LIMIT, MAX_DEPTH_LIMIT)


def spool_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`ACTS_SPOOL_DIR`, else `acts_spool` in `DAGSTER_HOME`, else `.acts/spool` here: a folder
    every run process of the instance shares, on a disk that survives restarts."""
    env = _env(environ)
    if env.get("ACTS_SPOOL_DIR", "").strip():
        return Path(env["ACTS_SPOOL_DIR"].strip())
    if env.get("DAGSTER_HOME", "").strip():
        return Path(env["DAGSTER_HOME"].strip()) / "acts_spool"
    return Path.cwd() / ".acts" / "spool"


def exchange_block_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where run processes share the exchange's Retry-After or ban (next to the spool)."""
    return spool_dir(environ).parent / "acts_exchange_block.json"


def capture_tolerance_seconds(environ: Mapping[str, str] | None = None) -> float:
    raw = _env(environ).get("ACTS_CAPTURE_TOLERANCE_SECONDS", "").strip()
    if not raw:
        return DEFAULT_CAPTURE_TOLERANCE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"ACTS_CAPTURE_TOLERANCE_SECONDS must be a number of seconds, got {raw!r}") from None
    if not 0.5 <= value <= 50:
        raise ConfigurationError(f"ACTS_CAPTURE_TOLERANCE_SECONDS must be between 0.5 and 50, got {value}")
    return value


#: The minute partitions reach back this many whole hours before the hour the code location
#: loaded. Dagster's partition pages cost time in proportion to the cells the window holds
#: (benchmarks/ui_pages.py): 6 hours keeps every page under 2 s at 100 symbols.
DEFAULT_PARTITION_WINDOW_HOURS = 6
MAX_PARTITION_WINDOW_HOURS = 90 * 24
MAX_PARTITION_WINDOW_DAYS = 90


def partition_window_hours(environ: Mapping[str, str] | None = None) -> int:
    """`ACTS_PARTITION_WINDOW_HOURS` (1..2160): how many whole hours before the current hour the
    minute partitions reach back. `ACTS_PARTITION_WINDOW_DAYS` (1..90), the earlier setting, is
    still read as that many days of hours; setting both is an error. Read when the code location
    loads (a partitions definition is part of the asset definitions, built before any resource)."""
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
