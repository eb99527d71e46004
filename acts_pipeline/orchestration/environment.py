"""The code location's resources, each field bound to its `ACTS_*` variable with Dagster's `EnvVar`.

One configuration path: a setting reaches the code only as a resource field. A variable that is
set is bound with `EnvVar`, so the UI's resource page names the variable (and never shows a
secret's value) and every run reads it when it starts; an unset one leaves the field's default,
which the page shows as a value. Every variable is checked by its own parser before the
resources are built (`settings.check_environment`), so a bad value stops the code location from
loading with a message that names the variable, instead of failing the first run that needs it.

Called when Dagster loads the code location (`definitions.py` is a `@definitions` function), not
at import time. Dagster's `EnvVar` binds text and whole numbers only: `ACTS_CAPTURE_TOLERANCE_SECONDS`
(a fraction) is bound to a text field that the resource parses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dagster import ConfigurableResource, EnvVar

from acts_pipeline import settings
from acts_pipeline.exchange import BinanceExchange
from acts_pipeline.orchestration.alert_webhook import AlertWebhook
from acts_pipeline.orchestration.archive_assets import ArchiveResource
from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.orchestration.symbols import InitialSymbols
from acts_pipeline.storage.io_manager import MongoIOManager, MongoResource

#: resource key -> field -> (variable, bound as a whole number). The README's configuration table
#: lists the same variables; `test_environment.py` checks every `ACTS_*` reader is bound here.
BINDINGS: dict[str, dict[str, tuple[str, bool]]] = {
    "mongo": {"uri": ("ACTS_MONGO_URI", False), "database": ("ACTS_MONGO_DB", False)},
    "exchange": {"api_url": ("ACTS_BINANCE_API_URL", False), "depth_limit": ("ACTS_DEPTH_LIMIT", True),
                 "spool_dir": ("ACTS_SPOOL_DIR", False)},
    "capture_clock": {"tolerance_seconds": ("ACTS_CAPTURE_TOLERANCE_SECONDS", False)},
    "initial_symbols": {"symbols": ("ACTS_SYMBOLS", False)},
    "book_source": {"source": ("ACTS_BOOK_SOURCE", False)},
    "io_manager": {"spool_dir": ("ACTS_SPOOL_DIR", False)},
    "archive": {"root": ("ACTS_ARCHIVE_DIR", False),
                "snapshot_retention_days": ("ACTS_SNAPSHOT_RETENTION_DAYS", False),
                "features_retention_days": ("ACTS_FEATURES_RETENTION_DAYS", False),
                "klines_retention_days": ("ACTS_KLINES_RETENTION_DAYS", False)},
    # the URL is a secret: bound with EnvVar, the UI shows the variable's name, never its value
    "alert_webhook": {"url": ("ACTS_ALERT_WEBHOOK_URL", False),
                      "reminder_minutes": ("ACTS_ALERT_REMINDER_MINUTES", True),
                      # unset: "ACTS <ENV>" after ACTS_ENV (resources_from_environment)
                      "deployment": ("ACTS_ALERT_DEPLOYMENT", False)},
}


def bound_fields(resource_key: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """The `EnvVar` of each field of `resource_key` whose variable is set (not blank)."""
    fields = {}
    for field, (variable, whole_number) in BINDINGS[resource_key].items():
        if environ.get(variable, "").strip():
            fields[field] = EnvVar.int(variable) if whole_number else EnvVar(variable)
    return fields


def resources_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, ConfigurableResource]:
    """The code location's resources; `ConfigurationError` naming each bad variable."""
    env = os.environ if environ is None else environ
    settings.check_environment(env)
    mongo = MongoResource(**bound_fields("mongo", env))
    return {
        "exchange": BinanceExchange(**bound_fields("exchange", env)),
        "capture_clock": CaptureClock(**bound_fields("capture_clock", env)),
        "initial_symbols": InitialSymbols(**bound_fields("initial_symbols", env)),
        "book_source": BookSource(mongo=mongo, **bound_fields("book_source", env)),
        "mongo": mongo,
        "io_manager": MongoIOManager(mongo=mongo, **bound_fields("io_manager", env)),
        "archive": ArchiveResource(**bound_fields("archive", env)),
        "alert_webhook": AlertWebhook(**{"deployment": settings.alert_deployment(env),
                                         **bound_fields("alert_webhook", env)}),
    }
