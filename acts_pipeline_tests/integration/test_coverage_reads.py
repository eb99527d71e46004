"""The daily coverage read (`storage.coverage_reads.hourly_masks`) against the real embedded
database server: one aggregation returns, per symbol and hour, exactly the minutes stored, and
nothing of the days around."""

from datetime import UTC, datetime, timedelta

import pytest

from acts_pipeline.core.coverage import FULL_HOUR, day_coverage
from acts_pipeline.storage import MongoStore
from acts_pipeline.storage.coverage_reads import hourly_masks

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
DAY = datetime(2026, 11, 30, tzinfo=UTC)
M = timedelta(minutes=1)


@pytest.fixture
def store(mongo_uri, mongo_db_name):
    return MongoStore.connect(mongo_uri, mongo_db_name)


def cells(symbol, minutes):
    return [{"symbol": symbol, "minute": DAY + m * M, "close": 1.0} for m in minutes]


def test_hourly_masks_hold_exactly_the_stored_minutes_of_the_day(store):
    gaps = {0, 29, 30, 59, 61, 23 * 60 + 59}
    store.upsert("klines_1m", cells("BTCUSDT", [m for m in range(1440) if m not in gaps])
                 + cells("ETHUSDT", range(600, 605))
                 # the minutes just before and after the day: not counted
                 + cells("BTCUSDT", [-1, 1440]) + cells("SOLUSDT", [-5, 1440 + 3]))
    masks = hourly_masks(store, "klines_1m", DAY, DAY + timedelta(days=1))
    assert set(masks) == {"BTCUSDT", "ETHUSDT"}
    btc = masks["BTCUSDT"]
    assert btc[0] == FULL_HOUR & ~(1 << 0 | 1 << 29 | 1 << 30 | 1 << 59)
    assert btc[1] == FULL_HOUR & ~(1 << 1)
    assert btc[23] == FULL_HOUR & ~(1 << 59)
    assert all(btc[h] == FULL_HOUR for h in range(2, 23))
    assert masks["ETHUSDT"] == {10: 0b11111}


def test_the_day_read_from_the_server_gives_the_gaps_and_counts(store):
    store.upsert("order_book_snapshots", cells("BTCUSDT", [m for m in range(1440) if not 100 <= m < 160])
                 + cells("ETHUSDT", range(720, 1440)))
    masks = hourly_masks(store, "order_book_snapshots", DAY, DAY + timedelta(days=1))
    cov = day_coverage("order_book_snapshots", DAY, masks, {"BTCUSDT": DAY - timedelta(days=9),
                                                            "ETHUSDT": DAY + 720 * M, "XRPUSDT": DAY + timedelta(days=4)})
    rows = {r.symbol: r for r in cov.symbols}
    assert set(rows) == {"BTCUSDT", "ETHUSDT"}  # XRPUSDT is not tracked yet: no row, no gap
    assert (rows["BTCUSDT"].missing, rows["BTCUSDT"].missing_ranges) == (60, ((DAY + 100 * M, DAY + 159 * M),))
    assert (rows["ETHUSDT"].expected, rows["ETHUSDT"].missing) == (720, 0)


def test_an_empty_collection_reads_as_no_masks(store):
    assert hourly_masks(store, "order_book_features", DAY, DAY + timedelta(days=1)) == {}
