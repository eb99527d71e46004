"""The command line against the real simulator and embedded database: symbols are checked
against exchangeInfo, and one minute can be collected by hand with `dagster asset materialize`."""

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymongo
import pytest

from acts_devkit.platform import clean_env, project_copy
from acts_pipeline_tests.fakes import GraphqlWebserver
from acts_pipeline_tests.ports import refusing_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
BIN = Path(sys.executable).parent


@pytest.fixture
def env(tmp_path, simulator, mongo_uri, mongo_db_name):
    project_copy(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((tmp_path / "dagster.yaml").read_text())
    return clean_env(DAGSTER_HOME=str(home), ACTS_BINANCE_API_URL=simulator.api_url,
                     ACTS_MONGO_URI=mongo_uri, ACTS_MONGO_DB=mongo_db_name)


def cli(env, cwd, *args, timeout=120):
    return subprocess.run([str(BIN / "acts-pipeline"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_unknown_symbol_is_refused_by_name_and_nothing_is_registered(env, tmp_path):
    result = cli(env, tmp_path, "symbols", "add", "BTCUSDT", "NOPE")
    assert result.returncode == 2
    assert "NOPE is not a Binance Spot symbol" in result.stderr
    assert "nothing registered" in result.stderr
    assert cli(env, tmp_path, "symbols", "list").stdout.split() == []


def test_symbols_add_list_remove(env, tmp_path):
    assert cli(env, tmp_path, "symbols", "add", "ethusdt", "BTCUSDT").returncode == 0
    assert cli(env, tmp_path, "symbols", "add", "ETHUSDT").stdout.strip() == "already tracked"
    assert cli(env, tmp_path, "symbols", "list").stdout.split() == ["ETHUSDT", "BTCUSDT"]
    assert cli(env, tmp_path, "symbols", "remove", "BTCUSDT").returncode == 0
    assert cli(env, tmp_path, "symbols", "list").stdout.split() == ["ETHUSDT"]


ASSET_NODES = {"data": {"assetNodes": [
    {"assetKey": {"path": [name]}, "isPartitioned": True, "partitionStats": {"numMaterialized": 0}}
    for name in ("order_book_snapshot", "order_book_features", "klines_1m")]}}


def test_a_symbol_change_has_the_webserver_rebuild_the_partition_status(env, tmp_path):
    webserver = GraphqlWebserver(ASSET_NODES)
    try:
        env = {**env, "ACTS_DAGSTER_WEBSERVER_URL": webserver.url}
        added = cli(env, tmp_path, "symbols", "add", "BTCUSDT")
        assert added.returncode == 0, added.stderr
        assert added.stdout.splitlines()[0] == "added: BTCUSDT"
        assert added.stdout.splitlines()[1].startswith("partition status of 3 assets rebuilt in ")
        assert cli(env, tmp_path, "symbols", "add", "BTCUSDT").stdout.strip() == "already tracked"  # no change
        removed = cli(env, tmp_path, "symbols", "remove", "BTCUSDT")
        assert "partition status of 3 assets rebuilt" in removed.stdout
        assert len(webserver.posted) == 2 and all("partitionStats" in p["query"] for p in webserver.posted)
    finally:
        webserver.close()


def test_a_symbol_is_registered_even_if_the_webserver_cannot_be_reached(env, tmp_path):
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}"
        result = cli({**env, "ACTS_DAGSTER_WEBSERVER_URL": url}, tmp_path, "symbols", "add", "ETHUSDT")
    assert result.returncode == 0
    assert f"warning: partition status not rebuilt (could not reach the Dagster webserver at {url}" in result.stderr
    assert cli(env, tmp_path, "symbols", "list").stdout.split() == ["ETHUSDT"]


def test_bad_configuration_fails_naming_the_variable(env, tmp_path):
    result = cli({**env, "ACTS_DEPTH_LIMIT": "lots"}, tmp_path, "symbols", "add", "BTCUSDT")
    assert result.returncode == 2 and "ACTS_DEPTH_LIMIT" in result.stderr
    for variable, value in [("ACTS_DEPTH_LIMIT", "0"), ("ACTS_SYMBOLS", " , "),
                            ("ACTS_MONGO_URI", "mongodb://acts:s3cret@127.0.0.1:1/?serverSelectionTimeoutMS=500")]:
        started = time.monotonic()
        result = cli({**env, variable: value}, tmp_path, "dev", "--port", "3999", timeout=60)
        assert result.returncode == 2 and variable in result.stderr, (variable, result.stderr)
        assert "s3cret" not in result.stderr + result.stdout
        assert time.monotonic() - started < 30


def test_one_minute_collected_by_hand_with_dagster_asset_materialize(env, tmp_path, mongo_uri, mongo_db_name):
    assert cli(env, tmp_path, "symbols", "add", "BTCUSDT", "ETHUSDT", "NKNUSDT").returncode == 0
    now = datetime.now(UTC)
    # Leave the command 30 s to start before the minute closes (a loaded machine may need more
    # than 15): its book must be taken within 2 s of the close.
    if now.second > 30:
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    minute = now.replace(second=0, microsecond=0)
    key = f"{minute:%Y-%m-%d-%H:%M}"
    result = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "acts_pipeline.definitions",
         "--select", "order_book_snapshot,order_book_features",
         "--partition-range", f"{key}|BTCUSDT...{key}|NKNUSDT"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    db = pymongo.MongoClient(mongo_uri, tz_aware=True)[mongo_db_name]
    close = minute + timedelta(minutes=1)
    snapshots = list(db.order_book_snapshots.find({"minute": minute}))
    assert sorted(s["symbol"] for s in snapshots) == ["BTCUSDT", "ETHUSDT", "NKNUSDT"]
    assert all(0 <= (s["captured_at"] - close).total_seconds() <= 2 for s in snapshots)
    assert db.order_book_features.count_documents({"minute": minute}) == 3
    assert db.klines_1m.count_documents({}) == 0  # not selected, not fetched

    # the checks ran with the assets, and coverage reads what they recorded
    report = cli(env, tmp_path, "coverage", "--minutes", "3")
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    for symbol in ("BTCUSDT", "ETHUSDT", "NKNUSDT"):
        assert any(line.startswith("order_book_snapshots") and symbol in line for line in lines), report.stdout
        klines_row = next(line for line in lines if line.startswith("klines_1m") and symbol in line)
        assert key in klines_row, "klines were not collected: the minute is listed missing"

