"""The production profile (deploy/), for real: a PostgreSQL server of its own (the Debian
package's), the embedded MongoDB-compatible server and the exchange simulator, and the services of
deploy/systemd as separate processes with the environment of deploy/acts.env.example (the code
server, the webserver, the daemon, the stream recorder, the hourly reload), each started as its
unit starts it: `acts-pipeline check-instance`, then its command (acts_devkit/production.py).

It collects every minute for every symbol; a symbol added with `acts-pipeline symbols add` is
collected from the next minute; a klines backfill launched through the webserver's GraphQL
completes with the exchange's candles; `acts-pipeline reload-code` reloads the definitions in the
code server; each service is killed and started again (the code server while a minute run is
in flight), and PostgreSQL is restarted under them all (while a minute run waits for its close),
with nothing lost and nothing duplicated: every minute is one successful run, every
(minute, symbol) cell one document per collection in MongoDB and one materialization per asset
in the Postgres event log."""

import json
import re
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pymongo
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from acts_pipeline.platform.processes import mongo_uri_of, simulator_api_url, simulator_ws_url, start_simulator
from acts_devkit.postgres import start_postgres
from acts_devkit.production import Profile
from acts_devkit.servers import start_test_mongo

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
ADDED = "NKNUSDT"
COLLECTIONS = {"order_book_snapshots": "order_book_snapshot", "order_book_features": "order_book_features",
               "klines_1m": "klines_1m"}
MINUTE = "%Y-%m-%d-%H:%M"
RUNS_QUERY = """{ runsOrError(limit: 500) { ... on Runs { results { runId status tags { key value } } } } }"""
BACKFILL_QUERY = """query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status } ... on PythonError { message } } }"""
CODE_SERVER_LOADED = "Started Dagster code server for module acts_pipeline.definitions"
DIMENSIONS_QUERY = """{ assetNodeOrError(assetKey: {path: ["klines_1m"]}) { ... on AssetNode {
  partitionKeysByDimension { name partitionKeys } } } }"""


def ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def wait_for(condition, timeout: float, what: str, profile: Profile):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    tails = "\n".join(f"--- {s.name}\n{s.log()[-1500:]}" for s in profile.services.values())
    raise AssertionError(f"{what} within {timeout:g} s\n{tails}")


def runs_by_minute(profile: Profile) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for run in profile.graphql(RUNS_QUERY)["runsOrError"]["results"]:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        if "acts/minute" in tags:
            runs.setdefault(tags["acts/minute"], []).append(run)
    return runs


def restart(profile: Profile, name: str) -> None:
    """A crash and the service manager's restart: SIGKILL to the main process, start again."""
    profile.kill(name)
    profile.start(name)


def exchange_klines(api_url: str, symbol: str, start: datetime, minutes: int) -> dict[datetime, list]:
    """The simulator's candles, straight from its REST endpoint: the truth a backfill must store."""
    query = (f"symbol={symbol}&interval=1m&startTime={int(start.timestamp() * 1000)}"
             f"&endTime={int((start + timedelta(minutes=minutes)).timestamp() * 1000) - 1}&limit={minutes}")
    with urllib.request.urlopen(f"{api_url}/v3/klines?{query}", timeout=10) as response:
        return {datetime.fromtimestamp(row[0] / 1000, UTC): row for row in json.loads(response.read())}


