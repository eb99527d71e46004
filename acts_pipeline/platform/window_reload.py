"""Moving the rolling partition window: reload the code location every hour.

The minute partitions start `ACTS_PARTITION_WINDOW_HOURS` whole hours before the hour the code
location was loaded (`acts_pipeline.orchestration.partitions`). The webserver and the daemon keep the
definitions they loaded, so the start moves only when the code location is reloaded: every hour,
ten seconds past the hour, through the webserver's GraphQL `reloadWorkspace` mutation (what the
UI's "Reload all" button sends). `acts-pipeline dev` does it by itself; a production deployment
runs `acts-pipeline reload-code --url http://<webserver>:3000` from cron at the same moments.

The reload is timed between minute runs: the run of minute HH-1:59 has fetched its books at
HH:00:00 and the HH:00 run is requested at HH:00:30. A run already started finishes on the code
it started with (Dagster's code server waits for its runs before it shuts down).

What moved is read, not assumed: the first key of the minute partitions, as the webserver has
them loaded, before and after the reload (a reload within the hour of the previous load leaves it
where it was).

A new window start is a new partitions definition, and Dagster keys each asset's partition status
cache by its definition: the first partition query after a reload rebuilds the cache from every
materialization event the instance holds (seconds per asset). So each reload is followed by one
`partitionStats` query of every partitioned asset, which rebuilds the caches at once, before a
user opens a page.
"""

from __future__ import annotations

import json
import threading
import time as timer
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

#: When, in each hour (UTC), the code location is reloaded: ten seconds past the hour.
RELOAD_OFFSET = timedelta(seconds=10)

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

#: What the UI's asset pages read first; asking for it rebuilds each asset's status cache.
WARM_QUERY = """
query WarmPartitionStatus {
  assetNodes { assetKey { path } isPartitioned partitionStats { numMaterialized } }
}
"""


#: The asset whose minute dimension is read for the window's first key (all three assets share
#: the partitions definition). An index range makes the webserver build one key per dimension
#: instead of the window's thousands of minutes.
WINDOW_ASSET = "order_book_snapshot"
FIRST_MINUTE_QUERY = """
query FirstMinute {
  assetNodeOrError(assetKey: {path: ["%s"]}) {
    __typename
    ... on AssetNode { partitionKeysByDimension(startIdx: 0, endIdx: 1) { name partitionKeys } }
  }
}
""" % WINDOW_ASSET


class ReloadError(RuntimeError):
    """The webserver did not reload the code location, or a location failed to load."""


def next_reload(now: datetime, offset: timedelta = RELOAD_OFFSET) -> datetime:
    """The first hourly reload moment strictly after `now`: `offset` past an hour, UTC."""
    now = now.astimezone(UTC)
    moment = now.replace(minute=0, second=0, microsecond=0) + offset
    return moment if moment > now else moment + timedelta(hours=1)


def _post_graphql(webserver_url: str, query: str, timeout: float, what: str) -> dict:
    request = urllib.request.Request(
        webserver_url.rstrip("/") + "/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
    except OSError as exc:
        raise ReloadError(f"could not reach the Dagster webserver at {webserver_url}: {exc}") from None
    if payload.get("errors"):
        raise ReloadError(f"{what} refused: {payload['errors'][0].get('message')}")
    return payload["data"]


def reload_code_locations(webserver_url: str, *, timeout: float = 120.0) -> list[str]:
    """Reload every code location of the webserver's workspace; the names reloaded.

    Raises `ReloadError` naming the location and its error if one fails to load (the previous
    definitions are then gone from the UI, so this must be loud)."""
    result = _post_graphql(webserver_url, RELOAD_MUTATION, timeout, "reloadWorkspace")["reloadWorkspace"]
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


def first_minute_key(webserver_url: str, *, timeout: float = 60.0) -> str | None:
    """The first key of the minute partitions the webserver has loaded (`2026-11-26-07:00`); None
    if it has no such asset (its code location failed to load). Raises `ReloadError`."""
    node = _post_graphql(webserver_url, FIRST_MINUTE_QUERY, timeout, "partitionKeysByDimension")["assetNodeOrError"]
    if node["__typename"] != "AssetNode":
        return None
    keys = next((d["partitionKeys"] for d in node["partitionKeysByDimension"] if d["name"] == "minute"), [])
    return keys[0] if keys else None


def window_start_message(before: str | None, after: str | None) -> str:
    """What a reload did to the partition window, from its first key before and after it."""
    if after is None:
        return f"the partition window's start is unknown: the webserver has no asset {WINDOW_ASSET}"
    if before == after:
        return f"the partition window still starts at {after}"
    return f"the partition window now starts at {after}" + (f" (moved from {before})" if before else "")


def warm_partition_status(webserver_url: str, *, timeout: float = 600.0) -> list[str]:
    """Have the webserver rebuild the partition status cache of every partitioned asset (one
    `partitionStats` query of all asset nodes); the assets' names, `/`-joined."""
    nodes = _post_graphql(webserver_url, WARM_QUERY, timeout, "partitionStats")["assetNodes"]
    return ["/".join(node["assetKey"]["path"]) for node in nodes if node["isPartitioned"]]


def warm_up(webserver_url: str) -> str:
    """`warm_partition_status`, timed: what was done, for the log or the terminal. Raises
    `ReloadError`."""
    started = timer.monotonic()
    assets = warm_partition_status(webserver_url)
    return f"partition status of {len(assets)} assets rebuilt in {timer.monotonic() - started:.1f} s"


def reload_and_warm(webserver_url: str) -> str:
    """Reload the code locations, then rebuild the partition status caches; what was done (where
    the partition window starts, and whether that moved), with the time each step took, for the
    log. Raises `ReloadError`."""
    before = first_minute_key(webserver_url)
    started = timer.monotonic()
    names = reload_code_locations(webserver_url)
    reloaded = f"reloaded code location(s) {', '.join(names)} in {timer.monotonic() - started:.1f} s"
    window = window_start_message(before, first_minute_key(webserver_url))
    return f"{reloaded}; {window}; {warm_up(webserver_url)}"


class HourlyReloader:
    """A background thread that reloads the code locations, and warms the partition status,
    `RELOAD_OFFSET` past every hour."""

    def __init__(self, webserver_url: str, *, log: Callable[[str], None] = print,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), offset: timedelta = RELOAD_OFFSET):
        self.webserver_url = webserver_url
        self._log = log
        self._clock = clock
        self._offset = offset
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="acts-hourly-reload", daemon=True)

    def start(self) -> HourlyReloader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            wait = (next_reload(self._clock(), self._offset) - self._clock()).total_seconds()
            if self._stop.wait(max(0.0, wait)):
                return
            try:
                self._log(reload_and_warm(self.webserver_url))
            except ReloadError as exc:
                self._log(f"warning: hourly reload failed ({exc}); the partition window may not have moved")
