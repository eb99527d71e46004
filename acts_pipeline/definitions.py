"""The ACTS code location: `dagster dev -m acts_pipeline.definitions`. Wiring only.

A `@definitions` function: Dagster calls it when it loads the code location, which is when the
resources are bound to the environment (`orchestration/environment.py`), the minute assets and
their checks are narrowed to the live window (`ACTS_PARTITION_WINDOW_HOURS`; see
`orchestration/partitions.py`), and a bad setting stops the load with its variable's name.
Importing this module reads nothing.
"""

from datetime import UTC, datetime

from dagster import Definitions, definitions, in_process_executor

from acts_pipeline import settings

from acts_pipeline.orchestration import archive_assets, coverage_assets, history_assets, symbol_coverage
from acts_pipeline.orchestration.alerts import alert_sensor
from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.orchestration.checks import minute_checks
from acts_pipeline.orchestration.environment import resources_from_environment
from acts_pipeline.orchestration.klines_history_catch_up import klines_history_catch_up_sensor
from acts_pipeline.orchestration.partitions import live_minute_symbol_partitions, with_partitions
from acts_pipeline.orchestration.retention import prune_run_history, prune_run_history_hourly
from acts_pipeline.orchestration.sensors import klines_catch_up_sensor, minute_sensor, snapshot_catch_up_sensor
from acts_pipeline.orchestration.symbol_watch import symbols_are_listed, tracked_symbols


@definitions
def defs() -> Definitions:
    resources = resources_from_environment()  # checks every setting first
    live = live_minute_symbol_partitions(settings.partition_window_hours(), datetime.now(UTC))
    return Definitions(
        assets=[*(with_partitions(a, live) for a in (order_book_snapshot, order_book_features, klines_1m)),
                tracked_symbols,
                # beyond the live hours: days and months, never reloaded (orchestration/history_partitions.py)
                *coverage_assets.ASSETS, *symbol_coverage.ASSETS, *history_assets.ASSETS, *archive_assets.ASSETS],
        asset_checks=[*minute_checks(live), symbols_are_listed],
        sensors=[minute_sensor, klines_catch_up_sensor, klines_history_catch_up_sensor, snapshot_catch_up_sensor,
                 alert_sensor],
        jobs=[prune_run_history, *coverage_assets.JOBS, *archive_assets.JOBS],
        schedules=[prune_run_history_hourly, *coverage_assets.SCHEDULES, *symbol_coverage.SCHEDULES,
                   *archive_assets.SCHEDULES, *history_assets.SCHEDULES],
        resources=resources,
        # One process per run, steps in priority order inside it: the minute run is small, and a
        # process per step would cost seconds of start-up before the snapshot.
        executor=in_process_executor,
    )
