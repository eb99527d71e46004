"""The ACTS code location: `dagster dev -m acts_pipeline.definitions`. Wiring only.

A `@definitions` function: Dagster calls it when it loads the code location, which is when the
resources are bound to the environment (`orchestration/environment.py`) and a bad setting stops
the load with its variable's name. Importing this module reads nothing.
"""

from dagster import Definitions, definitions, in_process_executor

from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.orchestration.checks import (
    features_are_in_range,
    snapshot_books_are_valid,
    snapshots_are_complete,
    stream_recorder_is_healthy,
)
from acts_pipeline.orchestration.environment import resources_from_environment
from acts_pipeline.orchestration.retention import prune_run_history, prune_run_history_hourly
from acts_pipeline.orchestration.sensors import klines_catch_up_sensor, minute_sensor, snapshot_catch_up_sensor
from acts_pipeline.orchestration.symbol_watch import symbols_are_listed, tracked_symbols


@definitions
def defs() -> Definitions:
    return Definitions(
        assets=[order_book_snapshot, order_book_features, klines_1m, tracked_symbols],
        asset_checks=[snapshot_books_are_valid, features_are_in_range, snapshots_are_complete, stream_recorder_is_healthy,
                      symbols_are_listed],
        sensors=[minute_sensor, klines_catch_up_sensor, snapshot_catch_up_sensor],
        jobs=[prune_run_history],
        schedules=[prune_run_history_hourly],
        resources=resources_from_environment(),
        # One process per run, steps in priority order inside it: the minute run is small, and a
        # process per step would cost seconds of start-up before the snapshot.
        executor=in_process_executor,
    )
