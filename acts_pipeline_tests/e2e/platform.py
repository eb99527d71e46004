"""Helpers for end-to-end tests: the README's run command as a real process, and polling of
what it stores."""

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
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def project_copy(tmp_path: Path) -> Path:
    """A folder that looks like a fresh clone to `acts-pipeline dev`: its workspace.yaml and
    dagster.yaml (the package itself is installed), with no .acts state yet."""
    for name in ("workspace.yaml", "dagster.yaml"):
        shutil.copyfile(PROJECT / name, tmp_path / name)
    return tmp_path


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACTS_", "DAGSTER_"))}
    env.update(overrides)
    return env


@dataclass
class DevPlatform:
    process: subprocess.Popen
    log_path: Path
    port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log())
            if match:
                return match
            if self.process.poll() is not None:
                raise AssertionError(f"acts-pipeline dev exited {self.process.returncode}:\n{self.log()[-4000:]}")
            time.sleep(0.5)
        raise AssertionError(f"no line matching {pattern!r} within {timeout:g} s:\n{self.log()[-4000:]}")

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql", data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read())["data"]

    def wait_for_webserver(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/server_info", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"acts-pipeline dev exited:\n{self.log()[-4000:]}")
            time.sleep(1)
        raise AssertionError(f"the Dagster webserver did not answer within {timeout:g} s:\n{self.log()[-4000:]}")

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C, as a user would: the whole process group gets SIGINT."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise


def start_dev(cwd: Path, env: dict[str, str], port: int, *args: str) -> DevPlatform:
    log_path = cwd / "acts-pipeline-dev.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "acts-pipeline"), "dev", "--port", str(port), *args],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    return DevPlatform(process, log_path, port)
