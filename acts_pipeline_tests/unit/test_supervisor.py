"""`Supervisor` (acts_pipeline/platform/processes.py), which keeps `acts-pipeline dev`'s stream
recorder running, on real (tiny) child processes: killed, the child comes back and the terminal
says so; one that keeps dying is started again after a growing backoff; once the platform is
stopping nothing is restarted."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from acts_pipeline.platform.processes import ChildProcess, Supervisor

pytestmark = pytest.mark.timeout(60)


def sleeper(log_path, lifetime: float = 60.0):
    """A start function: each call starts a child that lives `lifetime` seconds."""
    def start() -> ChildProcess:
        process = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({lifetime})"])
        return ChildProcess("sleeper", process, 0, log_path)
    return start


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_child_is_restarted_and_the_terminal_says_so(tmp_path):
    said: list[str] = []
    supervisor = Supervisor("the sleeper", sleeper(tmp_path / "sleeper.log"), say=said.append,
                            first_backoff=0.1, poll=0.05).start()
    try:
        first = supervisor.child.process
        first.send_signal(signal.SIGKILL)
        wait_until(lambda: supervisor.child is not None and supervisor.child.process is not first)
        assert supervisor.child.process.poll() is None
        assert said[0] == (f"the sleeper exited unexpectedly (killed by SIGKILL); restarting it in 0.1 s "
                           f"(its log: {tmp_path / 'sleeper.log'})")
        wait_until(lambda: len(said) == 2)
        assert said[1] == f"the sleeper restarted (pid {supervisor.child.process.pid}, restart 1)"
    finally:
        supervisor.stop()
    assert supervisor.child.process.poll() is not None  # stopped with the platform


def test_a_child_that_keeps_dying_is_restarted_after_a_growing_backoff(tmp_path):
    said: list[str] = []
    supervisor = Supervisor("the crasher", sleeper(None, lifetime=0), say=said.append,
                            first_backoff=0.1, max_backoff=0.4, poll=0.01).start()
    try:
        wait_until(lambda: supervisor.restarts >= 4)
    finally:
        supervisor.stop()
    waits = [line.split("restarting it in ")[1] for line in said if "restarting it in" in line]
    assert waits[:4] == ["0.1 s", "0.2 s", "0.4 s", "0.4 s"], said
    assert all("(its log" not in line for line in said)  # no log: none named


def test_nothing_is_restarted_once_the_platform_is_stopping(tmp_path):
    said: list[str] = []
    stopping = threading.Event()
    supervisor = Supervisor("the sleeper", sleeper(None), say=said.append, stopping=stopping,
                            first_backoff=0.05, poll=0.05).start()
    child = supervisor.child.process
    stopping.set()  # what `dev` does first when it starts stopping
    child.send_signal(signal.SIGKILL)
    time.sleep(0.5)
    assert supervisor.child.process is child and supervisor.restarts == 0 and said == []
    supervisor.stop()
