"""The ACTS code location: `dagster dev -m acts_pipeline.definitions`. Wiring only."""

from dagster import Definitions, in_process_executor

from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.orchestration.checks import features_are_in_range, snapshot_books_are_valid, snapshots_are_complete
from acts_pipeline.exchange import BinanceExchange
from acts_pipeline.orchestration.retention import prune_run_history, prune_run_history_hourly
from acts_pipeline.orchestration.sensors import klines_catch_up_sensor, minute_sensor
from acts_pipeline.storage.io_manager import MongoIOManager, MongoResource
from acts_pipeline.orchestration.symbol_watch import symbols_are_listed, tracked_symbols

mongo = MongoResource()

defs = Definitions(
    assets=[order_book_snapshot, order_book_features, klines_1m, tracked_symbols],
    asset_checks=[snapshot_books_are_valid, features_are_in_range, snapshots_are_complete, symbols_are_listed],
    sensors=[minute_sensor, klines_catch_up_sensor],
    jobs=[prune_run_history],
    schedules=[prune_run_history_hourly],
    resources={
        "exchange": BinanceExchange(),
        "capture_clock": CaptureClock(),
        "mongo": mongo,
        "io_manager": MongoIOManager(mongo=mongo),
    },
    # One process per run, steps in priority order inside it: the minute run is small, and a
    # process per step would cost seconds of start-up before the snapshot.
    executor=in_process_executor,
)
