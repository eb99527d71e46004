"""The production profile (`deploy/`) run on this machine as a plain VM runs it, for the
end-to-end test and the soak: every service of `deploy/systemd` as its own process, its command
read from its unit (`ExecStartPre`, then `ExecStart`), with the environment of
`deploy/acts.env.example`.

What differs from the VM, and only this (`Profile.localize`): the install folders (`/opt/acts`
is this checkout, its `.venv/bin` this interpreter's folder, `/var/lib/acts` a temporary folder),
the fixed ports (3000, 4000, 8790: free ones, since tests run side by side), and what each test
sets on top (the database URLs, the simulator, the symbols). PATH is systemd's default, without
the virtual environment, as under systemd.

A service is stopped the way systemd stops its unit: SIGTERM to the main process, then SIGKILL.
`kill` sends a signal to the main process alone (a crash; or, for the code server, a restart:
its unit has KillMode=process, so its runs are left to finish).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from acts_pipeline.platform.processes import free_port, stop_process
from acts_devkit.platform import PROJECT, clean_env, graphql

DEPLOY = PROJECT / "deploy"
UNITS = DEPLOY / "systemd"
ENV_TEMPLATE = DEPLOY / "acts.env.example"
#: The services, in the order they are started, and their units.
SERVICES = {
    "code-server": "acts-code-server.service",
    "webserver": "acts-webserver.service",
    "daemon": "acts-daemon.service",
    "recorder": "acts-recorder.service",
    "reload-code": "acts-reload-code.service",
}
#: Where the VM has things (deploy/systemd/acts.target says how it is installed).
INSTALL_DIR = "/opt/acts"
VENV_BIN = f"{INSTALL_DIR}/.venv/bin"
STATE_DIR = "/var/lib/acts"
ENV_FILE = "/etc/acts/acts.env"
#: The profile's fixed ports: the webserver, the code server, the recorder's /health.
PROFILE_PORTS = {"webserver": 3000, "code-server": 4000, "recorder": 8790}
#: systemd's default PATH for services.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: section -> key -> values (a key may repeat, as ExecStartPre does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        if current is None or "=" not in line:
            raise ValueError(f"{path}: not a unit file line: {raw!r}")
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as systemd's EnvironmentFile= and docker's env files read them."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValueError(f"{path}: not a KEY=VALUE line: {raw!r}")
        key, value = line.split("=", 1)
        env[key.strip()] = value.strip()
    return env


def unit_commands(unit: dict[str, dict[str, list[str]]]) -> tuple[list[list[str]], list[str]]:
    """The unit's ExecStartPre commands and its ExecStart command, each as argv."""
    service = unit["Service"]
    pre = [shlex.split(command) for command in service.get("ExecStartPre", [])]
    (start,) = service["ExecStart"]
    return pre, shlex.split(start)


