"""The daily reload that moves the rolling partition window, against a stand-in webserver."""

import json
import threading
from datetime import UTC, datetime, time, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from acts_pipeline.retention import retention_cutoff
from acts_pipeline.window_reload import RELOAD_AT, ReloadError, next_reload, reload_code_locations


def test_the_reload_is_just_after_midnight_utc_and_always_ahead():
    assert RELOAD_AT == time(0, 0, 10)
    assert next_reload(datetime(2026, 11, 26, 13, 5, tzinfo=UTC)) == datetime(2026, 11, 27, 0, 0, 10, tzinfo=UTC)
    assert next_reload(datetime(2026, 11, 26, 0, 0, 5, tzinfo=UTC)) == datetime(2026, 11, 26, 0, 0, 10, tzinfo=UTC)
    assert next_reload(datetime(2026, 11, 26, 0, 0, 10, tzinfo=UTC)) == datetime(2026, 11, 27, 0, 0, 10, tzinfo=UTC)
    # an aware time elsewhere is converted, not read as UTC
    tokyo = datetime(2026, 11, 27, 8, 0, tzinfo=timezone(timedelta(hours=9)))  # 2026-11-26 23:00 UTC
    assert next_reload(tokyo) == datetime(2026, 11, 27, 0, 0, 10, tzinfo=UTC)


def test_retention_keeps_the_partition_window_by_default():
    now = datetime(2026, 11, 26, 13, 5, tzinfo=UTC)
    from acts_pipeline.partitions import PARTITION_WINDOW_DAYS

    assert retention_cutoff(now, None) == datetime(2026, 11, 26, tzinfo=UTC) - timedelta(days=PARTITION_WINDOW_DAYS)
    assert retention_cutoff(now, 1.5) == now - timedelta(days=1.5)


class Webserver:
    """Answers /graphql with a canned body; records what was posted."""

    def __init__(self, body):
        self.posted = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                outer.posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def workspace(*entries):
    return {"data": {"reloadWorkspace": {"__typename": "Workspace", "locationEntries": list(entries)}}}


def test_reload_posts_the_mutation_and_returns_the_locations():
    server = Webserver(workspace({"name": "acts_pipeline.definitions",
                                  "locationOrLoadError": {"__typename": "RepositoryLocation"}}))
    try:
        assert reload_code_locations(server.url + "/") == ["acts_pipeline.definitions"]
        assert "reloadWorkspace" in server.posted[0]["query"]
    finally:
        server.close()


@pytest.mark.parametrize(("body", "message"), [
    (workspace({"name": "acts_pipeline.definitions",
                "locationOrLoadError": {"__typename": "PythonError", "message": "ConfigurationError: ACTS_PARTITION_WINDOW_DAYS"}}),
     "code location acts_pipeline.definitions failed to load: ConfigurationError: ACTS_PARTITION_WINDOW_DAYS"),
    ({"data": {"reloadWorkspace": {"__typename": "UnauthorizedError", "message": "read-only webserver"}}},
     "reloadWorkspace failed: read-only webserver"),
    ({"errors": [{"message": "Cannot query field"}]}, "reloadWorkspace refused: Cannot query field"),
])
def test_a_failed_reload_says_which_location_and_why(body, message):
    server = Webserver(body)
    try:
        with pytest.raises(ReloadError, match=message):
            reload_code_locations(server.url)
    finally:
        server.close()


def test_an_unreachable_webserver_is_named():
    from acts_pipeline.processes import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ReloadError, match=f"could not reach the Dagster webserver at {url}"):
        reload_code_locations(url, timeout=2)
