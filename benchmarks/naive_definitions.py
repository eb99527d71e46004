"""The naive design, for `benchmarks/minute_collection.py --per-symbol-runs` only: the product's
own assets and resources, but a sensor that requests one Dagster run per (minute, symbol)
instead of one run per minute. Same 30 s lead, same run-key dedup (one key per cell), same
first-start registration of `ACTS_SYMBOLS`. Loaded as a separate code location by the
benchmark's temporary workspace.yaml (`python_file:`); the product is not changed.
"""

from datetime import UTC, datetime

from dagster import (
    definitions,
    DefaultSensorStatus,
    Definitions,
    MultiPartitionKey,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

import acts_pipeline.definitions as product  # the module: a second Definitions at module scope is refused
from acts_pipeline.exchange import BinanceExchange
from acts_pipeline.core.cells import format_minute
from acts_pipeline.orchestration.sensors import MINUTE_ASSETS, due_minute, symbols_to_collect
from acts_pipeline.orchestration.symbols import InitialSymbols


@sensor(
    name="minute_sensor_per_symbol",
    target=MINUTE_ASSETS,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Benchmark only: one run per (minute, symbol), 30 s before the minute closes.",
)
def minute_sensor_per_symbol(context: SensorEvaluationContext, exchange: BinanceExchange,
                             initial_symbols: InitialSymbols):
    registration = symbols_to_collect(context, exchange, initial_symbols)
    if isinstance(registration, SkipReason):
        return registration
    symbols, partition_requests = registration
    minute = due_minute(datetime.now(UTC))
    if minute is None:
        if partition_requests:
            return SensorResult(dynamic_partitions_requests=partition_requests)
        return SkipReason("runs are requested 30 s before the close")
    key = format_minute(minute)
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"{key}|{symbol}",
                asset_selection=[a.key for a in MINUTE_ASSETS],
                partition_key=MultiPartitionKey({"minute": key, "symbol": symbol}),
                tags={"acts/minute": key, "acts/symbols": "1"},
            )
            for symbol in symbols
        ],
        dynamic_partitions_requests=partition_requests,
    )


@definitions
def defs() -> Definitions:
    """Everything of the product's code location (assets, asset checks, resources bound to the
    environment, executor, jobs, schedules) but its sensors, replaced by the per-symbol one."""
    product_defs = product.defs()
    return Definitions(
        assets=list(product_defs.assets or []),
        asset_checks=list(product_defs.asset_checks or []),
        jobs=list(product_defs.jobs or []),
        schedules=list(product_defs.schedules or []),
        sensors=[minute_sensor_per_symbol],
        resources=dict(product_defs.resources or {}),
        executor=product_defs.executor,
    )
