"""`boundary_books` against the real embedded database server: books written as batches (one
document per connection and close) read back per symbol, the latest decision winning; a replayed
batch never doubles; the per-book layout's unique index is dropped; the retention deletes by minute."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from acts_pipeline.storage import MongoStore
from acts_pipeline.storage.boundary_books import (
    LEGACY_UNIQUE_INDEX,
    MAX_BOOKS_PER_BATCH,
    BoundaryBooks,
    batches,
    books_of,
)
from acts_pipeline.storage.collections import BOUNDARY_BOOKS, boundary_book_usable
from acts_pipeline.storage.durable import Spool, flush_spool
from acts_pipeline.storage.handlers import levels_from_binary, levels_to_binary

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
MINUTE = datetime(2026, 11, 26, 13, 54, tzinfo=UTC)


def book(symbol, minute=MINUTE, *, connection="ws-1", decided=0.1, usable=True, revised=False, price=100.0):
    close = minute + timedelta(minutes=1)
    document = {"symbol": symbol, "minute": minute, "close": close, "source": "stream", "in_sync": usable,
                "reason": None if usable else "not yet synced", "decided_at": close + timedelta(seconds=decided),
                "revised": revised, "connection": connection, "depth_limit": 2}
    if usable:
        document.update(complete=True, last_update_id=7, event_time=close - timedelta(seconds=0.05),
                        bids=levels_to_binary(np.array([[price, 1.0], [price - 1, 2.0]])),
                        asks=levels_to_binary(np.array([[price + 1, 1.5], [price + 2, 0.5]])))
    return document


@pytest.fixture
def store(mongo_uri, mongo_db_name):
    return MongoStore.connect(mongo_uri, mongo_db_name)


def test_a_decision_is_one_document_and_reads_back_per_symbol(store):
    books = BoundaryBooks(store)
    books.write([book("BTCUSDT"), book("ETHUSDT", price=50.0), book("NEWUSDT", usable=False),
                 book("LRCBTC", connection="ws-2")])
    stored = list(store.collection(BOUNDARY_BOOKS).find())
    assert sorted((d["connection"], len(d["books"])) for d in stored) == [("ws-1", 3), ("ws-2", 1)]
    assert sorted(stored[0]["usable"] + stored[1]["usable"]) == ["BTCUSDT", "ETHUSDT", "LRCBTC"]

    at = books.at(MINUTE)
    assert set(at) == {"BTCUSDT", "ETHUSDT", "NEWUSDT", "LRCBTC"}
    eth = at["ETHUSDT"]
    assert boundary_book_usable(eth) and not boundary_book_usable(at["NEWUSDT"])
    assert at["NEWUSDT"]["reason"] == "not yet synced"
    assert eth["close"] == MINUTE + timedelta(minutes=1) and eth["connection"] == "ws-1"
    assert levels_from_binary(eth["bids"]).tolist() == [[50.0, 1.0], [49.0, 2.0]]
    assert set(books.at(MINUTE, ["BTCUSDT", "NOPE"])) == {"BTCUSDT"}
    assert books.decided(MINUTE) == {"BTCUSDT", "ETHUSDT", "NEWUSDT", "LRCBTC"}
    assert books.decided(MINUTE + timedelta(minutes=1)) == set()


def test_a_revision_is_a_later_decision_and_wins(store):
    books = BoundaryBooks(store)
    next_minute = MINUTE + timedelta(minutes=1)
    books.write([book("BTCUSDT"), book("ETHUSDT"), book("BTCUSDT", next_minute)])
    withdrawn = {**book("BTCUSDT", usable=False, revised=True, decided=30.0), "reason": "a late event"}
    books.write([withdrawn])
    at = books.at(MINUTE)
    assert not boundary_book_usable(at["BTCUSDT"]) and at["BTCUSDT"]["reason"] == "a late event"
    assert boundary_book_usable(at["ETHUSDT"])
    assert books.usable_minutes(MINUTE, next_minute + timedelta(minutes=1)) == {
        "BTCUSDT": {next_minute}, "ETHUSDT": {MINUTE}}
    assert [(b["symbol"], b["minute"], boundary_book_usable(b))
            for b in books.between(MINUTE, next_minute + timedelta(minutes=1))] == [
        ("BTCUSDT", MINUTE, False), ("ETHUSDT", MINUTE, True), ("BTCUSDT", next_minute, True)]


def test_a_replayed_batch_replaces_itself(store, tmp_path):
    """A batch spooled after it had in fact reached MongoDB (a crash before the spool file went)."""
    stored = batches([book("BTCUSDT"), book("ETHUSDT")])
    store.insert_or_replace(BOUNDARY_BOOKS, stored)
    spool = Spool(tmp_path / "spool")
    spool.put(BOUNDARY_BOOKS, stored)
    assert flush_spool(store, spool) == 1
    store.insert_or_replace(BOUNDARY_BOOKS, stored)
    assert store.collection(BOUNDARY_BOOKS).count_documents({}) == 1
    assert set(BoundaryBooks(store).at(MINUTE)) == {"BTCUSDT", "ETHUSDT"}


def test_a_large_decision_is_split_below_mongodbs_document_limit():
    many = [book(f"S{i:04d}USDT") for i in range(MAX_BOOKS_PER_BATCH + 7)]
    split = batches(many)
    assert [len(b["books"]) for b in split] == [MAX_BOOKS_PER_BATCH, 7]
    assert [b["symbol"] for part in split for b in books_of(part)] == [b["symbol"] for b in many]
    assert len({b["_id"] for b in split}) == 2


def test_prepare_drops_the_unique_index_of_the_per_book_layout(store):
    collection = store.database[BOUNDARY_BOOKS]
    collection.create_index([("symbol", 1), ("minute", 1)], unique=True, name=LEGACY_UNIQUE_INDEX)
    books = BoundaryBooks(store)
    books.prepare()
    assert LEGACY_UNIQUE_INDEX not in collection.index_information()
    books.write([book("BTCUSDT", connection="ws-1"), book("ETHUSDT", connection="ws-2")])  # two batches, one minute
    assert len(books.at(MINUTE)) == 2
    books.prepare()  # again: nothing to drop


def test_the_retention_deletes_whole_minutes_before_the_cutoff(store):
    books = BoundaryBooks(store)
    books.write([book(s, MINUTE + timedelta(minutes=m)) for m in range(4) for s in ("BTCUSDT", "ETHUSDT")])
    assert books.delete_before(MINUTE + timedelta(minutes=2)) == 2
    assert sorted({b["minute"] for b in books.between(MINUTE, MINUTE + timedelta(hours=1))}) == [
        MINUTE + timedelta(minutes=m) for m in (2, 3)]
