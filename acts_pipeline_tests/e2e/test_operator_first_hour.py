"""A new operator's first hour, through the same GraphQL requests the Dagster UI sends, against
the real `acts-pipeline dev --simulated`: add a symbol in the UI and see it accepted and its
first minute land; add a bad one and see it refused, removed and named; backfill klines from
before the start; run the retention job; and not one red run (issue 9)."""

import json
import time
from datetime import UTC, datetime, timedelta

import pymongo
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance, EventRecordsFilter

from acts_pipeline.platform.processes import free_port
from acts_devkit.platform import clean_env, project_copy, start_dev
from acts_pipeline_tests.e2e.test_faults import post

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

REPOSITORY = '{repositoryLocationName: "acts_pipeline", repositoryName: "__repository__"}'
RUNS_QUERY = """{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }"""
SENSOR_TICKS_QUERY = f"""{{ repositoryOrError(repositorySelector: {REPOSITORY}) {{ ... on Repository {{
    sensors {{ name sensorState {{ ticks(limit: 200) {{ status error {{ message }} }} }} }} }} }} }}"""


def add_partition(platform, symbol: str) -> None:
    """What the UI's *Add partition* dialog sends."""
    result = platform.graphql(f"""mutation {{ addDynamicPartition(repositorySelector: {REPOSITORY},
        partitionsDefName: "symbols", partitionKey: "{symbol}") {{ __typename ... on PythonError {{ message }} }} }}""")
    assert result["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess", result


def resource_page(platform, name: str) -> dict[str, tuple[str, str]]:
    """What the UI's resource page shows: each configured field, its value and whether it is
    a value or an environment variable, and each field's description."""
    details = platform.graphql(f"""{{ topLevelResourceDetailsOrError(resourceSelector: {{
        repositoryLocationName: "acts_pipeline", repositoryName: "__repository__", resourceName: "{name}" }}) {{
        __typename ... on ResourceDetails {{ configFields {{ name description }} configuredValues {{ key value type }} }}
        ... on PythonError {{ message }} }} }}""")["topLevelResourceDetailsOrError"]
    assert details["__typename"] == "ResourceDetails", details
    assert all(field["description"] for field in details["configFields"]), details["configFields"]
    return {v["key"]: (v["value"], v["type"]) for v in details["configuredValues"]}


def wait_for(condition, timeout: float, what: str, platform):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout:g} s\n{platform.log()[-3000:]}")


