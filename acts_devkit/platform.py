"""Running the platform the way a user does, for end-to-end tests and benchmarks: a folder that
looks like a fresh clone, a clean environment, and `acts-pipeline dev` as a real process group
(started, polled through its log and the webserver's GraphQL, and stopped with Ctrl-C)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: The checkout this package sits in (it is installed editable, from the project folder).
PROJECT = Path(__file__).resolve().parents[1]


def project_copy(folder: Path, workspace_yaml: str | None = None,
                 dagster_yaml_overrides: dict[str, str] | None = None) -> Path:
    """A fresh clone's view: workspace.yaml and dagster.yaml (the package is installed)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT / "workspace.yaml", folder / "workspace.yaml")
    shutil.copyfile(PROJECT / "dagster.yaml", folder / "dagster.yaml")
    if workspace_yaml is not None:
        (folder / "workspace.yaml").write_text(workspace_yaml)
    if dagster_yaml_overrides:
        text = (folder / "dagster.yaml").read_text()
        for old, new in dagster_yaml_overrides.items():
            if old not in text:
                raise RuntimeError(f"dagster.yaml has no {old!r} to override")
            text = text.replace(old, new)
        (folder / "dagster.yaml").write_text(text)
    return folder


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACTS_", "DAGSTER_"))}
    env.update(overrides)
    return env


def graphql(webserver_url: str, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
    """The `data` of a GraphQL request to a Dagster webserver; its errors raised."""
    request = urllib.request.Request(
        f"{webserver_url}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


@dataclass
class DevPlatform:
    process: subprocess.Popen
    log_path: Path
    port: int
    cwd: Path
    extra: dict = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log())
            if match:
                return match
            if self.process.poll() is not None:
                raise RuntimeError(f"acts-pipeline dev exited {self.process.returncode}:\n{self.log()[-4000:]}")
            time.sleep(0.25)
        raise RuntimeError(f"no line matching {pattern!r} within {timeout:g} s:\n{self.log()[-4000:]}")

    def graphql(self, query: str, timeout: float = 60) -> dict:
        return graphql(f"http://127.0.0.1:{self.port}", query, timeout=timeout)

    def wait_for_webserver(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/server_info", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"acts-pipeline dev exited:\n{self.log()[-4000:]}")
            time.sleep(0.5)
        raise RuntimeError(f"the Dagster webserver did not answer within {timeout:g} s:\n{self.log()[-4000:]}")

    def wait_for_location(self, timeout: float) -> None:
        """Until every code location of the workspace is loaded (not loading, no error)."""
        query = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                     locationOrLoadError { __typename } } } } }"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = self.graphql(query)["workspaceOrError"].get("locationEntries") or []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [e for e in entries if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"]
                if errors:
                    raise RuntimeError(f"code location failed to load: {errors}\n{self.log()[-4000:]}")
                return
            time.sleep(0.5)
        raise RuntimeError(f"code location not loaded within {timeout:g} s")

    def interrupt(self, timeout: float = 120) -> int:
        """Ctrl-C, as a user would: SIGINT to the whole process group. The platform lets a
        minute run in flight finish (up to 30 s to its close, then its fetch and writes) and
        then stops in order; after `timeout` everything it started is killed, so that a failed
        stop never leaves a platform collecting in the background of later tests."""
        try:
            os.killpg(self.process.pid, signal.SIGINT)
        except ProcessLookupError:
            return self.process.wait()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait(10)
            kill_started_in(self.cwd)
            return code


def started_in(folder: Path) -> dict[int, tuple[str, int]]:
    """Every process (but this one) whose working folder is `folder` or whose command line names
    it (the simulator, the database and dagster dev run in sessions of their own): pid to its
    command line and its niceness."""
    folder = folder.resolve()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            niceness = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[16])
        except (OSError, IndexError, ValueError):
            continue
        if cwd == folder or folder in cwd.parents or str(folder) in cmdline:
            found[int(entry.name)] = (cmdline, niceness)
    return found


def kill_started_in(folder: Path) -> list[int]:
    """SIGKILL every process `started_in(folder)`."""
    killed = []
    for pid in started_in(folder):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed


def start_dev(cwd: Path, env: dict[str, str], port: int, *args: str, cgroup_procs: Path | None = None) -> DevPlatform:
    """`acts-pipeline dev --port port *args` in `cwd`, in its own session. `cgroup_procs`: a
    cgroup's `cgroup.procs` file the process joins before it starts (benchmarks account the whole
    process tree's CPU by it, orphans and exited processes included)."""
    log_path = cwd / "acts-pipeline-dev.log"

    def join_cgroup() -> None:
        if cgroup_procs is not None:
            cgroup_procs.write_text(str(os.getpid()))

    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "acts-pipeline"), "dev", "--port", str(port), *args],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=join_cgroup if cgroup_procs is not None else None)
    return DevPlatform(process, log_path, port, cwd)
