"""Child processes the platform starts on one machine: the embedded MongoDB-compatible server
and the offline exchange simulator. Used by `acts-pipeline dev` and by the tests.

SecantusDB is GPL-2.0-only, so it is only ever run as its own process (`secantusd-py`) and
spoken to over the MongoDB wire protocol, never imported.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ChildProcess:
    """A started server: its process, its port, and where its output goes."""

    name: str
    process: subprocess.Popen
    port: int
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _wait_for(check, child: ChildProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with code {child.process.returncode}:\n{child.log_tail()}")
        if check():
            return
        time.sleep(0.1)
    child.stop()
    raise RuntimeError(f"{child.name} did not come up within {timeout:g} s:\n{child.log_tail()}")


def secantusd_command() -> list[str]:
    executable = shutil.which("secantusd-py", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if executable is None:
        raise RuntimeError("secantusd-py is not installed: `pip install 'SecantusDB>=0.7.0b3'`")
    return [executable]


def start_embedded_mongo(storage_path: Path, *, port: int | None = None, log_path: Path | None = None,
                         server_args: list[str] | None = None, timeout: float = 30.0) -> ChildProcess:
    """Start SecantusDB on 127.0.0.1 with its data under `storage_path` (kept across restarts);
    `server_args` are added to its command line (`secantusd-py --help`)."""
    storage_path.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = [*secantusd_command(), "--host", "127.0.0.1", "--port", str(port),
               "--storage-path", str(storage_path), "--log-level", "WARNING", *(server_args or [])]
    log_path = log_path or storage_path.parent / f"{storage_path.name}.log"
    with open(log_path, "ab") as log:
        # Its own session: a Ctrl-C in the terminal goes to `acts-pipeline dev`, which stops the
        # database last, after the runs that write to it.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    child = ChildProcess("embedded MongoDB (secantusd-py)", process, port, log_path)
    _wait_for(lambda: _port_open(port), child, timeout)
    return child


def mongo_uri_of(child: ChildProcess) -> str:
    return f"mongodb://127.0.0.1:{child.port}/?directConnection=true"


def start_simulator(*, port: int | None = None, log_path: Path | None = None, extra_args: list[str] | None = None,
                    timeout: float = 30.0) -> ChildProcess:
    """Start the offline Binance simulator (`python -m acts_simulator`) on 127.0.0.1."""
    port = port or free_port()
    command = [sys.executable, "-m", "acts_simulator", "--host", "127.0.0.1", "--port", str(port),
               *(extra_args or [])]
    if log_path is None:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    else:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
    child = ChildProcess("exchange simulator", process, port, log_path)

    _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/api/v3/ping"), child, timeout)
    return child


def _answers(url: str) -> bool:
    """Whether `url` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def simulator_api_url(child: ChildProcess) -> str:
    return f"http://127.0.0.1:{child.port}/api"


def simulator_ws_url(child: ChildProcess) -> str:
    """The simulator's websocket base: its streams are served on the REST port."""
    return f"ws://127.0.0.1:{child.port}"


def start_recorder(env: dict[str, str], *, port: int | None = None, log_path: Path | None = None,
                   timeout: float = 60.0) -> ChildProcess:
    """Start the stream recorder (`acts-pipeline record`) with `env`; up once its health endpoint
    answers on 127.0.0.1:`port`."""
    port = port or free_port()
    command = [sys.executable, "-m", "acts_pipeline.platform.cli", "record", "--health-port", str(port)]
    with open(log_path or os.devnull, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True)
    child = ChildProcess("stream recorder", process, port, log_path)

    _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health?symbols=0"), child, timeout)
    return child
