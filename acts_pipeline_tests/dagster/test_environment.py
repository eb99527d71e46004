"""One configuration path (issue 10, part 3): every `ACTS_*` setting reaches the code as a
resource field, bound with `EnvVar` when set; a bad value stops the code location's load with
the variable's name; every field says what it is."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import ConfigurableResource, EnvVar, asset, materialize

from acts_pipeline import settings
from acts_pipeline.core.errors import ConfigurationError
from acts_pipeline.exchange import BinanceExchange
from acts_pipeline.orchestration.alert_webhook import AlertWebhook
from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.orchestration.environment import BINDINGS, resources_from_environment
from acts_pipeline.orchestration.symbols import InitialSymbols
from acts_pipeline.storage.io_manager import MongoIOManager, MongoResource

SETTINGS_SOURCE = Path(settings.__file__).read_text()
#: Settings that are not a resource's: the CLI's webserver URL, and the partition window, which
#: shapes the asset definitions themselves (read when the partitions module is imported).
NOT_RESOURCE_SETTINGS = {"ACTS_DAGSTER_WEBSERVER_URL", "ACTS_PARTITION_WINDOW_HOURS", "ACTS_PARTITION_WINDOW_DAYS",
                         # the stream recorder's own, a process beside Dagster (acts-pipeline record)
                         "ACTS_BINANCE_WS_URL", "ACTS_RECORDER_RETENTION_DAYS", "ACTS_RECORDER_SNAPSHOT_DEPTH",
                         "ACTS_RECORDER_HEALTH_PORT",
                         # the CLI's: which environment (config/<env>.env), its state folder, its UI
                         # port, the niceness `dev` starts Dagster with
                         "ACTS_ENV", "ACTS_STATE_DIR", "ACTS_DAGSTER_PORT", "ACTS_DAGSTER_NICENESS"}


def test_every_variable_the_readers_name_is_listed_for_the_environment_files():
    assert set(settings.VARIABLES) == set(re.findall(r'"(ACTS_[A-Z_]+)"', SETTINGS_SOURCE))


def test_every_setting_the_code_reads_is_bound_to_a_resource_field():
    read = set(re.findall(r'"(ACTS_[A-Z_]+)"', SETTINGS_SOURCE))
    bound = {variable for fields in BINDINGS.values() for variable, _ in fields.values()}
    assert read - NOT_RESOURCE_SETTINGS == bound


@pytest.mark.parametrize("resource", [BinanceExchange, MongoResource, MongoIOManager, CaptureClock, InitialSymbols,
                                      BookSource, AlertWebhook])
def test_every_field_is_described(resource: type[ConfigurableResource]):
    undescribed = [name for name, field in resource.model_fields.items()
                   if name != "mongo" and not (field.description or "").strip()]
    assert undescribed == []


def test_set_variables_are_bound_with_envvar_and_unset_ones_keep_the_default():
    env = {"ACTS_MONGO_URI": "mongodb://user:secret@db.example/", "ACTS_DEPTH_LIMIT": "20",
           "ACTS_CAPTURE_TOLERANCE_SECONDS": "2.5", "ACTS_SYMBOLS": "NKNUSDT", "ACTS_BINANCE_API_URL": "  "}
    resources = resources_from_environment(env)
    exchange = resources["exchange"]
    assert isinstance(exchange.depth_limit, int) and exchange.depth_limit.env_var_name == "ACTS_DEPTH_LIMIT"
    assert exchange.api_url == settings.DEFAULT_BINANCE_API_URL  # blank: the default, as a value
    assert not isinstance(exchange.api_url, EnvVar)
    assert isinstance(resources["mongo"].uri, EnvVar) and "secret" not in repr(resources["mongo"])
    assert resources["mongo"].database == "acts"
    assert isinstance(resources["capture_clock"].tolerance_seconds, EnvVar)
    assert isinstance(resources["initial_symbols"].symbols, EnvVar)


def test_the_alert_webhook_is_bound_with_envvar_so_its_value_is_never_shown():
    url = "https://hooks.slack.com/services/T0ACTS00/B0ACTS00/s3cr3tT0kenInThePath"
    webhook = resources_from_environment({"ACTS_ALERT_WEBHOOK_URL": url, "ACTS_ALERT_REMINDER_MINUTES": "15"})["alert_webhook"]
    assert isinstance(webhook.url, EnvVar) and webhook.url.env_var_name == "ACTS_ALERT_WEBHOOK_URL"
    assert webhook.reminder_minutes.env_var_name == "ACTS_ALERT_REMINDER_MINUTES"
    assert "s3cr3t" not in repr(webhook) and "s3cr3t" not in str(webhook)
    off = resources_from_environment({})["alert_webhook"]
    assert off.url == "" and not off.enabled() and off.reminder_minutes == 60


def test_alerts_name_the_environment_unless_a_deployment_name_is_set():
    assert resources_from_environment({})["alert_webhook"].policy().deployment == "ACTS DEV"
    assert resources_from_environment({"ACTS_ENV": "test"})["alert_webhook"].deployment == "ACTS TEST"
    prod = resources_from_environment({"ACTS_ENV": "prod", "ACTS_MONGO_URI": "mongodb://db.example/"})
    assert prod["alert_webhook"].deployment == "ACTS PROD"
    named = resources_from_environment({"ACTS_ENV": "test", "ACTS_ALERT_DEPLOYMENT": "ACTS TEST eu-1"})["alert_webhook"]
    assert isinstance(named.deployment, EnvVar) and named.deployment.env_var_name == "ACTS_ALERT_DEPLOYMENT"
    with pytest.raises(ConfigurationError, match="ACTS_ENV must be one of dev, test, prod, got 'staging'"):
        resources_from_environment({"ACTS_ENV": "staging"})


def test_prod_without_its_database_does_not_load():
    with pytest.raises(ConfigurationError, match="ACTS_ENV=prod needs ACTS_MONGO_URI"):
        resources_from_environment({"ACTS_ENV": "prod"})


def test_a_run_reads_the_bound_variables_when_it_starts(monkeypatch):
    @asset
    def configured(exchange: BinanceExchange, capture_clock: CaptureClock, initial_symbols: InitialSymbols):
        return exchange.levels(), capture_clock.tolerance.total_seconds(), initial_symbols.parsed()

    monkeypatch.setenv("ACTS_DEPTH_LIMIT", " 20 ")
    monkeypatch.setenv("ACTS_CAPTURE_TOLERANCE_SECONDS", "2.5")
    monkeypatch.setenv("ACTS_SYMBOLS", "nknusdt, BTCUSDT")
    resources = resources_from_environment()
    resources.pop("io_manager"), resources.pop("mongo"), resources.pop("book_source")
    result = materialize([configured], resources=resources)
    assert result.output_for_node("configured") == (20, 2.5, ("NKNUSDT", "BTCUSDT"))

    for name in ("ACTS_DEPTH_LIMIT", "ACTS_CAPTURE_TOLERANCE_SECONDS", "ACTS_SYMBOLS"):
        monkeypatch.delenv(name)
    resources = resources_from_environment()
    resources.pop("io_manager"), resources.pop("mongo"), resources.pop("book_source")
    result = materialize([configured], resources=resources)
    assert result.output_for_node("configured") == (100, 10.0, ("BTCUSDT", "ETHUSDT"))


def test_a_bad_value_in_a_field_names_the_variable_too():
    with pytest.raises(ConfigurationError, match="ACTS_DEPTH_LIMIT must be between 1 and 5000, got 0"):
        BinanceExchange(depth_limit=0).levels()
    with pytest.raises(ConfigurationError, match="ACTS_CAPTURE_TOLERANCE_SECONDS must be a number of seconds"):
        CaptureClock(tolerance_seconds="soon").tolerance  # noqa: B018
    with pytest.raises(ConfigurationError, match="ACTS_MONGO_URI is not set"):
        MongoResource().get_store()


def test_loading_the_definitions_refuses_bad_values_naming_each_variable(monkeypatch):
    from acts_pipeline.definitions import defs

    monkeypatch.setenv("ACTS_DEPTH_LIMIT", "lots")
    monkeypatch.setenv("ACTS_MONGO_URI", "http://user:secret@db.example/")
    with pytest.raises(ConfigurationError) as raised:
        defs()
    message = str(raised.value)
    assert "ACTS_DEPTH_LIMIT must be a whole number of levels, got 'lots'" in message
    assert "ACTS_MONGO_URI must start with mongodb://" in message and "secret" not in message
    monkeypatch.delenv("ACTS_DEPTH_LIMIT")
    monkeypatch.delenv("ACTS_MONGO_URI")
    assert defs().resources["exchange"].depth_limit == 100


def test_importing_the_definitions_reads_no_resource_setting(tmp_path):
    """With a bad value set, the import succeeds (the load, which Dagster does next, fails)."""
    code = "import acts_pipeline.definitions as d; print(type(d.defs).__name__)"
    env = {"ACTS_DEPTH_LIMIT": "lots", "PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "LazyDefinitions"


def test_dagster_itself_refuses_to_load_the_code_location_with_a_bad_value(tmp_path):
    dagster = Path(sys.executable).parent / "dagster"
    env = {"ACTS_CAPTURE_TOLERANCE_SECONDS": "99", "PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("")
    done = subprocess.run([str(dagster), "definitions", "validate", "-m", "acts_pipeline.definitions"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode != 0
    assert "ACTS_CAPTURE_TOLERANCE_SECONDS must be between 0.5 and 50, got 99.0" in done.stdout + done.stderr
