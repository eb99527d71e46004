"""The stream recorder against the real simulator (websocket streams and REST snapshots over the
network) and the real database: every stored boundary book equals the simulator's true book at
that close, level for level; a book it cannot vouch for is stored as a reason, never a book.

Each test waits for real minute closes, so one recorder run checks as much as it can: the test
drives it phase by phase (`RecorderRun`) and waits for the first close after the last phase
instead of a fixed number of closes. `test_recorder_outage.py` uses the same helpers."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymongo
import pytest

from acts_pipeline.recorder.recorder import RecorderOptions
from acts_pipeline.recorder.service import RecorderConfig, serve
from acts_pipeline.storage.boundary_books import books_of, latest
from acts_pipeline.storage.collections import BOUNDARY_BOOKS, RECORDER_STATUS
from acts_pipeline.storage.collections import boundary_book_usable as usable
from acts_pipeline.storage.durable import Spool
from acts_pipeline.storage.handlers import levels_from_binary

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SYMBOLS = ["BTCUSDT", "ETHUSDT", "NKNUSDT", "LRCBTC", "RUNEEUR", "BNBUSDT"]
DEPTH = 20


def levels(side: list[list[str]]) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in side]


def health(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def next_close(after: datetime) -> datetime:
    """The first minute close strictly after `after`."""
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


def wait_until(condition: Callable[[], object], timeout: float, what: str, *, every: float = 0.2):
    """`condition()`'s first truthy value, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


class RecorderRun:
    """The recorder in a thread, as `acts-pipeline record` runs it (`service.serve`), against the
    simulator and the database at `mongo_uri`; a context manager that stops it on exit.
    `db` is the test's own client of that database."""

    def __init__(self, simulator, mongo_uri: str, db_name: str, spool_dir: Path, symbols=SYMBOLS):
        self.symbols = list(symbols)
        self.spool = Spool(spool_dir)
        self.config = RecorderConfig(
            api_url=simulator.api_url, ws_url=simulator.ws_url, mongo_uri=mongo_uri, mongo_db=db_name,
            spool=self.spool, health_port=0,
            options=RecorderOptions(depth=DEPTH, snapshot_depth=200, status_every=1.0, quiet_snapshot_after=3.0))
        self.stop_event = threading.Event()
        self.urls: list[str] = []
        self.thread = threading.Thread(target=serve, args=(self.config, lambda: list(self.symbols)),
                                       kwargs={"stop": self.stop_event, "on_listening": self.urls.append},
                                       daemon=True)
        self.client = pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000)
        self.db = self.client[db_name]

    def __enter__(self) -> RecorderRun:
        self.started = datetime.now(UTC)
        self.thread.start()
        wait_until(lambda: self.urls or not self.thread.is_alive(), 30, "the health endpoint")
        assert self.urls and self.urls[0].endswith("/health"), "the recorder stopped by itself"
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.client.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the recorder did not stop"

    def health(self) -> dict:
        assert self.thread.is_alive(), "the recorder stopped by itself"
        return health(self.urls[0])

    def wait_in_sync(self, timeout: float = 60) -> dict:
        """The health once every symbol is in sync."""
        return wait_until(lambda: (h := self.health())["symbols_in_sync"] == len(self.symbols) and h,
                          timeout, "every symbol in sync")

    def stored(self, close: datetime) -> list[dict]:
        """The boundary books of `close` (each symbol's latest decision)."""
        return [book for (_, at), book in stored_books(self.db).items() if at == close]

    def wait_stored(self, close: datetime, slack: float = 20) -> list[dict]:
        """The documents of `close` once every symbol has one (at most `slack` s after the close)."""
        timeout = (close - datetime.now(UTC)).total_seconds() + slack
        return wait_until(lambda: (d := self.stored(close)) and {x["symbol"] for x in d} == set(self.symbols) and d,
                          timeout, f"every symbol's document of the {close:%H:%M} close", every=0.25)


