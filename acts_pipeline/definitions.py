"""The ACTS code location: `dagster dev -m acts_pipeline.definitions`. Wiring only."""

from dagster import Definitions, in_process_executor

from acts_pipeline.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.capture import CaptureClock
from acts_pipeline.exchange import BinanceExchange
from acts_pipeline.sensors import minute_sensor
from acts_pipeline.storage import MongoIOManager, MongoResource

defs = Definitions(
    assets=[order_book_snapshot, order_book_features, klines_1m],
    sensors=[minute_sensor],
    resources={
        "exchange": BinanceExchange(),
        "capture_clock": CaptureClock(),
        "io_manager": MongoIOManager(mongo=MongoResource()),
    },
    # One process per run, steps in priority order inside it: the minute run is small, and a
    # process per step would cost seconds of start-up before the snapshot.
    executor=in_process_executor,
)
