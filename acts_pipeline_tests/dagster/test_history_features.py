"""`features_history` against the real embedded database: a day's features recomputed from the
stored snapshots equal what the live `order_book_features` asset computes from the same
snapshots, in bounded batches, also for the snapshots only the Parquet archive still holds, and
a re-run replaces them."""

import threading
import time
from datetime import timedelta

import numpy as np
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from acts_pipeline.core.models import OrderBook, OrderBookSnapshot
from acts_pipeline.orchestration import history_features
from acts_pipeline.orchestration.archive_assets import ArchiveResource
from acts_pipeline.orchestration.assets import order_book_features, order_book_snapshot
from acts_pipeline.orchestration.history_features import features_history
from acts_pipeline.orchestration.partitions import minute_range_tags
from acts_pipeline.storage import MongoIOManager, MongoResource
from acts_pipeline.storage.archive import Archive
from acts_pipeline.storage.client import StorageError, WriteResult
from acts_pipeline.storage.handlers import SnapshotHandler
from acts_pipeline_tests.dates import recent_minute
from acts_pipeline_tests.fakes import CAPTURED_SYMBOLS, FakeClient, FixedClock, captured_book, fake_exchange, rest_books

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
DAY = recent_minute(0, 0)  # yesterday, inside the live partitions' window too
#: Minutes of the day with snapshots: the first, some in the morning, the last.
MINUTES = [DAY + timedelta(minutes=m) for m in (0, 1, 2, 600, 601, 602, 603, 1438, 1439)]


def varied_snapshot(symbol: str, minute, index: int) -> OrderBookSnapshot:
    """The captured book of `symbol`, different at each minute: quantities scaled, top levels
    taken away; one book with no asks, one from the stream."""
    book = captured_book(symbol)
    bids = book.bids.copy()
    bids[:, 1] *= 1 + index / 10
    asks = book.asks[index % 5:]
    if index == 4 and symbol == "BLZETH":
        asks = np.empty((0, 2))
    captured = minute + timedelta(minutes=1, milliseconds=5 + index)
    stream = symbol == "LRCBTC" and index % 2 == 0
    return OrderBookSnapshot(symbol=symbol, minute=minute, requested_at=captured - timedelta(milliseconds=4),
                             captured_at=captured, depth_limit=100, book=OrderBook(symbol, 1000 + index, bids, asks),
                             source="stream" if stream else "rest",
                             event_time=captured - timedelta(milliseconds=70) if stream else None)


@pytest.fixture
def mongo(mongo_uri, mongo_db_name):
    mongo = MongoResource(uri=mongo_uri, database=mongo_db_name)
    snapshots = [varied_snapshot(s, m, i) for i, m in enumerate(MINUTES) for s in CAPTURED_SYMBOLS]
    mongo.get_store().upsert("order_book_snapshots", SnapshotHandler().to_documents(snapshots))
    # a snapshot of the day before and of the day after: not this day's
    outside = [varied_snapshot("NKNUSDT", DAY - timedelta(minutes=1), 0), varied_snapshot("NKNUSDT", DAY + timedelta(days=1), 0)]
    mongo.get_store().upsert("order_book_snapshots", SnapshotHandler().to_documents(outside))
    return mongo


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", list(CAPTURED_SYMBOLS))
        yield instance


def features(mongo) -> dict:
    return {(d["symbol"], d["minute"]): d for d in mongo.get_store().collection("order_book_features").find({}, {"_id": False})}


