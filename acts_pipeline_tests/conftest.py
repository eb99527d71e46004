"""Shared test fixtures.

Server fixtures live in their own plugin modules, one per real server the tests start:
`servers_mongo` (the embedded MongoDB-compatible server, as its own process) and
`servers_simulator` (the offline Binance exchange, a real HTTP server).
"""

import os
from pathlib import Path

import pytest

# The tests take their minutes from yesterday (acts_pipeline_tests/dates.py). The assets as defined
# in code take any minute since 2025; a test that loads the code location (`definitions.defs()`,
# which narrows them to the live window) gets a window reaching back 48 hours, whatever the shell
# has set. The end-to-end tests start the platform in a clean environment, with the default window.
os.environ.pop("ACTS_PARTITION_WINDOW_DAYS", None)
os.environ["ACTS_PARTITION_WINDOW_HOURS"] = "48"

pytest_plugins = [
    "acts_pipeline_tests.servers_mongo",
    "acts_pipeline_tests.servers_simulator",
]

CAPTURES_DIR = Path(__file__).resolve().parent.parent / "acts_simulator" / "data" / "binance"


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """The real Binance captures (see its README.md), shipped with the simulator."""
    return CAPTURES_DIR
