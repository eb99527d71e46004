"""Child processes the platform starts on one machine: the embedded MongoDB-compatible server,
the offline exchange simulator and the stream recorder (kept running by a `Supervisor`). Used by
`acts-pipeline dev` and by the tests.

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
import threading
import time
import urllib.request
from collections.abc import Callable
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


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0,
                 kill_wait: float = 5.0) -> None:
    """Send `sig` and wait `timeout` s for the exit, then SIGKILL and wait `kill_wait` s; nothing
    if it has exited already."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(kill_wait)


@dataclass
class ChildProcess:
    """A started server: its process, its port, and where its output goes."""

    name: str
    process: subprocess.Popen
    port: int
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.process, timeout=timeout)

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


def exit_description(code: int) -> str:
    """`code 1`, or `killed by SIGKILL` for a negative Popen return code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"code {code}"


class Supervisor:
    """Keeps one child process running: `start()` starts it (a callable returning a started
    `ChildProcess`), a watcher thread starts it again whenever it exits unexpectedly, after a
    backoff that doubles from `first_backoff` up to `max_backoff` while it keeps dying (reset once
    it has run `stable_after` seconds), saying on `say` what happened and where its log is.
    Nothing is restarted once `stopping` is set (`stop()` sets it; the platform sets it when it
    starts stopping, so a child dying in the shutdown stays down)."""

    def __init__(self, name: str, start: Callable[[], ChildProcess], *, say: Callable[[str], None],
                 stopping: threading.Event | None = None, first_backoff: float = 1.0, max_backoff: float = 60.0,
                 stable_after: float = 60.0, poll: float = 0.5):
        self.name, self._start, self._say = name, start, say
        self.stopping = stopping or threading.Event()
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self.stable_after, self.poll = stable_after, poll
        self.child: ChildProcess | None = None
        self.restarts = 0
        self._lock = threading.Lock()  # held while a child is started, so that stop() never misses one
        self._watcher: threading.Thread | None = None

    def start(self) -> Supervisor:
        """Start the child (errors propagate: a child that cannot start at all stops the caller)
        and watch it."""
        with self._lock:
            self.child = self._start()
        self._watcher = threading.Thread(target=self._watch, daemon=True, name=f"supervisor: {self.name}")
        self._watcher.start()
        return self

    @property
    def port(self) -> int | None:
        return self.child.port if self.child else None

    @property
    def log_path(self) -> Path | None:
        return self.child.log_path if self.child else None

    def _watch(self) -> None:
        backoff = self.first_backoff
        started = time.monotonic()
        while not self.stopping.wait(self.poll):
            child = self.child
            code = child.process.poll() if child is not None else None
            if child is not None and code is None:
                continue
            if child is not None:
                if time.monotonic() - started >= self.stable_after:
                    backoff = self.first_backoff
                where = f" (its log: {child.log_path})" if child.log_path else ""
                self._say(f"{self.name} exited unexpectedly ({exit_description(code)}); "
                          f"restarting it in {backoff:g} s{where}")
                self.child = None
            if self.stopping.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_backoff)
            with self._lock:
                if self.stopping.is_set():
                    return
                try:
                    self.child = self._start()
                except Exception as exc:  # noqa: BLE001 - said, and tried again after the backoff
                    self._say(f"{self.name} did not start again: {str(exc).splitlines()[0]}; "
                              f"next attempt in {backoff:g} s")
                    continue
            if self.stopping.is_set():
                return  # started just as the platform began stopping: stop() stops it, unannounced
            started = time.monotonic()
            self.restarts += 1
            self._say(f"{self.name} restarted (pid {self.child.process.pid}, restart {self.restarts})")

    def stop(self, timeout: float = 10.0) -> None:
        """No more restarts; the child (if running) is stopped as `ChildProcess.stop` does."""
        self.stopping.set()
        with self._lock:  # waits for a start in progress
            child = self.child
        if child is not None:
            child.stop(timeout)
        if self._watcher is not None:
            self._watcher.join(timeout)
