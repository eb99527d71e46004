"""Cell reads and indexes against the real embedded database server: the minute index exists on
every cell collection, and a read of many symbols (by the minutes' range) or of a few (naming
them) returns exactly the cells asked for, in order."""

from datetime import UTC, datetime, timedelta

import pytest

from pymongo import MongoClient, monitoring

from acts_pipeline.core.cells import Cell
from acts_pipeline.storage import FEW_SYMBOLS, SYMBOL_REGISTRY, MongoStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
MINUTE = datetime(2026, 11, 26, 13, 54, tzinfo=UTC)
SYMBOLS = [f"S{i:03d}USDT" for i in range(FEW_SYMBOLS + 20)]


@pytest.fixture
def store(mongo_uri, mongo_db_name):
    store = MongoStore.connect(mongo_uri, mongo_db_name)
    # minutes 0..3 for every symbol, except minute 1 of the first symbol: a gap
    store.upsert("order_book_features", [
        {"symbol": s, "minute": MINUTE + timedelta(minutes=m), "value": m * 1000 + i}
        for m in range(4) for i, s in enumerate(SYMBOLS) if (m, i) != (1, 0)])
    return store


def test_cell_collections_have_the_unique_key_and_the_minute_index(store):
    indexes = store.collection("order_book_features").index_information()
    assert indexes["symbol_minute_unique"]["key"] == [("symbol", 1), ("minute", 1)]
    assert indexes["symbol_minute_unique"]["unique"] is True
    assert indexes["minute"]["key"] == [("minute", 1)]
    assert "minute" not in store.collection(SYMBOL_REGISTRY).index_information()


@pytest.mark.parametrize("count", [3, FEW_SYMBOLS, FEW_SYMBOLS + 1, len(SYMBOLS) - 5])
def test_find_cells_returns_exactly_the_cells_asked_for_in_order(store, count):
    wanted_symbols = SYMBOLS[:count]
    cells = [Cell(MINUTE + timedelta(minutes=m), s) for m in (1, 2) for s in wanted_symbols]
    documents = store.find_cells("order_book_features", cells)
    got = [(d["minute"], d["symbol"]) for d in documents]
    expected = [(c.minute, c.symbol) for c in sorted(cells) if c != Cell(MINUTE + timedelta(minutes=1), SYMBOLS[0])]
    assert got == expected  # the gap stays a gap; nothing from minutes 0 or 3 or other symbols
    assert all(d["value"] == (d["minute"] - MINUTE).seconds // 60 * 1000 + SYMBOLS.index(d["symbol"])
               for d in documents)


class FindCommands(monitoring.CommandListener):
    """The `find` commands a client sent."""

    def __init__(self):
        self.finds: list[dict] = []

    def started(self, event):
        if event.command_name == "find":
            self.finds.append(dict(event.command))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_whole_cells_are_read_without_a_projection_and_without_their_id(store, mongo_uri, mongo_db_name):
    """The embedded server deep-copies every document it projects, even for `{"_id": False}`
    (2.5x its CPU for a minute of snapshots, `benchmarks/cell_reads.py`): whole documents are read
    unprojected and `_id` is dropped on our side; a read of a few fields keeps its projection."""
    listener = FindCommands()
    client = MongoClient(mongo_uri, event_listeners=[listener])
    try:
        watched = MongoStore(client[mongo_db_name])
        cells = [Cell(MINUTE + timedelta(minutes=2), s) for s in SYMBOLS]
        documents = watched.find_cells("order_book_features", cells)
        assert [d["symbol"] for d in documents] == SYMBOLS
        assert all(set(d) == {"symbol", "minute", "value"} for d in documents)  # no `_id`
        assert [f.get("projection") for f in listener.finds] == [None]
        assert [set(d) for d in watched.find_all("order_book_features")][:1] == [{"symbol", "minute", "value"}]
        assert listener.finds[-1].get("projection") is None

        few = watched.find_cells("order_book_features", cells[:2], fields=["value"])
        assert [(d["symbol"], d["value"]) for d in few] == [(SYMBOLS[0], 2000), (SYMBOLS[1], 2001)]
        assert all(set(d) == {"symbol", "minute", "value"} for d in few)
        assert listener.finds[-1]["projection"] == {"_id": False, "symbol": True, "minute": True, "value": True}
    finally:
        client.close()


def test_insert_or_replace_inserts_new_cells_and_replaces_existing_ones_never_duplicating(store):
    """A, then B, then A again with new values and a new cell C."""
    name = "klines_1m"
    a = [{"symbol": "A", "minute": MINUTE, "v": 1}]
    b = [{"symbol": "B", "minute": MINUTE, "v": 2}]
    assert store.insert_or_replace(name, a).inserted == 1
    store.insert_or_replace(name, b)
    result = store.insert_or_replace(name, [{"symbol": "A", "minute": MINUTE, "v": 3},
                                            {"symbol": "C", "minute": MINUTE, "v": 4}])
    assert (result.inserted, result.replaced) == (1, 1)
    stored = {d["symbol"]: d["v"] for d in store.collection(name).find({"minute": MINUTE}, {"_id": False})}
    assert stored == {"A": 3, "B": 2, "C": 4}


def test_a_collection_keyed_by_id_is_written_by_its_id(store):
    """boundary_books: batches carry their `_id`; a replayed batch (insert or upsert) replaces itself."""
    name = "boundary_books"
    a = {"_id": "a", "minute": MINUTE, "v": 1}
    b = {"_id": "b", "minute": MINUTE, "v": 2}
    store.insert_or_replace(name, [a, b])
    assert store.insert_or_replace(name, [{**a, "v": 3}]).replaced == 1
    assert store.upsert(name, [{**b, "v": 4}]).replaced == 1
    assert {d["_id"]: d["v"] for d in store.collection(name).find()} == {"a": 3, "b": 4}
    assert set(store.collection(name).index_information()) == {"_id_", "minute"}


def test_the_recorders_retention_deletes_only_minutes_before_the_cutoff(store):
    name = "boundary_books"
    store.insert_or_replace(name, [{"_id": m, "minute": MINUTE + timedelta(minutes=m)} for m in range(5)])
    assert store.delete_before(name, MINUTE + timedelta(minutes=2)) == 2
    assert sorted(d["minute"] for d in store.collection(name).find({}, {"_id": False})) == [
        MINUTE + timedelta(minutes=m) for m in (2, 3, 4)]