def test_a_day_recomputed_equals_the_live_features_of_the_same_snapshots(mongo, instance, tmp_path, monkeypatch):
    # the live asset over the day's minutes, reading the stored snapshots through the I/O manager
    for first, last in ((MINUTES[0], MINUTES[2]), (MINUTES[3], MINUTES[6]), (MINUTES[7], MINUTES[8])):
        live = materialize(
            [order_book_snapshot, order_book_features], selection=[order_book_features], instance=instance,
            tags=minute_range_tags(first, list(CAPTURED_SYMBOLS), last),
            resources={"io_manager": MongoIOManager(mongo=mongo, spool_dir=str(tmp_path)),
                       # the snapshot step is not run (its books are the stored ones): its resources idle
                       "exchange": fake_exchange(FakeClient(now=None)), "book_source": rest_books(),
                       "capture_clock": FixedClock(at=first.isoformat())})
        assert live.success
    expected = features(mongo)
    assert len(expected) == len(MINUTES) * len(CAPTURED_SYMBOLS)
    mongo.get_store().collection("order_book_features").drop()

    batches = []
    original = history_features.compute_features

    def counted(snapshots):
        batches.append(len(snapshots))
        return original(snapshots)

    monkeypatch.setattr(history_features, "BATCH_SNAPSHOTS", 7)
    monkeypatch.setattr(history_features, "compute_features", counted)
    result = materialize([features_history], instance=instance, partition_key=f"{DAY:%Y-%m-%d}",
                         resources={"mongo": mongo, "archive": ArchiveResource(root=str(tmp_path / "archive"))})
    assert result.success
    assert features(mongo) == expected  # every field, every cell, and none outside the day
    assert max(batches) == 7 and sum(batches) == len(expected)  # bounded batches, each snapshot once
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["snapshots"].value == len(expected) and metadata["features_inserted"].value == len(expected)
    assert metadata["symbols"].value == 4
    assert metadata["first_minute"].value == f"{DAY:%Y-%m-%d}-00:00"
    assert metadata["last_minute"].value == f"{DAY:%Y-%m-%d}-23:59"
    assert instance.get_materialized_partitions(AssetKey("features_history")) == {f"{DAY:%Y-%m-%d}"}

    # a re-run replaces, never duplicates
    again = materialize([features_history], instance=instance, partition_key=f"{DAY:%Y-%m-%d}",
                        resources={"mongo": mongo, "archive": ArchiveResource(root=str(tmp_path / "archive"))})
    (event,) = again.get_asset_materialization_events()
    assert event.materialization.metadata["features_replaced"].value == len(expected)
    assert features(mongo) == expected


def test_a_day_with_no_snapshot_says_so(mongo, instance, tmp_path):
    day = DAY - timedelta(days=2)
    result = materialize([features_history], instance=instance, partition_key=f"{day:%Y-%m-%d}",
                         resources={"mongo": mongo, "archive": ArchiveResource(root=str(tmp_path / "archive"))})
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["snapshots"].value == 0
    assert "no snapshot" in event.materialization.metadata["note"].value
    assert features(mongo) == {}


def features_then_archive(mongo, instance, tmp_path) -> tuple[dict, dict]:
    """`features_history` of DAY materialized, then the day archived: the resources, and the
    features as computed from MongoDB's snapshots."""
    resources = {"mongo": mongo, "archive": ArchiveResource(root=str(tmp_path / "archive"))}
    assert materialize([features_history], instance=instance, partition_key=f"{DAY:%Y-%m-%d}",
                       resources=resources).success
    expected = features(mongo)
    Archive(str(tmp_path / "archive")).archive_day(mongo.get_store(), DAY.date())
    return resources, expected


def test_snapshots_only_the_archive_holds_get_their_features_too(mongo, instance, tmp_path):
    store = mongo.get_store()
    resources, expected = features_then_archive(mongo, instance, tmp_path)
    # MongoDB's retention took the morning's snapshots (archived), and a later write (counted) to
    # the day means the archive is no longer all of MongoDB's day; features are recomputed from scratch
    store.collection("order_book_snapshots").delete_many({"minute": {"$gte": DAY, "$lt": MINUTES[5]}})
    store.upsert("order_book_snapshots", SnapshotHandler().to_documents([varied_snapshot("NKNUSDT", MINUTES[8], 8)]))
    store.collection("order_book_features").drop()
    result = materialize([features_history], instance=instance, partition_key=f"{DAY:%Y-%m-%d}", resources=resources)
    assert result.success
    assert features(mongo) == expected
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["snapshots_from_archive"].value == 5 * len(CAPTURED_SYMBOLS)
    assert metadata["snapshots_from_mongodb"].value == 4 * len(CAPTURED_SYMBOLS)


