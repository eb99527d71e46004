"""`minute_sensor`: one run per minute for every tracked symbol, requested before the close.

The daemon evaluates the sensor every few seconds. Once the current minute is within
`RUN_LEAD` of its close, the sensor requests that minute's run (snapshot, features and kline of
every registered symbol). Requesting ahead of the boundary lets the queue and the run's process
start-up (seconds) happen while the minute is still open; the snapshot step then sleeps until
the close and fetches at once. The run key is the minute, so however many ticks see the same
minute, it runs once. A minute whose close has passed is not requested: its book is gone.
"""


from datetime import UTC, datetime, timedelta

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from acts_pipeline import settings
from acts_pipeline.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.cell_status import PER_CELL_EVENTS_TAGS
from acts_pipeline.errors import ExchangeError
from acts_pipeline.exchange import BinanceExchange
from acts_pipeline.partitions import (
    floor_minute,
    format_minute,
    minute_close,
    minute_partitions_start,
    minute_range_tags,
    symbol_partitions,
)
from acts_pipeline.quality import coverage
from acts_pipeline.storage import MongoResource, StorageError
from acts_pipeline.symbols import SymbolError, check_symbols, registered_symbols

#: Request a minute's run this long before it closes (measured: ticks every 5 to 10 s, queue to
#: start 2 to 6 s), so the run is up and waiting when the minute closes.
RUN_LEAD = timedelta(seconds=30)
MINUTE_ASSETS = [order_book_snapshot, order_book_features, klines_1m]


def minute_run_request(minute: datetime, symbols: list[str]) -> RunRequest:
    """The run of `minute` over every symbol (in registration order)."""
    key = format_minute(minute)
    return RunRequest(
        run_key=key,
        asset_selection=[a.key for a in MINUTE_ASSETS],
        tags={**minute_range_tags(minute, symbols), **PER_CELL_EVENTS_TAGS,
              "acts/minute": key, "acts/symbols": str(len(symbols))},
    )


def symbols_to_collect(context: SensorEvaluationContext, exchange: BinanceExchange):
    """The registered symbols, in registration order, and the request that registers them. On
    first start (none registered) they are ACTS_SYMBOLS, checked against the exchange; a
    `SkipReason` if those cannot be checked or are refused."""
    symbols = registered_symbols(context.instance)
    if symbols:
        return symbols, []
    try:
        symbols = check_symbols(exchange.get_client(), settings.initial_symbols())
    except (ExchangeError, SymbolError) as exc:
        return SkipReason(f"cannot register the initial symbols from ACTS_SYMBOLS: {exc}")
    context.log.info(f"registering initial symbols {', '.join(symbols)}")
    return symbols, [symbol_partitions.build_add_request(symbols)]


def due_minute(now: datetime) -> datetime | None:
    """The minute whose run should be requested at `now`, if any."""
    minute = floor_minute(now)
    return minute if minute_close(minute) - now <= RUN_LEAD else None


@sensor(
    name="minute_sensor",
    target=MINUTE_ASSETS,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests one run per minute (all symbols), 30 s before the minute closes; "
    "registers ACTS_SYMBOLS on first start.",
)
def minute_sensor(context: SensorEvaluationContext, exchange: BinanceExchange):
    registration = symbols_to_collect(context, exchange)
    if isinstance(registration, SkipReason):
        return registration
    symbols, partition_requests = registration
    minute = due_minute(datetime.now(UTC))
    if minute is None:
        if partition_requests:
            return SensorResult(dynamic_partitions_requests=partition_requests)
        return SkipReason("the current minute's run is requested 30 s before its close")
    return SensorResult(
        run_requests=[minute_run_request(minute, symbols)],
        dynamic_partitions_requests=partition_requests,
    )


#: How far back klines gaps (downtime, failed minutes) are filled automatically.
KLINES_CATCH_UP_WINDOW = timedelta(hours=24)
#: Minutes this recent are the minute run's to fetch, not the catch-up's.
KLINES_CATCH_UP_MARGIN = timedelta(minutes=2)
#: One catch-up run covers at most this many minutes (one klines request per symbol).
KLINES_CATCH_UP_MAX_MINUTES = 1000


def klines_gap(tracked_since: dict[str, datetime], stored: dict[str, set[datetime]], start: datetime,
               end: datetime) -> tuple[datetime, datetime] | None:
    """The first and last minute in `[start, end)` that some tracked symbol has no kline for,
    counting each symbol from its first collected minute; capped to a run's worth of minutes."""
    missing = [m for row in coverage(tracked_since, stored, start, end) for m in row.missing_minutes]
    if not missing:
        return None
    first = min(missing)
    last = min(max(missing), first + timedelta(minutes=KLINES_CATCH_UP_MAX_MINUTES - 1))
    return first, last


@sensor(
    name="klines_catch_up_sensor",
    target=[klines_1m],
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Fills missing klines of the last 24 h (downtime, failed minutes) with one "
    "klines_1m run over the gap for all symbols; klines, unlike books, can be fetched later.",
)
def klines_catch_up_sensor(context: SensorEvaluationContext, mongo: MongoResource):
    symbols = registered_symbols(context.instance)
    if not symbols:
        return SkipReason("no symbols registered yet")
    now = datetime.now(UTC)
    end = floor_minute(now - KLINES_CATCH_UP_MARGIN)
    start = max(end - KLINES_CATCH_UP_WINDOW, minute_partitions_start())
    try:
        store = mongo.get_store()
        tracked = {s: since for s, since in store.tracked_since().items() if s in symbols}
        gap = klines_gap(tracked, store.stored_minutes("klines_1m", start, end), start, end)
    except StorageError as exc:
        # An outage is a skipped tick, not a failed one.
        return SkipReason(f"MongoDB unavailable, klines gaps not checked: {exc}")
    if gap is None:
        return SkipReason(f"no kline missing since {start:%Y-%m-%d %H:%M}")
    first, last = gap
    # The run key changes every 10 minutes, so a catch-up that failed is tried again later.
    attempt = f"{now:%Y-%m-%d-%H}:{now.minute // 10}"
    return RunRequest(
        run_key=f"klines-catch-up:{format_minute(first)}..{format_minute(last)}@{attempt}",
        asset_selection=[klines_1m.key],
        tags={**minute_range_tags(first, symbols, last), **PER_CELL_EVENTS_TAGS, "acts/catch_up": "klines"},
    )
