"""The README's run command, for real: `acts-pipeline dev --simulated` starts the embedded
database, the simulator, the Dagster webserver and daemon; within three minutes every closed
minute holds one document per symbol in each collection, taken within 2 s of the close, and
each minute is one Dagster run. Its terminal shows what matters and none of Dagster's noise.
Ctrl-C stops everything it started."""

import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pymongo
import pytest
from dagster import DagsterInstance

from acts_pipeline.definitions import defs
from acts_pipeline.platform.processes import free_port
from acts_pipeline.storage import MongoStore
from acts_pipeline.settings import DEFAULT_PARTITION_WINDOW_HOURS
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline.storage.handlers import levels_from_binary
from acts_devkit.platform import clean_env, project_copy, start_dev, started_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

SYMBOLS = ["BTCUSDT", "ETHUSDT", "NKNUSDT"]
COLLECTIONS = ("order_book_snapshots", "order_book_features", "klines_1m")
RUNS_QUERY = """{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }"""
FIRST_MINUTE_QUERY = """{ assetNodeOrError(assetKey: {path: ["order_book_snapshot"]}) {
  ... on AssetNode { partitionKeysByDimension(startIdx: 0, endIdx: 1) { name partitionKeys } } } }"""
#: What `dagster dev` and the run processes print that a person would read as a problem.
DAGSTER_NOISE = ("will not be used to configure Dagster", "Use 'dg dev' instead", "BetaWarning", "PreviewWarning",
                 "No cursor for event type", "Traceback")


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("book_source", ["stream", "rest"])
def test_dev_simulated_collects_every_minute_for_every_symbol(tmp_path, book_source):
    cwd = project_copy(tmp_path)
    port = free_port()
    platform = start_dev(cwd, clean_env(ACTS_SYMBOLS=",".join(SYMBOLS), ACTS_BOOK_SOURCE=book_source), port,
                         "--simulated")
    started = datetime.now(UTC)
    try:
        mongo_uri = platform.wait_for_line(r"embedded MongoDB on (\S+)", 60).group(1)
        simulator_url = platform.wait_for_line(r"exchange simulator on (\S+)", 60).group(1)
        recorder_url = (platform.wait_for_line(r"stream recorder health on (\S+) ", 90).group(1)
                        if book_source == "stream" else None)
        platform.wait_for_webserver(120)
        assert (cwd / ".acts" / "dagster_home" / "dagster.yaml").is_file()
        # Dagster (dev, webserver, daemon, code server) runs nicer than the recorder and the
        # database, whose latency at the close is what the close is measured by.
        processes = started_in(cwd)
        dagster = {c: n for c, n in processes.values() if "dagster" in c}
        assert dagster and set(dagster.values()) == {5}, dagster
        others = {c: n for c, n in processes.values() if "secantusd" in c or " record " in c}
        assert len(others) == (2 if book_source == "stream" else 1) and set(others.values()) == {0}, others
        db = pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000).acts

        # The first minute whose run can be requested 30 s ahead is the first after start-up;
        # wait until two such minutes have closed and been collected.
        first_full = (started + timedelta(seconds=40)).replace(second=0, microsecond=0)
        minutes = [first_full, first_full + timedelta(minutes=1)]
        deadline = time.monotonic() + 200
        reloaded = None
        while time.monotonic() < deadline:
            counts = [db[c].count_documents({"minute": {"$in": minutes}}) for c in COLLECTIONS]
            if all(n == len(SYMBOLS) * len(minutes) for n in counts):
                break
            if reloaded is None and db.order_book_snapshots.count_documents({"minute": minutes[0]}) == len(SYMBOLS):
                # Between the two minutes, the hourly reload that moves the partition window, and
                # the warm-up of the three assets' partition status: collection must go on with
                # the reloaded code location.
                # (no --url: run from the project folder, it finds the webserver dev runs)
                reloaded = subprocess.run(
                    [sys.executable, "-m", "acts_pipeline.platform.cli", "reload-code"],
                    cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=120)
                assert reloaded.returncode == 0, reloaded.stderr
                assert reloaded.stdout.startswith("reloaded code location(s) acts_pipeline in "), reloaded.stdout
                # every partitioned asset: the three minute assets and the history assets
                with DagsterInstance.ephemeral():  # see test_partitions: an instance's context, as Dagster loads
                    partitioned = sum(1 for a in defs().resolve_asset_graph().asset_nodes if a.is_partitioned)
                assert f"partition status of {partitioned} assets rebuilt" in reloaded.stdout, reloaded.stdout
                # the default window: the minutes from the whole hour before the current hour
                first_key = platform.graphql(FIRST_MINUTE_QUERY)["assetNodeOrError"]["partitionKeysByDimension"]
                # (the first key: Dagster 1.13.27 returns every key whatever startIdx/endIdx say)
                first_minute = next(d["partitionKeys"] for d in first_key if d["name"] == "minute")[:1]
                hours = {(moment - timedelta(hours=DEFAULT_PARTITION_WINDOW_HOURS)).strftime("%Y-%m-%d-%H:00")
                         for moment in (datetime.now(UTC) - timedelta(seconds=30), datetime.now(UTC))}
                assert first_minute in [[h] for h in hours]
                # and it says so: in the hour the platform started the start stays put
                said = re.search(r"the partition window (?:still|now) starts at (\S+?)[;( ]", reloaded.stdout)
                assert said and [said.group(1)] == first_minute, reloaded.stdout
            time.sleep(2)
        assert reloaded is not None, platform.log()[-3000:]

        for minute in minutes:
            close = minute + timedelta(minutes=1)
            for collection in COLLECTIONS:
                docs = list(db[collection].find({"minute": minute}))
                assert sorted(d["symbol"] for d in docs) == SYMBOLS, (collection, minute, platform.log()[-3000:])
            for snap in db.order_book_snapshots.find({"minute": minute}):
                lateness = (snap["captured_at"] - close).total_seconds()
                assert 0 <= lateness <= 2, f"{snap['symbol']} {minute:%H:%M} captured {lateness:.3f} s after the close"
                assert snap["requested_at"] >= close
                assert len(snap["bids"]) == 100 and snap["bids"][0][0] < snap["asks"][0][0]
            for features in db.order_book_features.find({"minute": minute}):
                assert -1 <= features["bias_5"] <= 1 and features["crossed"] is False
        if book_source == "stream":
            # Once the recorder is in sync (seconds after start-up), books are its books at the close.
            boundary_books = BoundaryBooks(MongoStore(db)).at(minutes[1])
            for snap in db.order_book_snapshots.find({"minute": minutes[1]}):
                assert snap["source"] == "stream", (snap["symbol"], snap["source"])
                assert snap["event_time"] <= minutes[1] + timedelta(minutes=1)
                boundary = boundary_books[snap["symbol"]]
                assert levels_from_binary(boundary["bids"]).tolist() == snap["bids"]
                assert boundary["last_update_id"] == snap["last_update_id"]
        else:
            assert {d.get("source") for d in db.order_book_snapshots.find({"minute": {"$in": minutes}})} == {"rest"}
        # consecutive minutes are different books (the simulator's market moves)
        books = {d["minute"]: d["bids"][0] for d in db.order_book_snapshots.find({"symbol": "BTCUSDT", "minute": {"$in": minutes}})}
        assert books[minutes[0]] != books[minutes[1]]
        # no document for a minute outside the collected ones was invented
        assert db.order_book_snapshots.count_documents({"minute": {"$lt": first_full - timedelta(minutes=1)}}) == 0

        # each minute is exactly one successful Dagster run, seen through the webserver (the
        # last one may still be running its klines and checks when its data has landed)
        keys = [f"{minute:%Y-%m-%d-%H:%M}" for minute in minutes]
        deadline = time.monotonic() + 90
        while True:
            runs_by_minute = {}
            for run in platform.graphql(RUNS_QUERY)["runsOrError"]["results"]:
                tags = {t["key"]: t["value"] for t in run["tags"]}
                runs_by_minute.setdefault(tags.get("acts/minute"), []).append(run["status"])
            statuses = [s for key in keys for s in runs_by_minute.get(key, [])]
            if all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in statuses) or time.monotonic() > deadline:
                break
            time.sleep(2)
        for key in keys:
            assert runs_by_minute[key] == ["SUCCESS"], (key, runs_by_minute)
    finally:
        exit_code = platform.interrupt()
    mongo_port = int(mongo_uri.rsplit(":", 1)[1].split("/")[0])
    simulator_port = int(simulator_url.rsplit(":", 1)[1].split("/")[0])
    assert exit_code in (0, 130, -2), platform.log()[-3000:]
    assert _port_closed(port) and _port_closed(mongo_port) and _port_closed(simulator_port)
    if recorder_url:
        assert _port_closed(int(recorder_url.rsplit(":", 1)[1].split("/")[0]))

    # The terminal: the addresses, where Dagster's full output went, no noise, no traceback from
    # the stop, and a last line that says everything is down.
    terminal = platform.log()
    assert f"Dagster UI on http://127.0.0.1:{port}" in terminal
    assert [noise for noise in DAGSTER_NOISE if noise in terminal] == [], terminal[-3000:]
    assert not re.search(r" - (DEBUG|INFO) - ", terminal), terminal[-3000:]
    recorder = "the stream recorder, " if book_source == "stream" else ""
    assert terminal.splitlines()[-1] == f"ACTS stopped: Dagster, {recorder}the embedded database and the simulator are down"
    full_output = (cwd / ".acts" / "dagster.log").read_text()
    assert f"{cwd / '.acts' / 'dagster.log'}" in terminal
    assert "RUN_SUCCESS" in full_output and "BetaWarning" in full_output
