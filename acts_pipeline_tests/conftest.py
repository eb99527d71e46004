"""Shared test fixtures.

Server fixtures live in their own plugin modules, one per real server the tests start:
`servers_mongo` (the embedded MongoDB-compatible server, as its own process) and
`servers_simulator` (the offline Binance exchange, a real HTTP server).
"""

from pathlib import Path

import pytest

pytest_plugins = [
    "acts_pipeline_tests.servers_mongo",
    "acts_pipeline_tests.servers_simulator",
]

CAPTURES_DIR = Path(__file__).resolve().parent.parent / "acts_pipeline" / "simulator" / "data" / "binance"


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """The real Binance captures (see its README.md), shipped with the simulator."""
    return CAPTURES_DIR
