"""Pytest plugin: the offline Binance simulator as a real subprocess.

Fixtures:
    simulator_process  (session) one `python -m acts_simulator --port 0` for the run
    simulator          (function) the same process, with fault rules cleared before and after

Both yield a `SimulatorProcess`: `.url` ("http://127.0.0.1:PORT"), `.api_url` (url + "/api", for
python-binance's `Client.API_URL`), `.ws_url` ("ws://127.0.0.1:PORT", the websocket streams'
base, `ACTS_BINANCE_WS_URL`), `.set_faults(rules)`, `.clear_faults()`, `.faults()`, `.stats()`,
`.true_book(symbol, at_ms)` and `.events(symbol, from_ms, to_ms)` (the truth the streams must match). `running_simulator(*cli_args)` starts a private one (e.g. with `--weight-limit 30`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

LISTENING_PREFIX = "simulator listening on "
START_TIMEOUT_SECONDS = 20.0


@dataclass
class SimulatorProcess:
    """A running simulator subprocess and its control endpoints."""

    url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def ws_url(self) -> str:
        return "ws://" + self.url.removeprefix("http://")

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_simulator/{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def set_faults(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add fault rules (see `acts_simulator.faults`); returns all active rules."""
        return self._control("POST", "faults", {"rules": rules})["rules"]

    def clear_faults(self) -> None:
        """Remove every rule and lift any ban."""
        self._control("DELETE", "faults")

    def faults(self) -> list[dict[str, Any]]:
        return self._control("GET", "faults")["rules"]

    def stats(self) -> dict[str, Any]:
        return self._control("GET", "stats")

    def true_book(self, symbol: str, at_ms: int | None = None, limit: int = 1000) -> dict[str, Any]:
        """The book after every diff event with E <= at_ms (default now) and none after."""
        at = "" if at_ms is None else f"&at_ms={at_ms}"
        return self._control("GET", f"true_book?symbol={symbol}&limit={limit}{at}")

    def events(self, symbol: str, from_ms: int, to_ms: int | None = None) -> list[dict[str, Any]]:
        """The diff events of `symbol` with from_ms < E <= to_ms, as the stream's `data`."""
        to = "" if to_ms is None else f"&to_ms={to_ms}"
        return self._control("GET", f"events?symbol={symbol}&from_ms={from_ms}{to}")["events"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _read_listening_line(process: subprocess.Popen, timeout: float) -> str | None:
    """The URL from the process's first stdout line, or None if it does not come in time."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0].startswith(LISTENING_PREFIX):
        return None
    return lines[0][len(LISTENING_PREFIX):].strip()


def start_simulator_process(*cli_args: str) -> SimulatorProcess:
    """Start `python -m acts_simulator --port 0 ...` and wait until it listens."""
    log = tempfile.NamedTemporaryFile(prefix="simulator-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "acts_simulator", "--host", "127.0.0.1", "--port", "0", *cli_args],
        stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    url = _read_listening_line(process, START_TIMEOUT_SECONDS)
    if url is None:
        process.kill()
        process.wait()
        raise RuntimeError(f"the simulator did not start; its log:\n{Path(log.name).read_text()}")
    return SimulatorProcess(url=url, process=process, log_path=Path(log.name))


def stop_simulator_process(simulator: SimulatorProcess, timeout: float = 10.0) -> int:
    """SIGTERM, then wait; returns the exit code (kills it if it does not stop)."""
    simulator.process.terminate()
    try:
        return simulator.process.wait(timeout)
    except subprocess.TimeoutExpired:
        simulator.process.kill()
        return simulator.process.wait()
    finally:
        if simulator.process.stdout:
            simulator.process.stdout.close()


@contextmanager
def running_simulator(*cli_args: str) -> Iterator[SimulatorProcess]:
    """A private simulator process for the duration of a `with` block."""
    simulator = start_simulator_process(*cli_args)
    try:
        yield simulator
    finally:
        stop_simulator_process(simulator)
        simulator.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def simulator_process() -> Iterator[SimulatorProcess]:
    with running_simulator() as simulator:
        yield simulator


@pytest.fixture
def simulator(simulator_process: SimulatorProcess) -> Iterator[SimulatorProcess]:
    simulator_process.clear_faults()
    yield simulator_process
    simulator_process.clear_faults()


def wait_for_minute_headroom(seconds: float = 3.0) -> None:
    """Sleep past the next minute boundary if it is less than `seconds` away.

    Request weight resets each wall-clock minute; a test that counts weight must not straddle one.
    """
    left = 60.0 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.05)