def test_a_day_whose_archive_is_current_is_read_from_the_archive_alone(mongo, instance, tmp_path, monkeypatch):
    """Archived and not written since, the day's snapshots come from its Parquet file: MongoDB's
    copies, changed behind the product's back (a raw update, not counted), are not read, which
    the features prove. Once the product writes the day, MongoDB is read again."""
    store = mongo.get_store()
    resources, expected = features_then_archive(mongo, instance, tmp_path)
    store.collection("order_book_snapshots").update_many(
        {"minute": {"$gte": DAY, "$lt": DAY + timedelta(days=1)}}, {"$set": {"asks": []}})
    store.collection("order_book_features").drop()
    monkeypatch.setattr(history_features, "BATCH_SNAPSHOTS", 7)  # batches across symbols (the file's order)
    result = materialize([features_history], instance=instance, partition_key=f"{DAY:%Y-%m-%d}", resources=resources)
    assert result.success
    assert features(mongo) == expected
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["snapshots_from_archive"].value == len(expected) and metadata["snapshots_from_mongodb"].value == 0
    assert metadata["read_from"].value.startswith("the archive")
    # The features were archived with the day: the run says the file is now behind MongoDB.
    assert "materialize daily_archive" in metadata["archive"].value
    assert metadata["first_minute"].value == f"{DAY:%Y-%m-%d}-00:00"
    assert metadata["last_minute"].value == f"{DAY:%Y-%m-%d}-23:59"

    store.upsert("order_book_snapshots", SnapshotHandler().to_documents([varied_snapshot("NKNUSDT", MINUTES[0], 0)]))
    result = materialize([features_history], instance=instance, partition_key=f"{DAY:%Y-%m-%d}", resources=resources)
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["snapshots_from_mongodb"].value == len(expected) and metadata["snapshots_from_archive"].value == 0
    recomputed = features(mongo)
    assert recomputed[("NKNUSDT", MINUTES[0])] == expected[("NKNUSDT", MINUTES[0])]  # the book written again
    assert recomputed[("NKNUSDT", MINUTES[1])]["ask_levels"] == 0  # MongoDB's changed book, read this time


class _SlowStore:
    """A store whose writes take a while and note when they start and end (on the writer's thread)."""

    def __init__(self, fail_at: int | None = None):
        self.events: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.fail_at = fail_at
        self.calls = 0

    def insert_or_replace(self, name, documents):
        with self.lock:
            call = self.calls
            self.calls += 1
            self.events.append(("start", call))
        time.sleep(0.05)
        if call == self.fail_at:
            raise StorageError("writing order_book_features: connection reset")
        with self.lock:
            self.events.append(("end", call))
        return WriteResult(inserted=len(documents), replaced=0)

    upsert = insert_or_replace


def _batches(count: int):
    for i, minute in enumerate(MINUTES[:count]):
        yield SnapshotHandler().to_documents([varied_snapshot(s, minute, i) for s in CAPTURED_SYMBOLS])


def test_writes_overlap_the_next_batch_one_at_a_time_and_all_end_before_it_returns():
    store = _SlowStore()
    done = history_features.recompute_features(store, _batches(5))
    assert done["snapshots"] == done["features_inserted"] == 5 * len(CAPTURED_SYMBOLS)
    # Never two writes at once, each started after the previous ended, and the last one ended.
    assert store.events == [(kind, call) for call in range(5) for kind in ("start", "end")]


def test_a_failed_write_fails_the_recompute_after_the_write_in_flight_ended():
    store = _SlowStore(fail_at=1)
    with pytest.raises(StorageError, match="connection reset"):
        history_features.recompute_features(store, _batches(5))
    # The failure is seen before the next batch's write is sent: nothing was written after it.
    assert store.events == [("start", 0), ("end", 0), ("start", 1)]
