"""`snapshots_from_boundary_books` against the real embedded database: a day's missing cells are
filled with exactly the recorder's usable books (with its timestamps and their features), stored
snapshots stay as they were, and every cell still missing is counted with its reason."""

from datetime import timedelta

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from acts_pipeline.storage import MongoResource
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline.orchestration.history_snapshots import (
    NO_BOOK,
    OUTSIDE_RETENTION,
    UNUSABLE,
    snapshots_from_boundary_books,
)
from acts_pipeline_tests.dates import recent_minute
from acts_pipeline_tests.fakes import STREAM_ASKS, STREAM_BIDS, boundary_book

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
DAY = recent_minute(0, 0)
A, B, C = "NKNUSDT", "BLZETH", "LRCBTC"
SYMBOLS = [A, B, C]


def at(hour: int, minute: int):
    return DAY + timedelta(hours=hour, minutes=minute)


def rest_snapshot(symbol, minute):
    close = minute + timedelta(minutes=1)
    return {"symbol": symbol, "minute": minute, "captured_at": close + timedelta(milliseconds=40),
            "requested_at": close + timedelta(milliseconds=3), "last_update_id": 7, "depth_limit": 100,
            "bids": [[2.0, 1.0]], "asks": [[2.1, 1.0]], "source": "rest"}


@pytest.fixture
def mongo(mongo_uri, mongo_db_name):
    mongo = MongoResource(uri=mongo_uri, database=mongo_db_name)
    store = mongo.get_store()
    books = []
    for m in range(5):  # the recorder's books start at 10:00 (its oldest kept book)
        minute = at(10, m)
        for symbol in SYMBOLS:
            if (symbol, m) == (C, 2):
                continue  # no decision of the recorder at that close
            if (symbol, m) == (B, 1):
                books.append(boundary_book(symbol, minute, usable=False, reason="resyncing"))
                continue
            books.append(boundary_book(symbol, minute, last_update_id=100 * m + SYMBOLS.index(symbol)))
    # published, then withdrawn by a later decision (a late event of the close)
    books.append(boundary_book(A, at(10, 3), usable=False, reason="a late event of the close", revised=True,
                               decided_at=at(10, 4) + timedelta(seconds=3)))
    BoundaryBooks(store).write(books)
    store.upsert("order_book_snapshots", [rest_snapshot(A, at(10, 0)), rest_snapshot(B, at(15, 0))])
    return mongo


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


def snapshots(mongo):
    return {(d["symbol"], d["minute"]): d for d in mongo.get_store().collection("order_book_snapshots").find({}, {"_id": False})}


def test_the_missing_cells_are_filled_with_the_recorders_books_and_stored_ones_kept(mongo, instance):
    before = snapshots(mongo)
    result = materialize([snapshots_from_boundary_books], instance=instance, partition_key=f"{DAY:%Y-%m-%d}",
                         resources={"mongo": mongo})
    assert result.success
    after = snapshots(mongo)
    filled = {key: doc for key, doc in after.items() if key not in before}
    expected = {(s, at(10, m)) for m in range(5) for s in SYMBOLS} - {(A, at(10, 0)), (B, at(10, 1)), (C, at(10, 2)),
                                                                      (A, at(10, 3))}
    assert set(filled) == expected
    assert all(after[key] == doc for key, doc in before.items())  # stored snapshots untouched
    for (symbol, minute), doc in filled.items():
        close = minute + timedelta(minutes=1)
        assert doc["source"] == "stream" and doc["bids"] == STREAM_BIDS and doc["asks"] == STREAM_ASKS
        assert doc["captured_at"] == doc["requested_at"] == close + timedelta(milliseconds=12)  # decided_at
        assert doc["event_time"] == close - timedelta(milliseconds=59)
        assert doc["last_update_id"] == 100 * (minute - at(10, 0)).seconds // 60 + SYMBOLS.index(symbol)
    features = {(d["symbol"], d["minute"]): d for d in mongo.get_store().collection("order_book_features").find()}
    assert set(features) == expected
    assert all(f["best_bid"] == 1.5 and f["best_ask"] == 1.6 for f in features.values())

    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["cells"].value == 3 * 1440
    assert metadata["already_stored"].value == {"rest": 2}
    assert metadata["filled_from_boundary_books"].value == 11
    assert metadata["missing_by_reason"].value == {
        OUTSIDE_RETENTION: 3 * 600,  # 00:00..09:59
        UNUSABLE: 2,  # B at 10:01 (resyncing), A at 10:03 (withdrawn)
        NO_BOOK: 1 + 3 * (14 * 60 - 5) - 1,  # C at 10:02; every cell from 10:05 but B's stored 15:00
    }
    assert metadata["missing"].value + 11 + 2 == 3 * 1440
    assert instance.get_materialized_partitions(AssetKey("snapshots_from_boundary_books")) == {f"{DAY:%Y-%m-%d}"}

    # a re-run fills nothing twice, and changes nothing
    again = materialize([snapshots_from_boundary_books], instance=instance, partition_key=f"{DAY:%Y-%m-%d}",
                        resources={"mongo": mongo})
    (event,) = again.get_asset_materialization_events()
    assert event.materialization.metadata["filled_from_boundary_books"].value == 0
    assert event.materialization.metadata["already_stored"].value == {"rest": 2, "stream": 11}
    assert snapshots(mongo) == after


def test_a_day_before_every_kept_book_is_outside_the_retention(mongo, instance):
    day = DAY - timedelta(days=1)
    result = materialize([snapshots_from_boundary_books], instance=instance, partition_key=f"{day:%Y-%m-%d}",
                         resources={"mongo": mongo})
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["missing_by_reason"].value == {OUTSIDE_RETENTION: 3 * 1440}
    assert event.materialization.metadata["filled_from_boundary_books"].value == 0


def test_the_nightly_schedule_fills_yesterday_with_the_stream_recorder_and_skips_without_it(mongo, instance):
    """`snapshots_from_boundary_books_schedule` at 00:02 UTC: yesterday's partition, whose run
    fills the day's gaps as above (a daemon down for hours while the recorder ran); with
    ACTS_BOOK_SOURCE=rest there are no boundary books, and it skips, saying why."""
    from dagster import RunRequest, SkipReason, build_schedule_context

    from acts_pipeline.orchestration.book_source import BookSource
    from acts_pipeline.orchestration.history_partitions import day_partitions
    from acts_pipeline.orchestration.history_snapshots import snapshots_from_boundary_books_schedule

    tick = DAY + timedelta(days=1, minutes=2)
    with build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                resources={"book_source": BookSource(mongo=mongo, source="stream")}) as context:
        request = snapshots_from_boundary_books_schedule(context)
    assert isinstance(request, RunRequest), request
    assert request.partition_key == request.run_key == f"{DAY:%Y-%m-%d}"
    assert day_partitions.has_partition_key(request.partition_key)
    result = materialize([snapshots_from_boundary_books], instance=instance, partition_key=request.partition_key,
                         resources={"mongo": mongo})
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["filled_from_boundary_books"].value == 11

    with build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                resources={"book_source": BookSource(mongo=mongo, source="rest")}) as context:
        skipped = snapshots_from_boundary_books_schedule(context)
    assert isinstance(skipped, SkipReason) and "ACTS_BOOK_SOURCE=rest" in skipped.skip_message
