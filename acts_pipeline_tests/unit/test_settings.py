"""The `ACTS_*` readers: defaults, a `ConfigurationError` naming the variable for each bad value,
and no credential in any message."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from acts_pipeline import settings
from acts_pipeline.core.errors import ConfigurationError

# ---- defaults --------------------------------------------------------------------------------


def test_defaults_with_an_empty_environment():
    empty: dict[str, str] = {}
    assert settings.mongo_db(empty) == "acts"
    assert settings.binance_api_url(empty) == "https://api.binance.com/api"
    assert settings.initial_symbols(empty) == ("BTCUSDT", "ETHUSDT")
    assert settings.depth_limit(empty) == 100
    assert settings.capture_tolerance_seconds(empty) == 10.0
    assert settings.partition_window_hours(empty) == 1


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_values_mean_the_default(blank):
    env = {name: blank for name in ("ACTS_MONGO_DB", "ACTS_BINANCE_API_URL", "ACTS_DEPTH_LIMIT",
                                    "ACTS_CAPTURE_TOLERANCE_SECONDS", "ACTS_PARTITION_WINDOW_HOURS",
                                    "ACTS_PARTITION_WINDOW_DAYS")}
    assert settings.mongo_db(env) == "acts"
    assert settings.binance_api_url(env) == "https://api.binance.com/api"
    assert settings.depth_limit(env) == 100
    assert settings.capture_tolerance_seconds(env) == 10.0
    assert settings.partition_window_hours(env) == 1


def test_good_values_are_read_and_normalised():
    env = {
        "ACTS_MONGO_URI": " mongodb://user:pw@db.example:27017/?authSource=admin ",
        "ACTS_MONGO_DB": "acts_test",
        "ACTS_BINANCE_API_URL": "http://127.0.0.1:8765/api/",
        "ACTS_SYMBOLS": " btcusdt, ETHUSDT,,BTCUSDT ,nknusdt",
        "ACTS_DEPTH_LIMIT": " 5000 ",
        "ACTS_CAPTURE_TOLERANCE_SECONDS": "2.5",
        "ACTS_PARTITION_WINDOW_HOURS": " 12 ",
    }
    assert settings.mongo_uri(env) == "mongodb://user:pw@db.example:27017/?authSource=admin"
    assert settings.mongo_db(env) == "acts_test"
    assert settings.binance_api_url(env) == "http://127.0.0.1:8765/api"
    assert settings.initial_symbols(env) == ("BTCUSDT", "ETHUSDT", "NKNUSDT")  # deduplicated, in order
    assert settings.depth_limit(env) == 5000
    assert settings.capture_tolerance_seconds(env) == 2.5
    assert settings.partition_window_hours(env) == 12
    assert settings.mongo_uri({"ACTS_MONGO_URI": "mongodb+srv://cluster0.example.net/"})


def test_the_webserver_url_is_optional():
    assert settings.webserver_url({}) is None
    assert settings.webserver_url({"ACTS_DAGSTER_WEBSERVER_URL": " "}) is None
    assert settings.webserver_url({"ACTS_DAGSTER_WEBSERVER_URL": "http://127.0.0.1:3000/"}) == "http://127.0.0.1:3000"


def test_the_environment_is_read_at_call_time(monkeypatch):
    monkeypatch.setenv("ACTS_DEPTH_LIMIT", "20")
    assert settings.depth_limit() == 20
    monkeypatch.setenv("ACTS_DEPTH_LIMIT", "500")
    assert settings.depth_limit() == 500
    monkeypatch.delenv("ACTS_DEPTH_LIMIT")
    assert settings.depth_limit() == 100


@pytest.mark.parametrize(("raw", "hours"), [("1", 1), (" 6 ", 6), ("48", 48), ("2160", 2160)])
def test_partition_window_hours_accepts_1_to_2160(raw, hours):
    assert settings.partition_window_hours({"ACTS_PARTITION_WINDOW_HOURS": raw}) == hours


@pytest.mark.parametrize(("raw", "hours"), [("1", 24), (" 7 ", 168), ("90", 2160)])
def test_the_earlier_window_in_days_is_still_read_as_hours(raw, hours):
    assert settings.partition_window_hours({"ACTS_PARTITION_WINDOW_DAYS": raw}) == hours


def test_the_window_in_hours_and_in_days_cannot_both_be_set():
    with pytest.raises(ConfigurationError, match="ACTS_PARTITION_WINDOW_HOURS and ACTS_PARTITION_WINDOW_DAYS"):
        settings.partition_window_hours({"ACTS_PARTITION_WINDOW_HOURS": "6", "ACTS_PARTITION_WINDOW_DAYS": "1"})
    # a blank one is unset
    assert settings.partition_window_hours({"ACTS_PARTITION_WINDOW_HOURS": "5", "ACTS_PARTITION_WINDOW_DAYS": " "}) == 5


def test_partition_window_hours_is_read_at_call_time(monkeypatch):
    monkeypatch.delenv("ACTS_PARTITION_WINDOW_DAYS", raising=False)
    monkeypatch.setenv("ACTS_PARTITION_WINDOW_HOURS", "7")
    assert settings.partition_window_hours() == 7
    monkeypatch.delenv("ACTS_PARTITION_WINDOW_HOURS")
    assert settings.partition_window_hours() == 1


# ---- bad values ------------------------------------------------------------------------------

BAD_VALUES = [
    ("ACTS_DEPTH_LIMIT", "abc", settings.depth_limit, "whole number"),
    ("ACTS_DEPTH_LIMIT", "10.5", settings.depth_limit, "whole number"),
    ("ACTS_DEPTH_LIMIT", "0", settings.depth_limit, "between 1 and 5000"),
    ("ACTS_DEPTH_LIMIT", "-5", settings.depth_limit, "between 1 and 5000"),
    ("ACTS_DEPTH_LIMIT", "6000", settings.depth_limit, "between 1 and 5000"),
    ("ACTS_SYMBOLS", "", settings.initial_symbols, "empty"),
    ("ACTS_SYMBOLS", " , ", settings.initial_symbols, "empty"),
    ("ACTS_SYMBOLS", "btc-usdt", settings.initial_symbols, "BTC-USDT"),
    ("ACTS_SYMBOLS", "BTCUSDT,ETH/USDT", settings.initial_symbols, "ETH/USDT"),
    ("ACTS_MONGO_URI", "", settings.mongo_uri, "not set"),
    ("ACTS_MONGO_URI", "http://x", settings.mongo_uri, "mongodb://"),
    ("ACTS_MONGO_URI", "localhost:27017", settings.mongo_uri, "mongodb://"),
    ("ACTS_MONGO_DB", "acts.prod", settings.mongo_db, "plain database name"),
    ("ACTS_MONGO_DB", "a b", settings.mongo_db, "plain database name"),
    ("ACTS_BINANCE_API_URL", "ftp://api.binance.com/api", settings.binance_api_url, "http(s) URL"),
    ("ACTS_BINANCE_API_URL", "api.binance.com/api", settings.binance_api_url, "http(s) URL"),
    ("ACTS_BINANCE_API_URL", "http://127.0.0.1:port/api", settings.binance_api_url, "http(s) URL"),
    ("ACTS_BINANCE_API_URL", "http://[::1/api", settings.binance_api_url, "http(s) URL"),
    ("ACTS_CAPTURE_TOLERANCE_SECONDS", "soon", settings.capture_tolerance_seconds, "number of seconds"),
    ("ACTS_CAPTURE_TOLERANCE_SECONDS", "0", settings.capture_tolerance_seconds, "between 0.5 and 50"),
    ("ACTS_CAPTURE_TOLERANCE_SECONDS", "60", settings.capture_tolerance_seconds, "between 0.5 and 50"),
    ("ACTS_CAPTURE_TOLERANCE_SECONDS", "nan", settings.capture_tolerance_seconds, "between 0.5 and 50"),
    ("ACTS_DAGSTER_WEBSERVER_URL", "localhost:3000", settings.webserver_url, "http(s) URL"),
    ("ACTS_DAGSTER_WEBSERVER_URL", "http://127.0.0.1:web", settings.webserver_url, "http(s) URL"),
    ("ACTS_PARTITION_WINDOW_HOURS", "six", settings.partition_window_hours, "whole number of hours"),
    ("ACTS_PARTITION_WINDOW_HOURS", "1.5", settings.partition_window_hours, "whole number of hours"),
    ("ACTS_PARTITION_WINDOW_HOURS", "0", settings.partition_window_hours, "between 1 and 2160"),
    ("ACTS_PARTITION_WINDOW_HOURS", "-3", settings.partition_window_hours, "between 1 and 2160"),
    ("ACTS_PARTITION_WINDOW_HOURS", "2161", settings.partition_window_hours, "between 1 and 2160"),
    ("ACTS_PARTITION_WINDOW_DAYS", "two", settings.partition_window_hours, "whole number of days"),
    ("ACTS_PARTITION_WINDOW_DAYS", "1.5", settings.partition_window_hours, "whole number of days"),
    ("ACTS_PARTITION_WINDOW_DAYS", "0", settings.partition_window_hours, "between 1 and 90"),
    ("ACTS_PARTITION_WINDOW_DAYS", "91", settings.partition_window_hours, "between 1 and 90"),
    ("ACTS_DAGSTER_NICENESS", "low", settings.dagster_niceness, "whole number from 0 to 19"),
    ("ACTS_DAGSTER_NICENESS", "-1", settings.dagster_niceness, "between 0 and 19"),
    ("ACTS_DAGSTER_NICENESS", "20", settings.dagster_niceness, "between 0 and 19"),
]


@pytest.mark.parametrize(("raw", "niceness"), [("", 5), (" ", 5), ("0", 0), ("19", 19), (" 7 ", 7)])
def test_dagster_niceness_defaults_to_5_and_accepts_0_to_19(raw, niceness):
    assert settings.dagster_niceness({"ACTS_DAGSTER_NICENESS": raw}) == niceness


@pytest.mark.parametrize(("variable", "value", "reader", "problem"), BAD_VALUES,
                         ids=[f"{v}={x!r}" for v, x, _, _ in BAD_VALUES])
def test_a_bad_value_is_a_configuration_error_naming_the_variable(variable, value, reader, problem):
    with pytest.raises(ConfigurationError) as raised:
        reader({variable: value})
    assert variable in str(raised.value)
    assert problem in str(raised.value)


def test_unset_mongo_uri_is_an_error_that_says_what_to_do():
    with pytest.raises(ConfigurationError, match="ACTS_MONGO_URI is not set.*acts-pipeline dev"):
        settings.mongo_uri({})


def test_parse_symbols_names_the_variable_it_is_given():
    with pytest.raises(ConfigurationError, match="--symbols is empty"):
        settings.parse_symbols(",", variable="--symbols")
    assert settings.parse_symbols("nknusdt") == ("NKNUSDT",)


# ---- secrets ---------------------------------------------------------------------------------


def test_redact_uri_drops_user_info_and_query():
    redacted = settings.redact_uri("mongodb://user:secret@host:27017/db?authSource=admin")
    assert "secret" not in redacted
    assert "user" not in redacted
    assert "?" not in redacted and "authSource" not in redacted
    assert redacted == "mongodb://***@host:27017/db"


@pytest.mark.parametrize(("uri", "redacted"), [
    ("https://api.binance.com/api", "https://api.binance.com/api"),
    ("http://127.0.0.1:8765/api?x=1#frag", "http://127.0.0.1:8765/api"),
    ("mongodb+srv://admin:pw@cluster0.example.net/acts", "mongodb+srv://***@cluster0.example.net/acts"),
])
def test_redact_uri_keeps_scheme_host_port_and_path(uri, redacted):
    assert settings.redact_uri(uri) == redacted


# Passwords in the places an operator could put them, including the typos that leave a URI
# without a "//host" part, an unescaped "/" or "#" or "@" in the password, and a bad port.
PASSWORD = "hunter2xyz"
URIS_WITH_A_PASSWORD = [
    f"http://admin:{PASSWORD}@db.example:27017/acts",
    f"https://admin:{PASSWORD}@db.example/acts?authSource=admin",
    f"mongodb:/admin:{PASSWORD}@db.example:27017",
    f"mongodb//admin:{PASSWORD}@db.example:27017",
    f"admin:{PASSWORD}@db.example:27017/acts",
    f"http://admin:{PASSWORD}@db.example:abc/acts",
    f"http://admin:{PASSWORD}/1@db.example/acts",
    f"http://admin:{PASSWORD}#1@db.example/acts",
    f"http://admin:{PASSWORD}@1@db.example/acts",
    f"ftp://admin:{PASSWORD}@db.example/acts",
    f"http://db.example/acts?password={PASSWORD}",
    f"http://[::1:{PASSWORD}@db.example/acts",
]


@pytest.mark.parametrize("uri", URIS_WITH_A_PASSWORD)
def test_redact_uri_never_shows_the_password(uri):
    assert PASSWORD not in settings.redact_uri(uri)


@pytest.mark.parametrize("uri", URIS_WITH_A_PASSWORD)
def test_no_mongo_uri_error_message_contains_the_password(uri):
    with pytest.raises(ConfigurationError) as raised:  # none of them starts with mongodb://
        settings.mongo_uri({"ACTS_MONGO_URI": uri})
    assert "ACTS_MONGO_URI" in str(raised.value)
    assert PASSWORD not in str(raised.value) and PASSWORD not in repr(raised.value)


@pytest.mark.parametrize("uri", URIS_WITH_A_PASSWORD)
def test_no_binance_url_error_message_contains_the_password(uri):
    try:
        settings.binance_api_url({"ACTS_BINANCE_API_URL": uri})
    except ConfigurationError as error:
        assert "ACTS_BINANCE_API_URL" in str(error)
        assert PASSWORD not in str(error) and PASSWORD not in repr(error)
    else:  # accepted: only a well-formed http(s) URL with a host may be
        parts = urlsplit(uri)
        assert parts.scheme in ("http", "https") and parts.hostname == "db.example"


# ---- alerts (issue 13, item 5) -----------------------------------------------------------------

SLACK_TOKEN = "T0ACTS00/B0ACTS00/s3cr3tT0kenInThePath"


def test_alerts_are_off_until_a_webhook_is_given_and_remind_hourly_by_default():
    assert settings.alert_webhook_url({}) is None
    assert settings.alert_webhook_url({"ACTS_ALERT_WEBHOOK_URL": "  "}) is None
    assert settings.alert_reminder_minutes({}) == 60
    url = f" https://hooks.slack.com/services/{SLACK_TOKEN} "
    assert settings.alert_webhook_url({"ACTS_ALERT_WEBHOOK_URL": url}) == url.strip()
    assert settings.alert_webhook_url({"ACTS_ALERT_WEBHOOK_URL": "http://127.0.0.1:8931/hook"}) == "http://127.0.0.1:8931/hook"
    assert settings.alert_reminder_minutes({"ACTS_ALERT_REMINDER_MINUTES": " 15 "}) == 15
    settings.check_environment({"ACTS_ALERT_WEBHOOK_URL": url, "ACTS_ALERT_REMINDER_MINUTES": "10080"})


@pytest.mark.parametrize("url", [f"hooks.slack.com/services/{SLACK_TOKEN}", f"ftp://hooks.slack.com/{SLACK_TOKEN}",
                                 f"https:///{SLACK_TOKEN}", f"https://hooks.slack.com:port/{SLACK_TOKEN}",
                                 f"https://hooks.slack.com/services/{SLACK_TOKEN} trailing words"])
def test_a_bad_webhook_url_is_refused_without_showing_any_of_it(url):
    with pytest.raises(ConfigurationError) as raised:
        settings.check_environment({"ACTS_ALERT_WEBHOOK_URL": url})
    message = str(raised.value)
    assert message.startswith("ACTS_ALERT_WEBHOOK_URL must be an http(s) URL") and "not shown" in message
    assert "s3cr3t" not in message and "hooks.slack.com" not in message.split("such as")[0]
    assert "s3cr3t" not in repr(raised.value)


@pytest.mark.parametrize(("raw", "problem"), [("0", "between 1 and 10080, got 0"), ("10081", "between 1 and 10080"),
                                              ("hourly", "a whole number of minutes, got 'hourly'")])
def test_a_bad_reminder_interval_names_the_variable(raw, problem):
    with pytest.raises(ConfigurationError, match=f"ACTS_ALERT_REMINDER_MINUTES must be {problem}"):
        settings.alert_reminder_minutes({"ACTS_ALERT_REMINDER_MINUTES": raw})
