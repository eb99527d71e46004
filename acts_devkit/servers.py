"""The embedded MongoDB-compatible server as the tests need it: with its test commands on, so
that a test can make the server fail on purpose (`configureFailPoint`), which production never
allows."""

from pathlib import Path

from acts_pipeline.platform.processes import ChildProcess, start_embedded_mongo

TEST_COMMANDS = "--enable-test-commands"


def start_test_mongo(storage_path: Path, *, log_path: Path | None = None) -> ChildProcess:
    """SecantusDB on a free port, data under `storage_path`, fail points enabled."""
    return start_embedded_mongo(storage_path, log_path=log_path, server_args=[TEST_COMMANDS])
