"""Moving the rolling partition window: reload the code location once a day.

The minute partitions start at midnight UTC `ACTS_PARTITION_WINDOW_DAYS` days before the day the
code location was loaded (`acts_pipeline.partitions`). The webserver and the daemon keep the
definitions they loaded, so the start moves only when the code location is reloaded: once a day,
just after midnight UTC, through the webserver's GraphQL `reloadWorkspace` mutation (what the UI's
"Reload all" button sends). `acts-pipeline dev` does it by itself; a production deployment runs
`acts-pipeline reload-code --url http://<webserver>:3000` from cron at the same time.

The reload is timed between minute runs: the 23:59 run has fetched its books at 00:00:00 and
the 00:00 run is requested at 00:00:30. A run already started finishes on the code it started
with (Dagster's code server waits for its runs before it shuts down).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

#: When, UTC, the code location is reloaded each day.
RELOAD_AT = time(0, 0, 10)

RELOAD_MUTATION = """
mutation ReloadWorkspace {
  reloadWorkspace {
    __typename
    ... on Workspace { locationEntries { name locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""


class ReloadError(RuntimeError):
    """The webserver did not reload the code location, or a location failed to load."""


def next_reload(now: datetime, at: time = RELOAD_AT) -> datetime:
    """The first daily reload moment strictly after `now`."""
    now = now.astimezone(UTC)
    moment = datetime.combine(now.date(), at, tzinfo=UTC)
    return moment if moment > now else moment + timedelta(days=1)


def reload_code_locations(webserver_url: str, *, timeout: float = 120.0) -> list[str]:
    """Reload every code location of the webserver's workspace; the names reloaded.

    Raises `ReloadError` naming the location and its error if one fails to load (the previous
    definitions are then gone from the UI, so this must be loud)."""
    request = urllib.request.Request(
        webserver_url.rstrip("/") + "/graphql", data=json.dumps({"query": RELOAD_MUTATION}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
    except OSError as exc:
        raise ReloadError(f"could not reach the Dagster webserver at {webserver_url}: {exc}") from None
    if payload.get("errors"):
        raise ReloadError(f"reloadWorkspace refused: {payload['errors'][0].get('message')}")
    result = payload["data"]["reloadWorkspace"]
    if result["__typename"] != "Workspace":
        raise ReloadError(f"reloadWorkspace failed: {result.get('message', result['__typename'])}")
    names = []
    for entry in result["locationEntries"]:
        loaded = entry["locationOrLoadError"]
        if loaded is None or loaded["__typename"] == "PythonError":
            message = (loaded or {}).get("message", "not loaded")
            raise ReloadError(f"code location {entry['name']} failed to load: {message}")
        names.append(entry["name"])
    return names


class DailyReloader:
    """A background thread that reloads the code locations at `RELOAD_AT` every day."""

    def __init__(self, webserver_url: str, *, log: Callable[[str], None] = print,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), at: time = RELOAD_AT):
        self.webserver_url = webserver_url
        self._log = log
        self._clock = clock
        self._at = at
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="acts-daily-reload", daemon=True)

    def start(self) -> DailyReloader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            wait = (next_reload(self._clock(), self._at) - self._clock()).total_seconds()
            if self._stop.wait(max(0.0, wait)):
                return
            try:
                names = reload_code_locations(self.webserver_url)
                self._log(f"reloaded code location(s) {', '.join(names)}: the partition window moved to a new day")
            except ReloadError as exc:
                self._log(f"warning: daily reload failed ({exc}); the partition window did not move")
