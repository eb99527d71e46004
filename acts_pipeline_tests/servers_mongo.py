"""Pytest plugin: a real MongoDB-compatible server for integration and end-to-end tests.

By default the embedded server (SecantusDB) is started as its own process, once per session,
with test commands enabled (for fail points). Set `ACTS_TEST_MONGO_URI` to run the same tests
against any real MongoDB instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pymongo
import pytest

from acts_devkit.servers import start_test_mongo
from acts_pipeline.platform.processes import ChildProcess, mongo_uri_of


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory) -> Iterator[ChildProcess | None]:
    """The embedded server process, or None when `ACTS_TEST_MONGO_URI` names another server."""
    if os.environ.get("ACTS_TEST_MONGO_URI"):
        yield None
        return
    base = tmp_path_factory.mktemp("secantus")
    server = start_test_mongo(base / "data", log_path=base / "secantusd.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_uri(mongo_server) -> str:
    return os.environ.get("ACTS_TEST_MONGO_URI") or mongo_uri_of(mongo_server)


@pytest.fixture
def mongo_db_name(mongo_uri) -> Iterator[str]:
    """A fresh database per test, dropped afterwards."""
    name = f"acts_test_{uuid.uuid4().hex[:10]}"
    yield name
    with pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(name)
