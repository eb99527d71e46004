"""DEV and TEST side by side (issue 13, item 3): `acts-pipeline dev --simulated` and
`acts-pipeline dev --env test --simulated`, started at the same time from one project folder (a
fresh clone's, with config/), each collect a minute into their own database, with their own state
folder and their own ports, sharing nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pymongo
import pytest

from acts_devkit.platform import PROJECT, DevPlatform, clean_env, project_copy
from acts_pipeline.platform.processes import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

COLLECTIONS = ("order_book_snapshots", "order_book_features", "klines_1m")
RUNS_QUERY = """{ runsOrError { ... on Runs { results { runId status } } } }"""


def start(cwd: Path, env: dict[str, str], port: int, *args: str, log_name: str) -> DevPlatform:
    """`acts-pipeline dev --port port *args` in `cwd`, in its own session, its output in `log_name`
    (acts_devkit.platform.start_dev, with one log file per platform of the folder)."""
    log_path = cwd / log_name
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "acts-pipeline"), "dev", "--port", str(port), *args],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return DevPlatform(process, log_path, port, cwd)


def collected_minute(db) -> object | None:
    """A minute every collection holds BTCUSDT for, if any."""
    minutes = {d["minute"] for d in db.order_book_snapshots.find({"symbol": "BTCUSDT"}, {"minute": 1})}
    for minute in sorted(minutes):
        if all(db[c].count_documents({"symbol": "BTCUSDT", "minute": minute}) == 1 for c in COLLECTIONS[1:]):
            return minute
    return None


def test_dev_and_test_run_side_by_side_sharing_nothing(tmp_path):
    cwd = project_copy(tmp_path / "project")
    shutil.copytree(PROJECT / "config", cwd / "config")
    env = clean_env(ACTS_SYMBOLS="BTCUSDT")  # one symbol each: set here, it wins over both files
    platforms = {"dev": start(cwd, env, free_port(), "--simulated", log_name="dev.log"),
                 "test": start(cwd, env, free_port(), "--env", "test", "--simulated", log_name="test.log")}
    begun = time.monotonic()
    try:
        seen = {}
        for name, platform in platforms.items():
            said = platform.wait_for_line(r"ACTS (\w+): state in (\S+), MongoDB database (\S+)", 60)
            seen[name] = {
                "said": said.group(1), "state": Path(said.group(2)), "database": said.group(3),
                "mongo": platform.wait_for_line(r"embedded MongoDB on (\S+) \(data: (\S+)\)", 60),
                "simulator": platform.wait_for_line(r"exchange simulator on (\S+)", 60).group(1),
                "recorder": platform.wait_for_line(r"stream recorder health on (\S+) ", 90).group(1),
                "ui": platform.wait_for_line(r"Dagster UI on (\S+) \(instance: (\S+)\)", 90),
            }
        dev, test = seen["dev"], seen["test"]
        assert (dev["said"], dev["state"], dev["database"]) == ("DEV", cwd / ".acts", "acts")
        assert (test["said"], test["state"], test["database"]) == ("TEST", cwd / ".acts-test", "acts_test")
        assert Path(dev["mongo"].group(2)) == cwd / ".acts" / "mongo"
        assert Path(test["mongo"].group(2)) == cwd / ".acts-test" / "mongo"
        assert Path(dev["ui"].group(2)) == cwd / ".acts" / "dagster_home"
        assert Path(test["ui"].group(2)) == cwd / ".acts-test" / "dagster_home"
        for name, platform in platforms.items():
            assert seen[name]["ui"].group(1) == f"http://127.0.0.1:{platform.port}"
        addresses = [a for s in seen.values() for a in (s["mongo"].group(1), s["simulator"], s["recorder"],
                                                        s["ui"].group(1))]
        ports = [int(re.search(r"127\.0\.0\.1:(\d+)", a).group(1)) for a in addresses]
        assert len(set(ports)) == 8, addresses  # database, simulator, recorder and UI: 4 each, none shared

        dbs = {name: pymongo.MongoClient(s["mongo"].group(1), tz_aware=True, serverSelectionTimeoutMS=5000)
               for name, s in seen.items()}
        collected = {}
        deadline = time.monotonic() + 240
        while len(collected) < 2:
            for name, client in dbs.items():
                if name not in collected:
                    minute = collected_minute(client[seen[name]["database"]])
                    if minute is not None:
                        collected[name] = minute
            for platform in platforms.values():
                assert platform.process.poll() is None, platform.log()[-3000:]
            assert time.monotonic() < deadline, {n: p.log()[-2000:] for n, p in platforms.items()}
            time.sleep(1)
        print(f"both collected a minute {time.monotonic() - begun:.0f} s after the start: {collected}")
        # each into its own database, on its own server; the other's name is nowhere
        assert "acts" in dbs["dev"].list_database_names() and "acts_test" not in dbs["dev"].list_database_names()
        assert "acts_test" in dbs["test"].list_database_names() and "acts" not in dbs["test"].list_database_names()
        # each its own Dagster instance: its runs on its own UI
        for platform in platforms.values():
            platform.wait_for_webserver(180)
            assert platform.graphql(RUNS_QUERY)["runsOrError"]["results"]
        for name, folder in (("dev", ".acts"), ("test", ".acts-test")):
            assert (cwd / folder / "dagster_home" / "dagster.yaml").is_file()
            assert (cwd / folder / "recorder.log").is_file() and (cwd / folder / "dagster.log").is_file()
    finally:
        codes = {name: platform.interrupt() for name, platform in platforms.items()}
    assert set(codes.values()) <= {0, 130, -2}, codes  # as acts_pipeline_tests/e2e/test_minute_collection.py
    assert not (cwd / ".acts" / "runtime.json").exists() and not (cwd / ".acts-test" / "runtime.json").exists()
