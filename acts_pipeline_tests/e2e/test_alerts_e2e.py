"""Alerts under the real daemon: `acts-pipeline dev --simulated` posting to a local webhook. The
exchange refuses one symbol's book for two minutes (the simulator's `invalid_symbol` fault on
`depth`), leaving a gap: one PROBLEM arrives within 2 minutes of the first missed minute's close,
nothing more while the gap lasts, and one RESOLVED within 2 minutes of the first complete
minute's close. The webhook's URL, a secret, is nowhere in what the platform wrote (its logs, the
instance's storage, the database's files) and the UI's resource page shows only its variable."""

import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymongo
import pytest

from acts_devkit.platform import clean_env, project_copy, start_dev
from acts_pipeline.platform.processes import free_port
from acts_pipeline_tests.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SYMBOLS = ["BTCUSDT", "ETHUSDT", "NKNUSDT"]


def faults(api_url, method, rules=None):
    body = None if rules is None else json.dumps({"rules": rules}).encode()
    request = urllib.request.Request(api_url.removesuffix("/api") + "/_simulator/faults", data=body, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_until_second(low, high):
    """Until the wall clock is between `low` and `high` s past a minute (the minute's run fetches
    its books right after :00)."""
    while not low <= datetime.now(UTC).second <= high:
        time.sleep(0.5)


def resource_page(platform, name):
    details = platform.graphql(f"""{{ topLevelResourceDetailsOrError(resourceSelector: {{
        repositoryLocationName: "acts_pipeline", repositoryName: "__repository__", resourceName: "{name}" }}) {{
        __typename ... on ResourceDetails {{ configuredValues {{ key value type }} }} }} }}""")
    return {v["key"]: (v["value"], v["type"]) for v in details["topLevelResourceDetailsOrError"]["configuredValues"]}


def files_holding(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_gap_is_alerted_once_within_2_minutes_and_its_end_announced(tmp_path):
    secret = f"T0ACTS/B0ACTS/{uuid.uuid4().hex}"
    with WebhookReceiver(path=f"/services/{secret}") as receiver:
        cwd = project_copy(tmp_path / "acts")
        env = clean_env(ACTS_SYMBOLS=",".join(SYMBOLS), ACTS_BOOK_SOURCE="rest", ACTS_ALERT_WEBHOOK_URL=receiver.url)
        platform = start_dev(cwd, env, free_port(), "--simulated")
        try:
            mongo_uri = platform.wait_for_line(r"embedded MongoDB on (\S+)", 60).group(1)
            api_url = platform.wait_for_line(r"exchange simulator on (\S+)", 60).group(1)
            platform.wait_for_webserver(120)
            platform.wait_for_location(120)
            assert resource_page(platform, "alert_webhook")["url"] == ("ACTS_ALERT_WEBHOOK_URL", "ENV_VAR")
            db = pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000).acts
            deadline = time.monotonic() + 180
            while {d["symbol"] for d in db.order_book_features.find({}, {"symbol": 1})} != set(SYMBOLS):
                assert time.monotonic() < deadline, platform.log()[-3000:]
                time.sleep(1)  # every symbol collected once: tracked from then on

            wait_until_second(10, 25)
            refuse = {"endpoint": "depth", "symbol": "NKNUSDT", "kind": "invalid_symbol", "times": None}
            faults(api_url, "POST", [refuse])
            first_missed = datetime.now(UTC).replace(second=0, microsecond=0)
            missed_close = first_missed + timedelta(minutes=1)
            [problem] = receiver.wait_for(lambda m: len(m) >= 1, 180)
            after_close = problem.at - missed_close.timestamp()
            assert problem.text.startswith("[ACTS DEV] PROBLEM: missing cells in the live minutes"), problem.text
            assert f"NKNUSDT at {first_missed:%Y-%m-%d-%H:%M}" in problem.text
            assert after_close <= 120, after_close

            # the refusal lasts a second minute; then the exchange serves NKNUSDT again
            clear_at = first_missed + timedelta(minutes=2, seconds=12)
            time.sleep(max(0.0, (clear_at - datetime.now(UTC)).total_seconds()))
            faults(api_url, "DELETE")
            cleared = datetime.now(UTC)
            first_complete_close = cleared.replace(second=0, microsecond=0) + timedelta(minutes=1)
            messages = receiver.wait_for(lambda m: len(m) >= 2, 240)
            resolved = messages[1]
            assert resolved.text.startswith("[ACTS DEV] RESOLVED after "), resolved.text
            assert "missing cells in the live minutes" in resolved.text
            assert resolved.at - first_complete_close.timestamp() <= 120, resolved.at - first_complete_close.timestamp()
            stored = {d["minute"] for d in db.order_book_snapshots.find({"symbol": "NKNUSDT"}, {"minute": 1})}
            assert first_missed not in stored and first_missed + timedelta(minutes=1) not in stored  # the gap it said
            time.sleep(60)  # two more ticks: nothing else to say
            assert len(receiver.received) == 2, receiver.texts()
            print(f"alerted {after_close:.0f} s after the first missed close; resolved "
                  f"{resolved.at - first_complete_close.timestamp():.0f} s after the first complete close")
            print("\n---\n".join(receiver.texts()))
        finally:
            platform.interrupt()
        # what the sensor wrote is there, the secret is not
        assert files_holding(cwd, b"alert posted (problem, gap:live)"), "the sensor's tick logs were not found"
        assert files_holding(cwd, secret.encode()) == []
        assert files_holding(cwd, receiver.url.encode()) == []