@dataclass
class Service:
    """One service's process (the current one) and every process group it ever had."""

    name: str
    argv: list[str]
    pre: list[list[str]]
    log_path: Path
    process: subprocess.Popen | None = None
    groups: list[int] = field(default_factory=list)
    starts: int = 0
    #: The unit's `Nice=`, applied as systemd does (the process and what it starts).
    niceness: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Profile:
    """deploy/ on this machine: `start()` each service (its ExecStartPre first), `kill`, `stop`."""

    def __init__(self, folder: Path, **overrides: str):
        self.folder = folder
        self.state = folder / "var-lib-acts"
        self.ports = {name: free_port() for name in PROFILE_PORTS}
        self.env = {**clean_env(), **{k: self.localize(v) for k, v in read_env_file(ENV_TEMPLATE).items()},
                    **overrides, "PATH": SYSTEMD_PATH}
        home = Path(self.env["DAGSTER_HOME"])
        # The install step: the instance folder with deploy/dagster.yaml as its dagster.yaml.
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEPLOY / "dagster.yaml", home / "dagster.yaml")
        self.services: dict[str, Service] = {}
        for name, unit_name in SERVICES.items():
            unit = read_unit(UNITS / unit_name)
            pre, argv = unit_commands(unit)
            assert unit["Service"]["EnvironmentFile"] == [ENV_FILE], unit_name
            self.services[name] = Service(name, [self.localize(a) for a in argv],
                                          [[self.localize(a) for a in command] for command in pre],
                                          folder / f"{name}.log",
                                          niceness=int(unit["Service"].get("Nice", ["0"])[0]))
        self.cwd = Path(self.localize(STATE_DIR))
        self.cwd.mkdir(parents=True, exist_ok=True)

    def localize(self, text: str) -> str:
        """A path or value of the profile as it is on this machine: the fixed ports first (before
        any temporary path could hold such digits), then the folders."""
        for name, port in PROFILE_PORTS.items():
            text = re.sub(rf"(?<![0-9]){port}(?![0-9])", str(self.ports[name]), text)
        text = text.replace(VENV_BIN, str(Path(sys.executable).parent))
        text = text.replace(INSTALL_DIR, str(PROJECT))
        return text.replace(STATE_DIR, str(self.state))

    @property
    def webserver_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['webserver']}"

    def run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        """A command run by hand beside the services, with their environment (as an operator
        does after `set -a; . /etc/acts/acts.env`)."""
        return subprocess.run(argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def acts_pipeline(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`acts-pipeline ARGS` run by hand beside the services."""
        return self.run([self.localize(f"{VENV_BIN}/acts-pipeline"), *args], timeout=timeout)

    def start_all(self) -> None:
        """Every service, as `systemctl start acts.target` does: the ExecStartPre checks side by
        side, then the services (the code server first)."""
        with ThreadPoolExecutor(len(self.services)) as pool:
            list(pool.map(self._pre_start, self.services))
        for name in self.services:
            self.start(name, checked=True)

    def _pre_start(self, name: str) -> None:
        for command in self.services[name].pre:
            done = self.run(command)
            if done.returncode != 0:
                raise RuntimeError(f"{name}: ExecStartPre {shlex.join(command)} failed ({done.returncode}):\n"
                                   f"{done.stdout}{done.stderr}")

    def start(self, name: str, *, checked: bool = False) -> Service:
        """The service's ExecStartPre commands (unless `checked`), then the service itself."""
        service = self.services[name]
        assert not service.alive(), f"{name} is already running"
        if not checked:
            self._pre_start(name)
        with open(service.log_path, "ab") as log:
            log.write(f"--- start {service.starts + 1}: {shlex.join(service.argv)}\n".encode())
            log.flush()
            argv = ["nice", "-n", str(service.niceness), *service.argv] if service.niceness else service.argv
            service.process = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=log,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               start_new_session=True)
        service.groups.append(service.process.pid)
        service.starts += 1
        return service

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """`sig` to the service's main process alone; its children (the code server's runs) live on."""
        service = self.services[name]
        assert service.alive(), f"{name} is not running:\n{service.log()[-3000:]}"
        service.process.send_signal(sig)
        service.process.wait(60)

    def stop(self, name: str, timeout: float = 30) -> None:
        """As systemd stops the unit: SIGTERM, then SIGKILL after `timeout`; then whatever is left
        of any of its process groups."""
        service = self.services[name]
        if service.process is not None:
            stop_process(service.process, timeout=timeout, kill_wait=10)
        for group in service.groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop_all(self, timeout: float = 30) -> None:
        """Every service, the last started first; `timeout` is each one's grace before SIGKILL (a
        code server waits for its runs in flight)."""
        for name in reversed(list(self.services)):
            self.stop(name, timeout)

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        return graphql(self.webserver_url, query, variables, timeout)

    def wait_for_code_location(self, timeout: float = 120) -> None:
        """Until the webserver answers and has loaded the code location from the code server."""
        query = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                     locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for name in ("webserver", "code-server"):
                if not self.services[name].alive():
                    raise RuntimeError(f"{name} exited:\n{self.services[name].log()[-4000:]}")
            try:
                entries = self.graphql(query, timeout=10)["workspaceOrError"]["locationEntries"]
                last = entries
                if entries and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"]
                                   and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                                   for e in entries):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the code location did not load within {timeout:g} s: {last}\n"
                           f"{self.services['code-server'].log()[-3000:]}")