def stored_books(db) -> dict[tuple[str, datetime], dict]:
    """Every stored boundary book, read back as the minute runs read them (`storage.boundary_books`:
    the latest decision of each symbol at each close), by (symbol, close). Each decision is stored
    once: a symbol has at most one first decision at a close (a replayed batch never doubles)."""
    decisions = [book for batch in db[BOUNDARY_BOOKS].find() for book in books_of(batch)]
    first = [(d["symbol"], d["close"]) for d in decisions if not d["revised"]]
    assert len(first) == len(set(first)), sorted(first)
    return {(symbol, minute + timedelta(minutes=1)): book for (symbol, minute), book in latest(decisions).items()}


def check_against_the_truth(simulator, db, last_close) -> list[dict]:
    """Every stored book is the true book at its close; every symbol has one at `last_close`;
    a symbol's decision at a close is stored once; a decision without a book says why."""
    documents = list(stored_books(db).values())
    books = [d for d in documents if usable(d)]
    # The last counted close: every symbol had time to sync (snapshots within seconds).
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


def test_stream_faults_resync_only_what_they_touch_and_every_stored_book_is_the_true_book(
        simulator, mongo_uri, mongo_db_name, tmp_path):
    """One recorder run (once in sync: stream faults, then a dropped connection, then the first
    close after every book is back in sync) checks:

    - every boundary book stored, at every close of the run (before, during and after the faults),
      is the simulator's true book at its close, level for level, with its `lastUpdateId` and
      event time; a document without a book gives its reason; one document per symbol and close;
    - at the last close every symbol has a book, and the recorder's status counts all six symbols
      and a durable-after-close sample for each book it wrote;
    - a skipped event (NKNUSDT) and a late one (ETHUSDT) put those symbols out of sync and resync
      them alone: the other symbols see no gap and no new snapshot (cryptofeed reset every book
      of a connection on one gap, its issues #613, #958); duplicated events (BTCUSDT) are ignored;
    - a dropped connection is reconnected, its books resync and recording goes on.
    """
    with RecorderRun(simulator, mongo_uri, mongo_db_name, tmp_path / "spool") as recorder:
        before = recorder.wait_in_sync()["symbols"]
        try:
            simulator.set_faults([
                {"endpoint": "stream", "symbol": "NKNUSDT", "kind": "skip_event", "times": 1},
                {"endpoint": "stream", "symbol": "BTCUSDT", "kind": "duplicate_event", "times": 2},
                # held until ETHUSDT's next event (about one a second) has been sent: it arrives after it
                {"endpoint": "stream", "symbol": "ETHUSDT", "kind": "late_event", "times": 1, "delay": 20},
            ])
            time.sleep(12)
            after = recorder.health()["symbols"]
            simulator.clear_faults()
            simulator.set_faults([{"endpoint": "stream", "kind": "drop_connection", "times": 1}])
            wait_until(lambda: recorder.health()["connections"][0]["reconnects"] >= 1, 30, "the reconnect")
        finally:
            simulator.clear_faults()
        recorder.wait_in_sync()
        last_close = next_close(datetime.now(UTC))
        recorder.wait_stored(last_close)
        db = recorder.db
        recorder.stop()
        check_against_the_truth(simulator, db, last_close)
        gaps = {s: after[s]["gaps"] - before[s]["gaps"] for s in SYMBOLS}
        assert gaps["NKNUSDT"] >= 1 and gaps["ETHUSDT"] >= 1, gaps
        untouched = [s for s in SYMBOLS if s not in ("NKNUSDT", "ETHUSDT")]
        assert all(gaps[s] == 0 for s in untouched), gaps
        assert all(after[s]["snapshots"] == before[s]["snapshots"] for s in untouched), (before, after)
        status = db[RECORDER_STATUS].find_one({"name": "recorder"})
        assert status["symbols_tracked"] == len(SYMBOLS)
        assert status["symbols_in_sync"] == len(SYMBOLS)
        assert status["connections"][0]["reconnects"] >= 1
        written = [book for batch in db[BOUNDARY_BOOKS].find({"revised": False}) for book in books_of(batch)]
        assert status["durable_after_close_s"]["samples"] >= len(written) > 0
