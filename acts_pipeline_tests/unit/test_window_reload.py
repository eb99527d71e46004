"""The hourly reload that moves the rolling partition window, and the warm-up of the partition
status after it, against a stand-in webserver."""

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from acts_pipeline.orchestration.retention import retention_cutoff
from acts_pipeline.platform.window_reload import (
    RELOAD_OFFSET,
    HourlyReloader,
    ReloadError,
    next_reload,
    first_minute_key,
    reload_and_warm,
    reload_code_locations,
    warm_partition_status,
    window_start_message,
)
from acts_pipeline_tests.fakes import GraphqlWebserver
from acts_pipeline_tests.ports import refusing_port


def test_the_reload_is_ten_seconds_past_every_hour_and_always_ahead():
    assert RELOAD_OFFSET == timedelta(seconds=10)
    assert next_reload(datetime(2026, 11, 26, 13, 5, tzinfo=UTC)) == datetime(2026, 11, 26, 14, 0, 10, tzinfo=UTC)
    assert next_reload(datetime(2026, 11, 26, 13, 0, 5, tzinfo=UTC)) == datetime(2026, 11, 26, 13, 0, 10, tzinfo=UTC)
    assert next_reload(datetime(2026, 11, 26, 13, 0, 10, tzinfo=UTC)) == datetime(2026, 11, 26, 14, 0, 10, tzinfo=UTC)
    assert next_reload(datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC)) == datetime(2026, 11, 27, 0, 0, 10, tzinfo=UTC)
    # an aware time elsewhere is converted, not read as UTC (India is 5:30 ahead: 19:20 is 13:50 UTC)
    india = datetime(2026, 11, 26, 19, 20, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert next_reload(india) == datetime(2026, 11, 26, 14, 0, 10, tzinfo=UTC)


def test_retention_keeps_the_live_window_by_default():
    now = datetime(2026, 11, 26, 13, 5, tzinfo=UTC)
    start = datetime(2026, 11, 26, 11, tzinfo=UTC)
    assert retention_cutoff(now, None, start) == start
    assert retention_cutoff(now, 1.5, start) == now - timedelta(days=1.5)


def workspace(*entries):
    return {"data": {"reloadWorkspace": {"__typename": "Workspace", "locationEntries": list(entries)}}}


def test_reload_posts_the_mutation_and_returns_the_locations():
    server = GraphqlWebserver(workspace({"name": "acts_pipeline.definitions",
                                  "locationOrLoadError": {"__typename": "RepositoryLocation"}}))
    try:
        assert reload_code_locations(server.url + "/") == ["acts_pipeline.definitions"]
        assert "reloadWorkspace" in server.posted[0]["query"]
    finally:
        server.close()


@pytest.mark.parametrize(("body", "message"), [
    (workspace({"name": "acts_pipeline.definitions",
                "locationOrLoadError": {"__typename": "PythonError", "message": "ConfigurationError: ACTS_PARTITION_WINDOW_HOURS"}}),
     "code location acts_pipeline.definitions failed to load: ConfigurationError: ACTS_PARTITION_WINDOW_HOURS"),
    ({"data": {"reloadWorkspace": {"__typename": "UnauthorizedError", "message": "read-only webserver"}}},
     "reloadWorkspace failed: read-only webserver"),
    ({"errors": [{"message": "Cannot query field"}]}, "reloadWorkspace refused: Cannot query field"),
])
def test_a_failed_reload_says_which_location_and_why(body, message):
    server = GraphqlWebserver(body)
    try:
        with pytest.raises(ReloadError, match=message):
            reload_code_locations(server.url)
    finally:
        server.close()


def test_an_unreachable_webserver_is_named():
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(ReloadError, match=f"could not reach the Dagster webserver at {url}"):
            reload_code_locations(url, timeout=2)


ASSET_NODES = {"data": {"assetNodes": [
    {"assetKey": {"path": ["order_book_snapshot"]}, "isPartitioned": True, "partitionStats": {"numMaterialized": 3}},
    {"assetKey": {"path": ["klines_1m"]}, "isPartitioned": True, "partitionStats": {"numMaterialized": 0}},
    {"assetKey": {"path": ["prune", "other"]}, "isPartitioned": False, "partitionStats": None},
]}}
LOADED = workspace({"name": "acts_pipeline.definitions", "locationOrLoadError": {"__typename": "RepositoryLocation"}})


def first_key(minute_key):
    """The webserver's answer to the first-minute query: one key per dimension."""
    return {"data": {"assetNodeOrError": {"__typename": "AssetNode", "partitionKeysByDimension": [
        {"name": "minute", "partitionKeys": [minute_key]}, {"name": "symbol", "partitionKeys": ["BTCUSDT"]}]}}}


def webserver(first_keys):
    """A webserver whose partition window starts at `first_keys[0]` until reloaded, then at
    `first_keys[1]`."""
    reloads = []

    def respond(query):
        if "reloadWorkspace" in query:
            reloads.append(query)
            return LOADED
        if "partitionKeysByDimension" in query:
            return first_key(first_keys[min(len(reloads), 1)])
        return ASSET_NODES

    return GraphqlWebserver(respond)


def answer(query):
    """A webserver whose window start stays put."""
    if "reloadWorkspace" in query:
        return LOADED
    return first_key("2026-11-26-07:00") if "partitionKeysByDimension" in query else ASSET_NODES


def test_the_warm_up_asks_every_asset_for_its_partition_stats():
    server = GraphqlWebserver(ASSET_NODES)
    try:
        assert warm_partition_status(server.url) == ["order_book_snapshot", "klines_1m"]
        assert "partitionStats" in server.posted[0]["query"] and "assetNodes" in server.posted[0]["query"]
    finally:
        server.close()


def test_the_window_start_is_read_as_one_key_of_the_minute_dimension():
    server = GraphqlWebserver(first_key("2026-11-26-07:00"))
    try:
        assert first_minute_key(server.url) == "2026-11-26-07:00"
    finally:
        server.close()
    query = server.posted[0]["query"]
    # a bounded index range: the webserver builds one key, not the window's thousands
    assert 'assetKey: {path: ["order_book_snapshot"]}' in query
    assert "partitionKeysByDimension(startIdx: 0, endIdx: 1)" in query


def test_a_webserver_without_the_asset_has_no_window_start():
    server = GraphqlWebserver({"data": {"assetNodeOrError": {"__typename": "AssetNotFoundError"}}})
    try:
        assert first_minute_key(server.url) is None
    finally:
        server.close()


MOVED = "the partition window now starts at 2026-11-26-08:00 (moved from 2026-11-26-07:00)"
STILL = "the partition window still starts at 2026-11-26-07:00"


@pytest.mark.parametrize(("before", "after", "message"), [
    ("2026-11-26-07:00", "2026-11-26-08:00", MOVED),
    ("2026-11-26-07:00", "2026-11-26-07:00", STILL),
    (None, "2026-11-26-08:00", "the partition window now starts at 2026-11-26-08:00"),
    ("2026-11-26-07:00", None,
     "the partition window's start is unknown: the webserver has no asset order_book_snapshot"),
])
def test_the_window_message_says_whether_the_start_moved(before, after, message):
    assert window_start_message(before, after) == message


@pytest.mark.parametrize(("first_keys", "said"), [
    (("2026-11-26-07:00", "2026-11-26-08:00"), MOVED),
    (("2026-11-26-07:00", "2026-11-26-07:00"), STILL),
])
def test_reload_and_warm_reads_the_window_start_before_and_after_the_reload(first_keys, said):
    server = webserver(first_keys)
    try:
        message = reload_and_warm(server.url)
    finally:
        server.close()
    asked = [next(f for f in ("partitionKeysByDimension", "reloadWorkspace", "partitionStats") if f in p["query"])
             for p in server.posted]
    assert asked == ["partitionKeysByDimension", "reloadWorkspace", "partitionKeysByDimension", "partitionStats"]
    assert message.startswith("reloaded code location(s) acts_pipeline.definitions in ")
    assert f"; {said}; partition status of 2 assets rebuilt in " in message
    assert "moved an hour" not in message


def test_a_failed_reload_is_not_followed_by_a_warm_up():
    server = GraphqlWebserver(lambda q: {"errors": [{"message": "boom"}]} if "reloadWorkspace" in q else answer(q))
    try:
        with pytest.raises(ReloadError, match="reloadWorkspace refused: boom"):
            reload_and_warm(server.url)
    finally:
        server.close()
    assert not any("partitionStats" in p["query"] for p in server.posted)


def test_a_warm_up_error_is_named():
    server = GraphqlWebserver(lambda q: {"errors": [{"message": "timeout"}]} if "partitionStats" in q else answer(q))
    try:
        with pytest.raises(ReloadError, match="partitionStats refused: timeout"):
            reload_and_warm(server.url)
    finally:
        server.close()


def first_hourly_log(url: str) -> str:
    """Start an `HourlyReloader` against `url` on a clock that reads 0.3 s before an hour (offset
    0); the first thing it logs (within 10 s). The reloader is stopped after it."""
    logged = []
    done = threading.Event()

    def log(message):
        logged.append(message)
        done.set()

    start = datetime.now(UTC)
    clock = lambda: datetime(2026, 11, 26, 13, 59, 59, 700_000, tzinfo=UTC) + (datetime.now(UTC) - start)  # noqa: E731
    reloader = HourlyReloader(url, log=log, clock=clock, offset=timedelta(0)).start()
    try:
        assert done.wait(10), "nothing logged within 10 s"
        assert reloader._thread.is_alive()  # it carries on to the next hour, failed or not
    finally:
        reloader.stop()
    return logged[0]


def test_the_hourly_reloader_reloads_and_warms_at_the_moment_and_logs_it():
    server = webserver(("2026-11-26-07:00", "2026-11-26-08:00"))
    try:
        message = first_hourly_log(server.url)
    finally:
        server.close()
    assert message.startswith("reloaded code location(s) acts_pipeline.definitions")
    assert MOVED in message
    assert any("reloadWorkspace" in p["query"] for p in server.posted)


def test_the_hourly_reloader_logs_a_failure_and_carries_on():
    with refusing_port() as port:
        message = first_hourly_log(f"http://127.0.0.1:{port}")
    assert message.startswith("warning: hourly reload failed (could not reach the Dagster webserver")
