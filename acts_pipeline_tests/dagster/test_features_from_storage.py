"""Features stored by the pipeline equal an independent computation from the stored snapshot.

The real captured books go through the snapshot asset into the embedded database (its own
process), the features asset reads them back through the I/O manager, and each stored feature
is checked against plain-Python arithmetic on the stored snapshot document, written here from
DESIGN.md's table. NKNUSDT has an uneven 609-level bid side, RUNEEUR 221 bids and 468 asks."""

import math

import pytest
from dagster import DagsterInstance, materialize

from acts_pipeline.orchestration.assets import order_book_features, order_book_snapshot
from acts_pipeline.orchestration.partitions import minute_range_tags
from acts_pipeline.storage import MongoIOManager, MongoResource
from acts_pipeline_tests.dates import iso_instant, recent_minute
from acts_pipeline_tests.fakes import rest_books, CAPTURED_SYMBOLS, FakeClient, FixedClock, fake_exchange

pytestmark = pytest.mark.integration
MINUTE = recent_minute(10, 0)


def independent_features(snapshot: dict) -> dict:
    bids, asks = snapshot["bids"], snapshot["asks"]
    bb, bq = bids[0]
    ba, aq = asks[0]
    mid = (bb + ba) / 2
    out = {"best_bid": bb, "best_ask": ba, "best_bid_qty": bq, "best_ask_qty": aq, "mid_price": mid,
           "spread": ba - bb, "spread_bps": 1e4 * (ba - bb) / mid,
           "weighted_mid": (bb * aq + ba * bq) / (bq + aq),
           "bid_levels": len(bids), "ask_levels": len(asks), "crossed": bb >= ba}
    for k in (1, 5, 10, 20, 50, 100):
        b = sum(q for _, q in bids[:k])
        a = sum(q for _, q in asks[:k])
        out[f"bid_qty_{k}"], out[f"ask_qty_{k}"], out[f"bias_{k}"] = b, a, (b - a) / (b + a)
    for x in (10, 50, 100):
        b = sum(p * q for p, q in bids if p >= mid * (1 - x / 1e4))
        a = sum(p * q for p, q in asks if p <= mid * (1 + x / 1e4))
        out[f"bid_notional_{x}bps"], out[f"ask_notional_{x}bps"] = b, a
        out[f"depth_bias_{x}bps"] = (b - a) / (b + a) if b + a else None
    return out


def test_stored_features_equal_an_independent_computation_from_the_stored_snapshot(mongo_uri, mongo_db_name):
    mongo = MongoResource(uri=mongo_uri, database=mongo_db_name)
    clock = FixedClock(at=iso_instant(MINUTE, minutes=1, milliseconds=3))
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", list(CAPTURED_SYMBOLS))
        result = materialize(
            [order_book_snapshot, order_book_features], instance=instance,
            tags=minute_range_tags(MINUTE, list(CAPTURED_SYMBOLS)),
            resources={"exchange": fake_exchange(FakeClient(now=clock.now, levels=None)),
                       "book_source": rest_books(), "capture_clock": clock, "io_manager": MongoIOManager(mongo=mongo)})
    assert result.success
    db = mongo.get_store().database
    levels = {}
    for snapshot in db.order_book_snapshots.find({"minute": MINUTE}):
        stored = db.order_book_features.find_one({"symbol": snapshot["symbol"], "minute": MINUTE})
        assert stored["captured_at"] == snapshot["captured_at"]
        levels[snapshot["symbol"]] = (stored["bid_levels"], stored["ask_levels"])
        for field, expected in independent_features(snapshot).items():
            actual = stored[field]
            if isinstance(expected, float):
                assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12), (snapshot["symbol"], field)
            else:
                assert actual == expected, (snapshot["symbol"], field)
    assert levels["NKNUSDT"] == (609, 1000)
    assert levels["RUNEEUR"] == (221, 468)