def test_the_production_profile_collects_backfills_and_survives_a_restart_of_each_service(tmp_path, monkeypatch):
    started = datetime.now(UTC)
    with ThreadPoolExecutor(3) as pool:  # the three servers start side by side
        servers = [pool.submit(start_postgres),
                   pool.submit(start_test_mongo, tmp_path / "mongo", log_path=tmp_path / "mongo.log"),
                   pool.submit(start_simulator, log_path=tmp_path / "simulator.log")]
    failed = [s.exception() for s in servers if s.exception() is not None]
    if failed:  # stop the ones that did start, and say why the other did not
        for server in servers:
            if server.exception() is None:
                getattr(server.result(), "remove", server.result().stop)()
        raise failed[0]
    postgres, mongo, simulator = (server.result() for server in servers)
    api_url = simulator_api_url(simulator)
    profile = Profile(tmp_path, DAGSTER_PG_URL=postgres.url, ACTS_MONGO_URI=mongo_uri_of(mongo),
                      ACTS_BINANCE_API_URL=api_url, ACTS_BINANCE_WS_URL=simulator_ws_url(simulator),
                      ACTS_SYMBOLS=",".join(SYMBOLS))
    db = pymongo.MongoClient(mongo_uri_of(mongo), tz_aware=True, serverSelectionTimeoutMS=5000).acts
    try:
        profile.start_all()
        profile.wait_for_code_location(180)
        hourly = f"reloading the code location of {profile.webserver_url} 10 s past every hour; Ctrl-C stops"
        wait_for(lambda: hourly in profile.services["reload-code"].log(), 60, "the hourly reload waiting", profile)

        # A symbol added on the command line, as an operator does beside the services.
        add_started = datetime.now(UTC)
        added = profile.acts_pipeline("symbols", "add", ADDED)
        add_done = datetime.now(UTC)
        assert added.returncode == 0 and added.stdout.startswith(f"added: {ADDED}"), added.stdout + added.stderr
        assert re.search(r"^partition status of \d+ assets rebuilt in ", added.stdout, re.M), added.stdout
        # The minutes checked: from the first whose run the daemon requests (30 s before its
        # close) at least 10 s after the symbol was added, so every one of them includes it.
        first = ceil_minute(add_done - timedelta(seconds=20))
        minutes = [first + timedelta(minutes=i) for i in range(4)]

        # The code server, killed while the first minute's run is in flight (its unit's
        # KillMode=process leaves the run to finish), and started again.
        key = minutes[0].strftime(MINUTE)
        wait_for(lambda: any(r["status"] == "STARTED" for r in runs_by_minute(profile).get(key, [])), 150,
                 f"the run of {key} started", profile)
        restart(profile, "code-server")

        # In the next minute, before its run is requested: the daemon; then the recorder, whose
        # books at that close may come over REST; then the webserver, through which a klines
        # backfill of the minutes before the test is launched.
        sleep_until(minutes[1] + timedelta(seconds=5))
        restart(profile, "daemon")
        sleep_until(minutes[1] + timedelta(seconds=30))
        restart(profile, "recorder")
        restart(profile, "webserver")
        profile.wait_for_code_location(120)
        # Its port is a free port of this machine: had another process taken it between the kill and
        # the start (seen with other platforms started beside this test), the GraphQL below would
        # reach that process's webserver.
        def ours():
            info = profile.graphql("{ instance { info } }")["instance"]["info"] or ""
            return profile.services["webserver"].alive() and "postgres" in info.lower()
        wait_for(ours, 60, "the restarted webserver serving this instance (PostgreSQL)", profile)
        backfilled = (started - timedelta(minutes=6)).replace(second=0, microsecond=0)
        keys = [f"{backfilled + timedelta(minutes=i):{MINUTE}}|{s}" for i in range(5) for s in SYMBOLS]
        def launch():
            return profile.graphql("""mutation Backfill($keys: [String!]) { launchPartitionBackfill(backfillParams: {
                assetSelection: [{path: ["klines_1m"]}], partitionNames: $keys }) {
                __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
                ... on PartitionKeysNotFoundError { partitionKeys } } }""", {"keys": keys})["launchPartitionBackfill"]

        # Once in about three CI runs this launch was refused (PartitionKeysNotFoundError): the
        # symbol added above had landed before minute_sensor's first tick, which then found a
        # symbol registered and never registered ACTS_SYMBOLS (the recorder recorded 1 symbol).
        # Fixed in the sensor (symbols_to_collect); what the webserver saw is said if it recurs.
        launched = launch()
        assert launched["__typename"] == "LaunchBackfillSuccess", (
            f"refused: {json.dumps(launched)}\nwhat the webserver saw: {json.dumps(profile.graphql(DIMENSIONS_QUERY))}"
            f"\ncode server:\n{profile.services['code-server'].log()[-3000:]}")

        # The hourly reload, by hand between two minute runs: the code server loads the
        # definitions again (this is what moves the partition window).
        sleep_until(minutes[2] + timedelta(seconds=5))
        loads = profile.services["code-server"].log().count(CODE_SERVER_LOADED)
        reloaded = profile.acts_pipeline("reload-code")
        assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
        assert reloaded.stdout.startswith("reloaded code location(s) acts_pipeline in "), reloaded.stdout
        wait_for(lambda: profile.services["code-server"].log().count(CODE_SERVER_LOADED) > loads, 30,
                 "the code server loaded the definitions again", profile)

        # PostgreSQL restarted under every service while the run of the third minute waits for its
        # close: the services' pooled connections are dead sockets now, replaced at their next use.
        sleep_until(minutes[2] + timedelta(seconds=40))
        postgres.stop()
        postgres.start()

        # Until the last minute's run and the backfill are done.
        def done():
            runs = runs_by_minute(profile).get(minutes[-1].strftime(MINUTE), [])
            backfill = profile.graphql(BACKFILL_QUERY, {"id": launched["backfillId"]})["partitionBackfillOrError"]
            finished = runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
            return finished and backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING") and backfill
        backfill = wait_for(done, 210, "the last minute's run and the backfill finished", profile)
        assert backfill["status"] == "COMPLETED_SUCCESS", backfill

        # Every service is the one started again, and running.
        assert {n: s.starts for n, s in profile.services.items()} == {
            "code-server": 2, "webserver": 2, "daemon": 2, "recorder": 2, "reload-code": 1}
        assert all(s.alive() for s in profile.services.values()), [s.name for s in profile.services.values()
                                                                   if not s.alive()]

        # Every minute is one successful run.
        runs = runs_by_minute(profile)
        for minute in minutes:
            assert [r["status"] for r in runs[minute.strftime(MINUTE)]] == ["SUCCESS"], (minute, runs)

        # Every cell is one document per collection, stored minute by minute (each book taken
        # within the capture tolerance of its close), and nothing was stored twice anywhere.
        symbols = sorted([*SYMBOLS, ADDED])
        for collection in COLLECTIONS:
            for minute in minutes:
                stored = sorted(d["symbol"] for d in db[collection].find({"minute": minute}))
                assert stored == symbols, (collection, minute, stored)
            doubles = list(db[collection].aggregate([
                {"$group": {"_id": {"symbol": "$symbol", "minute": "$minute"}, "n": {"$sum": 1}}},
                {"$match": {"n": {"$gt": 1}}}]))
            assert doubles == [], (collection, doubles)
        for snapshot in db.order_book_snapshots.find({"minute": {"$in": minutes}}):
            late = (snapshot["captured_at"] - snapshot["minute"] - timedelta(minutes=1)).total_seconds()
            assert 0 <= late <= 10, (snapshot["symbol"], snapshot["minute"], late)
        # The added symbol: collected in every minute whose run was requested after it was added
        # (each minute run's tag says how many symbols it was asked for: under load a sensor tick
        # can come later than 30 s before the close).
        asked = {datetime.strptime(k, MINUTE).replace(tzinfo=UTC): {dict((t["key"], t["value"]) for t in r["tags"])
                                                                   .get("acts/symbols") for r in rs}
                 for k, rs in runs.items()}
        requested_after = [m for m, counts in asked.items() if counts == {str(len(SYMBOLS) + 1)}]
        assert set(minutes) <= set(requested_after), asked
        # A run requested just before the add may still take it: its range (first to last symbol,
        # in Dagster's order of the keys) is read when its step runs. Never a book from before it
        # was added, though.
        early = [(d["minute"], d["captured_at"]) for d in db.order_book_snapshots.find({"symbol": ADDED})
                 if d["captured_at"] < add_started]
        assert early == [], early
        # The recorder, started again 90 s before the last minute's close, had its books.
        assert {d["source"] for d in db.order_book_snapshots.find({"minute": minutes[-1]})} == {"stream"}

        # The klines backfill stored the exchange's candles of those minutes.
        for symbol in SYMBOLS:
            truth = exchange_klines(api_url, symbol, backfilled, 5)
            stored = {d["minute"]: d for d in db.klines_1m.find(
                {"symbol": symbol, "minute": {"$gte": backfilled, "$lt": backfilled + timedelta(minutes=5)}})}
            assert sorted(stored) == sorted(truth) and len(truth) == 5, (symbol, sorted(stored), sorted(truth))
            for minute, row in truth.items():
                assert [stored[minute][f] for f in ("open", "high", "low", "close", "volume")] == \
                    [float(v) for v in row[1:6]], (symbol, minute)

        # The event log in PostgreSQL: one materialization per cell of each asset.
        monkeypatch.setenv("DAGSTER_HOME", profile.env["DAGSTER_HOME"])
        monkeypatch.setenv("DAGSTER_PG_URL", postgres.url)
        with DagsterInstance.get() as instance:
            assert type(instance.event_log_storage).__module__.startswith("dagster_postgres")
            for asset in COLLECTIONS.values():
                cells = [f"{m:{MINUTE}}|{s}" for m in minutes for s in symbols]
                records = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=cells), limit=1000).records
                counted = Counter(r.partition_key for r in records)
                assert counted == Counter(cells), (asset, counted)
    finally:
        profile.stop_all(timeout=5)  # the test is over: no need to wait for a run in flight
        simulator.stop()
        mongo.stop()
        postgres.remove()
