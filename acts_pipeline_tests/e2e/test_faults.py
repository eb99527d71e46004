"""Faults inside one minute, under the real daemon: recoverable exchange faults (two 5xx in a row,
a malformed body, a 429 with Retry-After 2) still give each symbol its book for that minute,
within the tolerance; a symbol refused for good (-1121) is neither stored nor materialized, and
the minute's run still succeeds for the others."""

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pymongo
import pytest
from dagster import AssetKey, DagsterInstance

from acts_pipeline.platform.processes import free_port
from acts_devkit.platform import clean_env, project_copy, start_dev

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "NKNUSDT", "ADAUSDT"]
FAULTS = [
    {"endpoint": "depth", "symbol": "BTCUSDT", "kind": "http_500", "times": 2},
    {"endpoint": "depth", "symbol": "ETHUSDT", "kind": "malformed_json", "times": 1},
    {"endpoint": "depth", "symbol": "BNBUSDT", "kind": "rate_limit_429", "retry_after": 2, "times": 1},
    {"endpoint": "depth", "symbol": "NKNUSDT", "kind": "invalid_symbol", "times": None},
]


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_recoverable_faults_still_give_every_symbol_its_book_and_a_refused_one_is_not_materialized(tmp_path, monkeypatch):
    cwd = project_copy(tmp_path)
    # The REST design: these faults are the exchange's REST faults on the minute's books (the
    # stream design's faults are the recorder's integration tests and benchmarks/soak.py).
    platform = start_dev(cwd, clean_env(ACTS_SYMBOLS=",".join(SYMBOLS), ACTS_BOOK_SOURCE="rest"), free_port(),
                         "--simulated")
    try:
        mongo_uri = platform.wait_for_line(r"embedded MongoDB on (\S+)", 60).group(1)
        api_url = platform.wait_for_line(r"exchange simulator on (\S+)", 60).group(1)
        platform.wait_for_webserver(120)
        # Inject between two minute fetches (they happen right after each :00).
        while not 10 <= datetime.now(UTC).second <= 25:
            time.sleep(0.5)
        post(api_url.removesuffix("/api") + "/_simulator/faults", {"rules": FAULTS})
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        close = minute + timedelta(minutes=1)

        db = pymongo.MongoClient(mongo_uri, tz_aware=True).acts
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and db.order_book_features.count_documents({"minute": minute}) < 4:
            time.sleep(1)
        stored = {d["symbol"]: d for d in db.order_book_snapshots.find({"minute": minute})}
        assert sorted(stored) == sorted(s for s in SYMBOLS if s != "NKNUSDT"), platform.log()[-4000:]
        for symbol, snapshot in stored.items():
            lateness = (snapshot["captured_at"] - close).total_seconds()
            assert 0 <= lateness <= 10, (symbol, lateness)
        # Retry-After honoured: nothing for BNBUSDT was requested within 2 s of the 429
        assert (stored["BNBUSDT"]["requested_at"] - close).total_seconds() >= 2.0
        assert db.order_book_features.count_documents({"minute": minute, "symbol": "NKNUSDT"}) == 0

        stats = json.loads(urllib.request.urlopen(api_url.removesuffix("/api") + "/_simulator/stats").read())
        assert stats["faults_fired"], stats

        monkeypatch.setenv("DAGSTER_HOME", str(cwd / ".acts" / "dagster_home"))  # the event log's folder
        instance = DagsterInstance.from_config(str(cwd / ".acts" / "dagster_home"))
        key = f"{minute:%Y-%m-%d-%H:%M}"
        # The run's events are read once it has finished (its data lands before its last events).
        deadline = time.monotonic() + 60
        while True:
            runs = [r for r in instance.get_runs() if r.tags.get("acts/minute") == key]
            if (runs and all(r.is_finished for r in runs)) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert [r.status.value for r in runs] == ["SUCCESS"]
        for asset in ("order_book_snapshot", "order_book_features"):
            materialized = set(instance.get_materialized_partitions(AssetKey(asset)))
            assert f"{key}|NKNUSDT" not in materialized, asset
            assert {f"{key}|{s}" for s in stored} <= materialized, asset
    finally:
        platform.interrupt()
