"""What `acts-pipeline dev` shows of Dagster's output, and where the rest goes.

`dagster dev`, its daemon, webserver and code servers, and every run process (they inherit its
stdout) write a few lines a second: each sensor tick, each run event at DEBUG level, and warnings
that are not problems of this platform. A person at the terminal reads every WARNING as one, so
all of it goes to a log file (`.acts/dagster.log`) and the terminal gets only what needs a look:
Dagster's WARNING, ERROR and CRITICAL records, tracebacks, and any line it does not recognise,
less the known noise below. Nothing that could be an error is held back: a line is hidden only
if it is a Dagster record below WARNING, a known noise line, or the continuation of one.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO

#: Dagster's colored console format colors the time and the level even into a pipe.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: `2026-11-30 23:57:45 +0000 - dagster.daemon.SensorDaemon - INFO - Checking for new runs ...`
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} - \S+ - (?P<level>[A-Z]+) - (?P<message>.*)$")
_SHOWN_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})
_TRACEBACK = "Traceback (most recent call last):"

#: Lines that read as problems and are not (each seen in `acts-pipeline dev`'s output):
KNOWN_NOISE = (
    # dagster dev sees ./dagster.yaml while DAGSTER_HOME is .acts/dagster_home: acts-pipeline dev
    # copies that very file there at every start, so it is the configuration in use.
    re.compile(r"Found a dagster instance configuration value \(dagster\.ya?ml\) in the current folder"),
    # `dagster dev` is superseded by `dg dev`, which needs a dg project layout; `dagster dev` works.
    re.compile(r"SupersessionWarning: .*'dg dev'"),
    # Beta and preview APIs the definitions use on purpose (an asset's `backfill_policy`, asset
    # checks with a `partitions_def`), warned by every process that loads them: the code server
    # at each (re)load and every run process, so once a minute. Dagster attributes the warning to
    # its own module, or to ours where our module builds the spec itself (`daily_coverage`'s check).
    re.compile(r"[/\\](?:dagster|acts_pipeline)[/\\]\S+\.py:\d+: (?:Beta|Preview)Warning: "),
    # The daemon's event log consumer on an instance that has no cursor yet (a fresh instance).
    re.compile(r"No cursor for event type \S+, ignoring older events"),
)

#: The full output is kept in at most this many bytes: the log and its rotated copies (every run
#: writes a DEBUG line per stored cell, about 0.3 MB a minute at 500 symbols).
LOG_MAX_BYTES = 20_000_000
LOG_BACKUPS = 4


def plain(line: str) -> str:
    """`line` without color codes and line end."""
    return _ANSI.sub("", line).rstrip("\r\n")


def is_noise(text: str) -> bool:
    return any(pattern.search(text) for pattern in KNOWN_NOISE)


class DagsterOutputFilter:
    """Decides, line by line, whether a line of Dagster's output is shown on the terminal.

    Records and warnings span several lines (a warning's source line, a traceback under an error,
    a blank line after it): an indented or blank line gets the decision of the line it continues.
    A traceback is shown to its exception line even when other processes' records are written in
    between (they share the stream).
    """

    def __init__(self) -> None:
        self._showing = False
        self._in_traceback = False

    def shows(self, line: str) -> bool:
        text = plain(line)
        if text.startswith(_TRACEBACK):
            self._in_traceback = self._showing = True
        elif not text.strip() or text[0].isspace():
            return self._in_traceback or self._showing
        elif record := _RECORD.match(text):
            self._showing = record["level"] in _SHOWN_LEVELS and not is_noise(record["message"])
        elif self._in_traceback:  # its exception line, e.g. `ValueError: ...`
            self._in_traceback = False
            self._showing = True
        else:
            self._showing = not is_noise(text)
        return self._showing


def shown_lines(lines: Iterable[str]) -> Iterator[str]:
    """The lines of Dagster's output (in order) that the terminal shows."""
    decide = DagsterOutputFilter()
    return (line for line in lines if decide.shows(line))


class _LogFile(RotatingFileHandler):
    """Dagster's full output, plain text, rotated (`dagster.log.1` ..) past `LOG_MAX_BYTES`. A
    failed write raises, where logging's own handlers print a traceback per line."""

    def __init__(self, path: Path):
        super().__init__(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
        self.setFormatter(logging.Formatter("%(message)s"))

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        raise  # noqa: PLE0704 - called inside emit's except block: the write's own error

    def write(self, text: str) -> None:
        self.handle(logging.makeLogRecord({"msg": text, "levelno": logging.INFO}))


class DagsterOutput:
    """A thread that reads `dagster dev`'s combined stdout and stderr to the end: every line goes
    to `log_path`, the lines `DagsterOutputFilter` shows go to `show`.

    The stream is read to its end whatever happens: Dagster's processes write into a pipe, and a
    pipe nobody reads blocks them once full. A log that cannot be written is said once."""

    def __init__(self, stream: IO[bytes], log_path: Path, show: Callable[[str], None]):
        self.log_path = log_path
        self._stream = stream
        self._show = show
        self._muted = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="acts-dagster-output", daemon=True)

    def start(self) -> DagsterOutput:
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Wait for the end of the stream (everything that held it has exited); show nothing
        after that, so that the terminal's last line is the caller's."""
        self._thread.join(timeout)
        self._muted.set()

    def _pump(self) -> None:
        decide = DagsterOutputFilter()
        log = self._open_log()
        for raw in self._stream:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if log is not None:
                log = self._append(log, plain(line))
            if decide.shows(line):
                self._tell(line)
        if log is not None:
            log.close()

    def _open_log(self) -> _LogFile | None:
        try:
            log = _LogFile(self.log_path)
        except OSError as exc:
            self._tell(f"warning: Dagster's output is not kept in {self.log_path} ({exc})")
            return None
        started = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
        return self._append(log, f"---- acts-pipeline dev started dagster dev at {started} ----")

    def _append(self, log: _LogFile, text: str) -> _LogFile | None:
        """`log` after appending `text` to it, or None if that failed (said once)."""
        try:
            log.write(text)
            return log
        except OSError as exc:
            log.close()
            self._tell(f"warning: Dagster's output is no longer kept in {self.log_path} ({exc}); its warnings "
                       "and errors still show here")
            return None

    def _tell(self, line: str) -> None:
        if self._muted.is_set():
            return
        try:
            self._show(line)
        except OSError:  # the terminal is gone: the stream is still read to its end
            self._muted.set()
