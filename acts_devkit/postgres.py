"""A real PostgreSQL server for the tests and benchmarks of the production profile: the Debian
package's binaries, run as its own process on a free port, its data in a temporary folder.

The server refuses to run as root. As root, its folder is created outside pytest's (root-only)
temporary tree, owned by the `postgres` user the Debian package creates, and `initdb` and
`postgres` run as that user (`subprocess.Popen(user=...)`); as anyone else they run as is.
Password authentication on TCP only (no Unix socket), so the URL is the one a deployment uses:
`postgresql://acts:<password>@127.0.0.1:<port>/dagster`.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from acts_pipeline.platform.processes import free_port, stop_process

#: Where Debian installs each major version's server binaries.
DEBIAN_BIN_DIRS = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server cannot be run here (not installed, or no user to run it as)."""


def bin_dir() -> Path:
    """The folder of the newest installed server's `initdb`, `postgres` and `createdb`."""
    versions = sorted((p for p in DEBIAN_BIN_DIRS.glob("*/bin") if (p / "postgres").is_file()),
                      key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0])
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    if initdb and (Path(initdb).resolve().parent / "postgres").is_file():
        return Path(initdb).resolve().parent
    raise PostgresUnavailable("PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/postgres, no initdb "
                              "on PATH): install the Debian package postgresql (`apt-get install -y postgresql`; "
                              ".ci/run does it when it runs as root)")


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: the `postgres` user when we are root (the server refuses root),
    else nobody in particular (the current user)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root, and there is no {SERVER_USER!r} user to run the PostgreSQL "
                                  "server as (it refuses root; the Debian package postgresql creates the user)") from None


@dataclass
class PostgresServer:
    """A started server: `url` for DAGSTER_PG_URL; `stop()` and `start()` keep its data and port."""

    folder: Path
    port: int
    user: str = "acts"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    database: str = "dagster"
    process: subprocess.Popen | None = None
    _owned_folder: bool = False

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        return self.folder / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _run_as(self) -> dict:
        account = _server_user()
        return {} if account is None else {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def init(self) -> None:
        """initdb with password authentication, then create the database."""
        account = _server_user()
        self.folder.mkdir(parents=True, exist_ok=True)
        password_file = self.folder / "password"
        password_file.write_text(self.password + "\n")
        if account is not None:
            for path in (self.folder, password_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        _run([str(bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", self.user, f"--pwfile={password_file}",
              "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"], **self._run_as())
        password_file.unlink()
        self.start()
        _run([str(bin_dir() / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database],
             env={**os.environ, "PGPASSWORD": self.password})

    def start(self, timeout: float = 30.0) -> None:
        """The server in the foreground of its own session, TCP on 127.0.0.1:`port` only."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the server process
        if (account := _server_user()) is not None:
            os.chown(self.log_path, account.pw_uid, account.pw_gid)
        try:
            self.process = subprocess.Popen(
                [str(bin_dir() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                **self._run_as())
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with code {self.process.returncode}:\n{self.log_tail()}")
            if _accepts(self.port) and "ready to accept connections" in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres did not accept connections within {timeout:g} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: open transactions are rolled back, clients disconnected)."""
        if self.process is not None:
            stop_process(self.process, signal.SIGINT, timeout, kill_wait=10)

    def remove(self) -> None:
        """Stop it, and delete its folder if `start_postgres` created it."""
        self.stop()
        if self._owned_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run(command: list[str], **kwargs) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def start_postgres(folder: Path | None = None, *, port: int | None = None) -> PostgresServer:
    """A new server (initdb, start, database `dagster` owned by `acts`) on `port` (default: a
    free one). `folder` must be readable by the `postgres` user when we run as root; by default
    a new temporary folder that `remove()` deletes."""
    bin_dir()  # not installed: say so before anything else
    owned = folder is None
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="acts-postgres-"))
    server = PostgresServer(folder=folder, port=port or free_port(), _owned_folder=owned)
    try:
        server.init()
    except BaseException:
        server.remove()
        raise
    return server
