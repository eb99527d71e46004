"""The stream recorder against the real simulator (websocket streams and REST snapshots over the
network) and the real database: every stored boundary book equals the simulator's true book at
that close, level for level; a book it cannot vouch for is stored as a reason, never a book."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pymongo
import pytest

from acts_pipeline.recorder.recorder import RecorderOptions
from acts_pipeline.recorder.service import RecorderConfig, serve
from acts_pipeline.storage.collections import BOUNDARY_BOOKS, RECORDER_STATUS
from acts_pipeline.storage.collections import boundary_book_usable as usable
from acts_pipeline.storage.durable import Spool
from acts_pipeline.storage.handlers import levels_from_binary

pytestmark = pytest.mark.timeout(300)

SYMBOLS = ["BTCUSDT", "ETHUSDT", "NKNUSDT", "LRCBTC", "RUNEEUR", "BNBUSDT"]
DEPTH = 20


def levels(side: list[list[str]]) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in side]


def health(url: str) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def run_recorder(simulator, mongo_uri, db_name, tmp_path, symbols, closes: int, during=None):
    """The recorder in a thread until `closes` closes after its start were written. `during(url)`
    is called once every symbol is in sync (the health endpoint's URL), in the first close."""
    config = RecorderConfig(
        api_url=simulator.api_url, ws_url=simulator.ws_url, mongo_uri=mongo_uri, mongo_db=db_name,
        spool=Spool(tmp_path / "spool"), health_port=0,
        options=RecorderOptions(depth=DEPTH, snapshot_depth=200, status_every=1.0, quiet_snapshot_after=3.0))
    stop = threading.Event()
    urls: list[str] = []
    thread = threading.Thread(target=serve, args=(config, lambda: list(symbols)),
                              kwargs={"stop": stop, "on_listening": urls.append}, daemon=True)
    started = datetime.now(UTC)
    thread.start()
    db = pymongo.MongoClient(mongo_uri, tz_aware=True)[db_name]
    first_close = started.replace(second=0, microsecond=0) + timedelta(minutes=1)
    last_close = first_close + timedelta(minutes=closes - 1)
    try:
        while datetime.now(UTC) < last_close + timedelta(seconds=3):
            assert thread.is_alive(), "the recorder stopped by itself"
            if during is not None and urls and health(urls[0])["symbols_in_sync"] == len(symbols):
                during(urls[0])
                during = None
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(30)
    assert urls and urls[0].endswith("/health")
    return db, first_close, last_close


def check_against_the_truth(simulator, db, last_close) -> list[dict]:
    """Every stored book is the true book at its close; every symbol has one at `last_close`."""
    documents = list(db[BOUNDARY_BOOKS].find({}, {"_id": False}))
    by_cell = {(d["symbol"], d["close"]): d for d in documents}
    assert len(by_cell) == len(documents)
    books = [d for d in documents if usable(d)]
    # The last counted close: every symbol had minutes to sync (snapshots within seconds).
    last = [d for d in books if d["close"] == last_close]
    assert {d["symbol"] for d in last} == set(SYMBOLS), [
        (d["symbol"], d["reason"]) for d in documents if d["close"] == last_close]
    assert books, "no boundary book stored"
    for document in books:
        close_ms = int(document["close"].timestamp() * 1000)
        truth = simulator.true_book(document["symbol"], at_ms=close_ms, limit=DEPTH)
        assert levels_from_binary(document["bids"]).tolist() == levels(truth["bids"]), (document["symbol"], document["close"])
        assert levels_from_binary(document["asks"]).tolist() == levels(truth["asks"]), (document["symbol"], document["close"])
        assert document["last_update_id"] == truth["lastUpdateId"]
        assert int(document["event_time"].timestamp() * 1000) == truth["E"]
        assert document["minute"] == document["close"] - timedelta(minutes=1)
        assert document["decided_at"] >= document["close"]
    for document in documents:
        if not usable(document):
            assert document["reason"] and "bids" not in document
    return documents


def test_every_stored_boundary_book_is_the_true_book_at_its_close(simulator, mongo_uri, mongo_db_name, tmp_path):
    db, first_close, last_close = run_recorder(simulator, mongo_uri, mongo_db_name, tmp_path, SYMBOLS, closes=2)
    check_against_the_truth(simulator, db, last_close)
    last = [d for d in db[BOUNDARY_BOOKS].find({"close": last_close})]
    status = db[RECORDER_STATUS].find_one({"name": "recorder"})
    assert status["symbols_tracked"] == len(SYMBOLS)
    assert status["durable_after_close_s"]["samples"] >= len(last)


def test_stream_faults_resync_only_what_they_touch_and_no_book_is_ever_wrong(
        simulator, mongo_uri, mongo_db_name, tmp_path):
    """A skipped event and a late one resync those symbols alone (cryptofeed reset every book of
    a connection on one gap, its issues #613, #958); duplicates are ignored; a dropped connection
    resyncs its books and recording goes on. Every stored book is the true book."""
    seen = {}

    def faults(url):
        seen["before"] = health(url)["symbols"]
        simulator.set_faults([
            {"endpoint": "stream", "symbol": "NKNUSDT", "kind": "skip_event", "times": 1},
            {"endpoint": "stream", "symbol": "BTCUSDT", "kind": "duplicate_event", "times": 2},
            # held until ETHUSDT's next event (about one a second) has been sent: it arrives after it
            {"endpoint": "stream", "symbol": "ETHUSDT", "kind": "late_event", "times": 1, "delay": 20},
        ])
        time.sleep(12)
        seen["after"] = health(url)["symbols"]
        simulator.clear_faults()
        simulator.set_faults([{"endpoint": "stream", "kind": "drop_connection", "times": 1}])

    try:
        db, _, last_close = run_recorder(simulator, mongo_uri, mongo_db_name, tmp_path, SYMBOLS, closes=2,
                                         during=faults)
    finally:
        simulator.clear_faults()
    check_against_the_truth(simulator, db, last_close)
    gaps = {s: seen["after"][s]["gaps"] - seen["before"][s]["gaps"] for s in SYMBOLS}
    assert gaps["NKNUSDT"] >= 1 and gaps["ETHUSDT"] >= 1, gaps
    untouched = [s for s in SYMBOLS if s not in ("NKNUSDT", "ETHUSDT")]
    assert all(gaps[s] == 0 for s in untouched), gaps
    assert all(seen["after"][s]["snapshots"] == seen["before"][s]["snapshots"] for s in untouched), seen
    status = db[RECORDER_STATUS].find_one({"name": "recorder"})
    assert status["connections"][0]["reconnects"] >= 1
    assert status["symbols_in_sync"] == len(SYMBOLS)
