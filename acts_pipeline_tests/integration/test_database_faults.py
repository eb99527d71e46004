"""Database faults against the real embedded server: failing writes (`failCommand` fail point)
and an outage (the server process stopped, then restarted on the same data). No snapshot
already fetched is lost, and none is duplicated."""

import threading
import time
from datetime import timedelta

import pytest
from dagster import DagsterInstance, materialize

from acts_pipeline.orchestration.assets import order_book_snapshot
from acts_pipeline.orchestration.partitions import minute_range_tags
from acts_devkit.servers import start_test_mongo
from acts_pipeline.platform.processes import mongo_uri_of, start_embedded_mongo
from acts_pipeline.storage import MongoIOManager, MongoResource, Spool
from acts_pipeline_tests.dates import iso_instant, recent_minute
from acts_pipeline_tests.fakes import rest_books, CAPTURED_SYMBOLS, FakeClient, FixedClock, fake_exchange

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
SYMBOLS = list(CAPTURED_SYMBOLS)
MINUTE = recent_minute(10, 0)


def nth_minute(n):
    """The `n`th minute after MINUTE."""
    return MINUTE + timedelta(minutes=n)


def collect(minute, mongo, spool_dir, *, patience=60.0):
    clock = FixedClock(at=iso_instant(minute, seconds=59, milliseconds=999))
    clock.sleep(0.01)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        return materialize(
            [order_book_snapshot], instance=instance, raise_on_error=False,
            tags=minute_range_tags(minute, SYMBOLS),
            resources={"exchange": fake_exchange(FakeClient(now=clock.now)), "book_source": rest_books(), "capture_clock": clock,
                       "io_manager": MongoIOManager(mongo=mongo, spool_dir=str(spool_dir),
                                                    write_patience_seconds=patience, retry_interval_seconds=0.5)})


@pytest.fixture
def private_server(tmp_path):
    server = start_test_mongo(tmp_path / "data", log_path=tmp_path / "secantusd.log")
    yield server
    server.stop()


def test_failing_writes_are_retried_and_stored_once(mongo_uri, mongo_db_name, tmp_path):
    mongo = MongoResource(uri=mongo_uri, database=mongo_db_name)
    admin = mongo.get_store().database.client.admin
    # 50 (MaxTimeMSExpired): a write the server gave up on. (91, ShutdownInProgress, makes pymongo
    # wait ~10 s to rediscover the server before each retry; a real server going away is the
    # outage test below.)
    admin.command("configureFailPoint", "failCommand", mode={"times": 3},
                  data={"failCommands": ["update"], "errorCode": 50, "errmsg": "injected by the test"})
    try:
        result = collect(nth_minute(0), mongo, tmp_path / "spool")
    finally:
        admin.command("configureFailPoint", "failCommand", mode="off")
    assert result.success
    db = mongo.get_store().database
    assert db.order_book_snapshots.count_documents({}) == len(SYMBOLS)
    assert Spool(tmp_path / "spool").count() == 0


def test_outage_of_the_database_server_loses_nothing(private_server, tmp_path):
    mongo = MongoResource(uri=mongo_uri_of(private_server), database="acts", timeout_ms=1000)
    mongo.get_store().ping()
    private_server.stop()
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("result", collect(nth_minute(1), mongo, tmp_path / "spool")))
    worker.start()
    time.sleep(6)  # the run has fetched its books and is waiting for MongoDB
    assert Spool(tmp_path / "spool").count() == 1, "the fetched books must be on disk during the outage"
    restarted = start_embedded_mongo(tmp_path / "data", port=private_server.port, log_path=tmp_path / "secantusd.log")
    try:
        worker.join(60)
        assert outcome["result"].success
        db = mongo.get_store().database
        assert sorted(d["symbol"] for d in db.order_book_snapshots.find()) == sorted(SYMBOLS)
        assert Spool(tmp_path / "spool").count() == 0
    finally:
        restarted.stop()


def test_a_write_that_gives_up_stays_spooled_and_the_next_run_writes_it(private_server, tmp_path):
    mongo = MongoResource(uri=mongo_uri_of(private_server), database="acts", timeout_ms=500)
    private_server.stop()
    failed = collect(nth_minute(2), mongo, tmp_path / "spool", patience=2.0)
    assert not failed.success
    message = str([e.event_specific_data.error for e in failed.all_events if e.event_type_value == "STEP_FAILURE"])
    assert "kept in" in message and "spool" in message
    assert Spool(tmp_path / "spool").count() == 1

    restarted = start_embedded_mongo(tmp_path / "data", port=private_server.port, log_path=tmp_path / "secantusd.log")
    try:
        assert collect(nth_minute(3), mongo, tmp_path / "spool").success
        db = mongo.get_store().database
        for n in (2, 3):
            assert db.order_book_snapshots.count_documents({"minute": nth_minute(n)}) == len(SYMBOLS)
        assert db.order_book_snapshots.count_documents({}) == 2 * len(SYMBOLS)
        assert Spool(tmp_path / "spool").count() == 0
    finally:
        restarted.stop()
