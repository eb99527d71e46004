"""`acts-pipeline dev` keeps its stream recorder running: killed, it is started again on the same
health port, and the terminal says what happened and where its log is."""

import json
import os
import signal
import urllib.request
from pathlib import Path

import pytest

from acts_devkit.platform import clean_env, project_copy, start_dev
from acts_pipeline.platform.processes import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def recorder_pid(dev_pid: int) -> int:
    """The `acts-pipeline record` child of `dev` (its own session: not in dev's process group)."""
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == dev_pid and b"record" in cmdline:
            return int(entry.name)
    raise AssertionError("no recorder child")


def started_at(health_url: str) -> str:
    with urllib.request.urlopen(f"{health_url}?symbols=0", timeout=5) as response:
        return json.loads(response.read())["started_at"]


def test_a_killed_recorder_is_restarted(tmp_path):
    cwd = project_copy(tmp_path)
    platform = start_dev(cwd, clean_env(ACTS_SYMBOLS="BTCUSDT", ACTS_BOOK_SOURCE="stream"), free_port(), "--simulated")
    try:
        health = platform.wait_for_line(r"stream recorder health on (\S+) ", 90).group(1)
        first = started_at(health)
        os.kill(recorder_pid(platform.process.pid), signal.SIGKILL)
        log = cwd / ".acts" / "recorder.log"
        platform.wait_for_line(
            rf"the stream recorder exited unexpectedly \(killed by SIGKILL\); restarting it in 1 s "
            rf"\(its log: {log}\)", 30)
        platform.wait_for_line(r"the stream recorder restarted \(pid \d+, restart 1\)", 90)
        assert started_at(health) != first  # a new recorder, on the same address
    finally:
        platform.interrupt()  # (Dagster may still be starting: its exit code is not this test's)
    assert "the stream recorder" in platform.log().split("ACTS stopped: ")[1].splitlines()[0]
    assert platform.log().count("restarted (pid") == 1  # the stop is not a death to restart from
