"""One tick of `klines_catch_up_sensor` against a real instance, with the code location's assets
and every resource they need swapped for fakes except `mongo`, which the test chooses."""

from dagster import Definitions, build_sensor_context

from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.orchestration.sensors import klines_catch_up_sensor
from acts_pipeline.storage import MongoIOManager
from acts_pipeline_tests.fakes import rest_books, FakeClient, fake_exchange


def klines_catch_up_tick(instance, mongo, cursor=None, depth_limit=100):
    """The sensor's result and the cursor it left, books being `depth_limit` levels a side."""
    exchange = fake_exchange(FakeClient(now=None), depth_limit=depth_limit)
    defs = Definitions(assets=[order_book_snapshot, order_book_features, klines_1m], sensors=[klines_catch_up_sensor],
                       resources={"mongo": mongo, "io_manager": MongoIOManager(mongo=mongo),
                                  "exchange": exchange, "book_source": rest_books(), "capture_clock": CaptureClock()})
    with build_sensor_context(instance=instance, definitions=defs, resources={"mongo": mongo, "exchange": exchange},
                              cursor=cursor) as context:
        return klines_catch_up_sensor(context), context.cursor