def test_the_operators_first_hour_has_no_red_run(tmp_path, monkeypatch):
    cwd = project_copy(tmp_path)
    port = free_port()
    platform = start_dev(cwd, clean_env(ACTS_SYMBOLS="BTCUSDT,ETHUSDT"), port, "--simulated")
    started = datetime.now(UTC)
    try:
        mongo_uri = platform.wait_for_line(r"embedded MongoDB on (\S+)", 60).group(1)
        platform.wait_for_webserver(120)
        platform.wait_for_location(120)
        db = pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000).acts
        # The resource pages name the variables each setting comes from (issue 10, part 3).
        exchange, mongo = resource_page(platform, "exchange"), resource_page(platform, "mongo")
        assert exchange["api_url"] == ("ACTS_BINANCE_API_URL", "ENV_VAR"), exchange
        assert exchange["depth_limit"][1] == "VALUE", exchange  # unset: the default, shown as a value
        assert mongo["uri"] == ("ACTS_MONGO_URI", "ENV_VAR"), mongo
        assert resource_page(platform, "initial_symbols")["symbols"] == ("ACTS_SYMBOLS", "ENV_VAR")
        # The platform's instance, read beside it (its event log storage finds its files by DAGSTER_HOME)
        monkeypatch.setenv("DAGSTER_HOME", str(cwd / ".acts" / "dagster_home"))
        instance = DagsterInstance.get()

        def registered():
            return instance.get_dynamic_partitions("symbols")

        wait_for(lambda: registered() == ["BTCUSDT", "ETHUSDT"], 90, "ACTS_SYMBOLS registered", platform)

        # In the UI: Add partition NOPE (unknown to the exchange), then NKNUSDT.
        add_partition(platform, "NOPE")
        add_partition(platform, "NKNUSDT")
        wait_for(lambda: "NOPE" not in registered(), 90, "NOPE removed by the exchange check", platform)
        assert registered() == ["BTCUSDT", "ETHUSDT", "NKNUSDT"]

        # Named where the operator looks: the failing check on tracked_symbols, and its table.
        evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in instance.get_event_records(
            EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION), limit=50)]
        listed = [e for e in evaluations if e.check_name == "symbols_are_listed"]
        assert any(not e.passed and "NOPE is not a Binance Spot symbol" in e.description for e in listed), listed

        def table_status(symbol):
            records = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey("tracked_symbols")),
                                                      limit=20).records
            for record in records:  # newest first
                table = record.asset_materialization.metadata["symbol_table"].value
                rows = {r.data["symbol"]: r.data["status"] for r in table.records}
                if symbol in rows:
                    return rows[symbol]
            return None

        assert table_status("NOPE").startswith("refused: NOPE is not a Binance Spot symbol")

        # NKNUSDT: accepted, then its first minute lands in MongoDB and the table says so.
        wait_for(lambda: db.order_book_snapshots.find_one({"symbol": "NKNUSDT"}), 150,
                 "NKNUSDT's first snapshot stored", platform)
        wait_for(lambda: table_status("NKNUSDT") == "collecting", 60, "NKNUSDT's first minute confirmed", platform)
        assert db.klines_1m.find_one({"symbol": "NOPE"}) is None

        # A klines backfill from the UI, of the 10 minutes before the platform started.
        first = (started - timedelta(minutes=10)).replace(second=0, microsecond=0)
        keys = [f"{first + timedelta(minutes=i):%Y-%m-%d-%H:%M}|BTCUSDT" for i in range(10)]
        launched = platform.graphql(f"""mutation {{ launchPartitionBackfill(backfillParams: {{
            assetSelection: [{{path: ["klines_1m"]}}], partitionNames: {json.dumps(keys)} }}) {{
            __typename ... on LaunchBackfillSuccess {{ backfillId }} ... on PythonError {{ message }} }} }}""")
        assert launched["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", launched
        window = {"symbol": "BTCUSDT", "minute": {"$gte": first, "$lt": first + timedelta(minutes=10)}}
        wait_for(lambda: db.klines_1m.count_documents(window) == 10, 120, "the backfilled klines", platform)

        # The hourly retention job, launched now: it succeeds.
        launched = platform.graphql("""mutation { launchRun(executionParams: { selector: {
            repositoryLocationName: "acts_pipeline", repositoryName: "__repository__", jobName: "prune_run_history"},
            runConfigData: "{}" }) { __typename ... on PythonError { message } } }""")
        assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched

        def runs_done():
            runs = platform.graphql(RUNS_QUERY)["runsOrError"]["results"]
            finished = all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
            return runs if finished and any(r["jobName"] == "prune_run_history" for r in runs) else None

        runs = wait_for(runs_done, 150, "every run finished", platform)
        assert [r for r in runs if r["status"] != "SUCCESS"] == [], runs
        assert {r["jobName"] for r in runs} >= {"prune_run_history", "__ASSET_JOB"}

        # Every sensor ticked, and no tick failed (a sensor that raises shows red in the UI's
        # Automation page, and does nothing).
        sensors = platform.graphql(SENSOR_TICKS_QUERY)["repositoryOrError"]["sensors"]
        ticks = {s["name"]: s["sensorState"]["ticks"] for s in sensors}
        assert set(ticks) >= {"minute_sensor", "klines_catch_up_sensor", "klines_history_catch_up_sensor",
                              "snapshot_catch_up_sensor", "alert_sensor"}, sorted(ticks)
        assert all(ticks.values()), {name: len(t) for name, t in ticks.items()}
        failed = {name: [t["error"] for t in found if t["status"] == "FAILURE"] for name, found in ticks.items()}
        assert {name: errors for name, errors in failed.items() if errors} == {}
    finally:
        exit_code = platform.interrupt()
    assert exit_code in (0, 130, -2), platform.log()[-3000:]


def test_runs_launched_from_the_ui_mark_materialized_exactly_the_cells_they_stored(tmp_path, monkeypatch):
    """Issue 12, item 3: the UI's two ways of launching, through the GraphQL requests it sends (a
    range in the launch dialog is a backfill; one partition is a run), over cells one of which the
    exchange refuses: the stored cells are materialized, the refused ones are not, and the run
    says which. Klines of minutes before the start (their cells are nobody else's)."""
    cwd = project_copy(tmp_path)
    port = free_port()
    platform = start_dev(cwd, clean_env(ACTS_SYMBOLS="BTCUSDT,ETHUSDT"), port, "--simulated")
    started = datetime.now(UTC)
    try:
        mongo_uri = platform.wait_for_line(r"embedded MongoDB on (\S+)", 60).group(1)
        api_url = platform.wait_for_line(r"exchange simulator on (\S+)", 60).group(1)
        platform.wait_for_webserver(120)
        platform.wait_for_location(120)
        db = pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000).acts
        monkeypatch.setenv("DAGSTER_HOME", str(cwd / ".acts" / "dagster_home"))
        instance = DagsterInstance.get()
        wait_for(lambda: instance.get_dynamic_partitions("symbols") == ["BTCUSDT", "ETHUSDT"], 90,
                 "ACTS_SYMBOLS registered", platform)
        # From now on the exchange refuses ETHUSDT's klines (-1121), as for a symbol delisted since.
        post(api_url.removesuffix("/api") + "/_simulator/faults",
             {"rules": [{"endpoint": "klines", "symbol": "ETHUSDT", "kind": "invalid_symbol"}]})

        first = (started - timedelta(minutes=20)).replace(second=0, microsecond=0)
        minutes = [first + timedelta(minutes=i) for i in range(5)]
        keys = [f"{m:%Y-%m-%d-%H:%M}|{s}" for m in minutes for s in ("BTCUSDT", "ETHUSDT")]
        # 1. A range in the launch dialog: a backfill.
        launched = platform.graphql(f"""mutation {{ launchPartitionBackfill(backfillParams: {{
            assetSelection: [{{path: ["klines_1m"]}}], partitionNames: {json.dumps(keys)} }}) {{
            __typename ... on LaunchBackfillSuccess {{ backfillId }} ... on PythonError {{ message }} }} }}""")
        assert launched["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", launched
        # 2. One partition, Materialize: a run of the asset job with its partition tag.
        single = f"{first - timedelta(minutes=5):%Y-%m-%d-%H:%M}|ETHUSDT"
        launched = platform.graphql(f"""mutation {{ launchRun(executionParams: {{
            selector: {{repositoryLocationName: "acts_pipeline", repositoryName: "__repository__",
                        jobName: "__ASSET_JOB", assetSelection: [{{path: ["klines_1m"]}}]}},
            executionMetadata: {{tags: [{{key: "dagster/partition", value: "{single}"}},
                                       {{key: "dagster/partition/minute", value: "{single.split('|')[0]}"}},
                                       {{key: "dagster/partition/symbol", value: "ETHUSDT"}}]}},
            runConfigData: "{{}}" }}) {{ __typename ... on LaunchRunSuccess {{ run {{ runId }} }}
            ... on PythonError {{ message }} ... on RunConfigValidationInvalid {{ errors {{ message }} }} }} }}""")
        assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
        single_run = launched["launchRun"]["run"]["runId"]

        def finished(run_id):
            run = instance.get_run_by_id(run_id)
            return run if run and run.is_finished else None

        def backfill_runs():
            runs = [r for r in instance.get_runs() if r.tags.get("dagster/backfill")]
            return runs if runs and all(r.is_finished for r in runs) else None

        runs = wait_for(backfill_runs, 180, "the backfill's runs finished", platform)
        single_done = wait_for(lambda: finished(single_run), 120, "the one-partition run finished", platform)

        stored = sorted(f"{d['minute']:%Y-%m-%d-%H:%M}|{d['symbol']}"
                        for d in db.klines_1m.find({"minute": {"$gte": first - timedelta(minutes=5), "$lt": minutes[-1] + timedelta(minutes=1)}}))
        assert stored == sorted(k for k in keys if k.endswith("BTCUSDT")), stored
        materialized = set(instance.get_materialized_partitions(AssetKey("klines_1m")))
        assert materialized & {*keys, single} == {k for k in keys if k.endswith("BTCUSDT")}
        # Each run that met ETHUSDT failed, naming its cells (the backfill plans one run per range of
        # cells it can express: it may split BTCUSDT's from ETHUSDT's), and the others succeeded.
        def met_ethusdt(run):
            return any("ETHUSDT" in v for k, v in run.tags.items() if k.startswith("dagster/asset_partition_range")
                       or k == "dagster/partition")

        outcome = {r.run_id: (met_ethusdt(r), r.status.value) for r in [*runs, single_done]}
        assert all(status == ("FAILURE" if met else "SUCCESS") for met, status in outcome.values()), outcome
        failures = [r.event_log_entry for r in instance.get_event_records(
            EventRecordsFilter(event_type=DagsterEventType.STEP_FAILURE), limit=20)]
        messages = " ".join(e.dagster_event.event_specific_data.error.message for e in failures)
        # a run with stored cells names those without data; one with none says no kline was fetched
        assert "Binance does not know symbol 'ETHUSDT'" in messages, messages
        assert "not marked materialized" in messages or "no kline could be fetched" in messages, messages
    finally:
        exit_code = platform.interrupt()
    assert exit_code in (0, 130, -2), platform.log()[-3000:]
