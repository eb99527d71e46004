"""`minute_sensor`: one run per minute for every tracked symbol, requested before the close;
`klines_catch_up_sensor`: the klines the minute runs did not fetch.

The daemon evaluates `minute_sensor` every few seconds. Once the current minute is within
`RUN_LEAD` of its close, the sensor requests that minute's run (snapshot and features of every
registered symbol, and their kline while the request weight allows it: `klines_budget`).
Requesting ahead of the boundary lets the queue and the run's process start-up (seconds) happen
while the minute is still open; the snapshot step then sleeps until the close and fetches at
once. The run key is the minute, so however many ticks see the same minute, it runs once. A
minute whose close has passed is not requested: its book is gone.
"""

import json
from collections.abc import Iterable


from datetime import UTC, datetime, timedelta

from dagster import (
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS
from acts_pipeline.core.errors import ExchangeError
from acts_pipeline.exchange import BinanceExchange, depth_weight
from acts_pipeline.orchestration.klines_budget import KLINES_BATCH_MINUTES, klines_in_minute_run
from acts_pipeline.core.cells import Cell, floor_minute, format_minute, minute_close
from acts_pipeline.orchestration.partitions import minute_range_tags, minute_window_start, symbol_partitions
from acts_pipeline.core.quality import coverage
from acts_pipeline.storage.client import StorageError
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline.storage.collections import KLINES_1M, ORDER_BOOK_SNAPSHOTS
from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.storage.io_manager import MongoResource
from acts_pipeline.orchestration.symbol_watch import WatchState, watch
from acts_pipeline.orchestration.symbols import InitialSymbols, SymbolError, check_symbols, registered_symbols

#: Request a minute's run this long before it closes (measured: ticks every 5 to 10 s, queue to
#: start 2 to 6 s), so the run is up and waiting when the minute closes.
RUN_LEAD = timedelta(seconds=30)
MINUTE_ASSETS = [order_book_snapshot, order_book_features, klines_1m]
#: Run monitoring fails a sensor's run still going after 30 minutes (a minute run takes under 5 even
#: when it waits out a database outage): a hung run must not hold a slot of the run queue. The
#: instance's own limit (`dagster.yaml`, 6 hours) is for the long runs launched from the UI, such as
#: a klines_history backfill of many symbols, paced over hours by the weight budget.
SENSOR_RUN_TAGS = {"dagster/max_runtime": "1800"}


def klines_ride_along(symbols: int, depth_limit: int) -> bool:
    """Whether the minute run fetches the minute's klines too, with books of `depth_limit`
    levels (see `klines_budget`)."""
    return klines_in_minute_run(symbols, depth_weight(depth_limit))


def minute_run_request(minute: datetime, symbols: list[str], depth_limit: int) -> RunRequest:
    """The run of `minute` over every symbol (in registration order), whose books have
    `depth_limit` levels (the exchange resource's `levels()`)."""
    key = format_minute(minute)
    assets = (MINUTE_ASSETS if klines_ride_along(len(symbols), depth_limit)
              else [order_book_snapshot, order_book_features])
    return RunRequest(
        run_key=key,
        asset_selection=[a.key for a in assets],
        tags={**minute_range_tags(minute, symbols), **PER_CELL_EVENTS_TAGS, **SENSOR_RUN_TAGS,
              "acts/minute": key, "acts/symbols": str(len(symbols))},
    )


def symbols_to_collect(context: SensorEvaluationContext, exchange: BinanceExchange, initial: InitialSymbols,
                       state: WatchState):
    """The registered symbols, in registration order, the request that registers more, and the
    symbols it registers. On the first start (`state.initial_registered` not yet) ACTS_SYMBOLS not
    registered yet are checked against the exchange and registered, whatever was registered
    before: a symbol added on the command line before the sensor's first tick must not stand in for
    them (the production e2e test did that, and the backfill of ACTS_SYMBOLS was refused). A
    `SkipReason` if they cannot be checked or are refused and nothing is registered to collect."""
    symbols = registered_symbols(context.instance)
    if state.initial_registered:
        return symbols, [], []
    wanted = [s for s in initial.parsed() if s not in symbols]
    if not wanted:
        state.initial_registered = True
        return symbols, [], []
    try:
        checked = check_symbols(exchange.get_client(), wanted)
    except (ExchangeError, SymbolError) as exc:
        if not symbols:
            return SkipReason(f"cannot register the initial symbols from ACTS_SYMBOLS: {exc}")
        if isinstance(exc, SymbolError):  # refused: said once, the registered symbols are collected
            state.initial_registered = True
            context.log.error(f"the initial symbols from ACTS_SYMBOLS are not registered: {exc}")
        else:  # the exchange did not answer: tried again next tick
            context.log.warning(f"cannot check the initial symbols from ACTS_SYMBOLS yet ({exc}); collecting "
                                f"{', '.join(symbols)} meanwhile")
        return symbols, [], []
    state.initial_registered = True
    context.log.info(f"registering initial symbols {', '.join(checked)}")
    return [*symbols, *checked], [symbol_partitions.build_add_request(checked)], checked


def due_minute(now: datetime) -> datetime | None:
    """The minute whose run should be requested at `now`, if any."""
    minute = floor_minute(now)
    return minute if minute_close(minute) - now <= RUN_LEAD else None


@sensor(
    name="minute_sensor",
    # By key: the code location partitions these assets by the live window (`definitions.py`).
    target=[a.key for a in MINUTE_ASSETS],
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests one run per minute (all symbols the exchange accepted), 30 s before the "
    "minute closes; registers ACTS_SYMBOLS on first start; checks every symbol added (from the UI "
    "too) against exchangeInfo before collecting it, removes refused ones, and reports both on "
    "tracked_symbols.",
)
def minute_sensor(context: SensorEvaluationContext, exchange: BinanceExchange, initial_symbols: InitialSymbols):
    state = WatchState.from_cursor(context.cursor)
    registration = symbols_to_collect(context, exchange, initial_symbols, state)
    if isinstance(registration, SkipReason):
        return registration
    symbols, partition_requests, registered_now = registration
    now = datetime.now(UTC)
    state.accept(registered_now, now)  # ACTS_SYMBOLS, checked as they were registered
    minute = due_minute(now)
    outcome = watch(
        symbols, state, now,
        # Not on the tick that requests the minute's run: an exchange that answers slowly must
        # not delay it. New symbols are checked in the first half of the minute.
        listing=None if minute else exchange.get_client().exchange_info,
        stored=lambda symbol, at: snapshot_stored(context.instance, symbol, at))
    for level, message in outcome.messages:
        getattr(context.log, level)(message)
    if outcome.remove:
        partition_requests = [*partition_requests, symbol_partitions.build_delete_request(list(outcome.remove))]
    run_requests = []
    if minute is not None and outcome.collect:
        run_requests.append(minute_run_request(minute, outcome.collect, exchange.levels()))
        state.requested(minute, outcome.collect)
    context.update_cursor(state.to_cursor())
    if not (run_requests or partition_requests or outcome.asset_events):
        waiting = [s for s in symbols if s not in outcome.collect]
        return SkipReason("the current minute's run is requested 30 s before its close"
                          + (f"; waiting for the exchange check: {', '.join(waiting)}" if waiting else ""))
    return SensorResult(run_requests=run_requests, dynamic_partitions_requests=partition_requests,
                        asset_events=outcome.asset_events)


def live_window_start(context: SensorEvaluationContext) -> datetime:
    """The first minute of the live window: the minute partitions of the code location the sensor
    was loaded with (the partitions in code, from `HISTORY_START`, when it has none, as in a test)."""
    repository = context.repository_def
    assets_def = repository.assets_defs_by_key.get(order_book_snapshot.key) if repository else None
    return minute_window_start(assets_def.partitions_def if assets_def else None)


def snapshot_stored(instance: DagsterInstance, symbol: str, minute: datetime) -> bool:
    """Whether a run recorded the snapshot of (minute, symbol) as materialized."""
    key = str(Cell(minute, symbol).partition_key)
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=order_book_snapshot.key, asset_partitions=[key]), limit=1).records
    return bool(records)


#: How far back klines gaps (downtime, failed minutes) are filled automatically: here, within the
#: live partition window (its minutes are the only keys a klines_1m run can take); before the
#: window, by `klines_history_catch_up_sensor` through `klines_history`.
KLINES_CATCH_UP_WINDOW = timedelta(hours=24)
#: While the minute runs fetch klines, a minute this recent is still theirs to fetch.
KLINES_CATCH_UP_MARGIN = timedelta(minutes=2)
#: A candle is fetched this long after its close at the earliest.
KLINES_SETTLE = timedelta(seconds=30)
#: Each tick reads the klines stored since the last minute known complete, at most this far back;
#: the whole catch-up window is read once per `FULL_SCAN_EVERY` (500 symbols x 24 h is 720,000
#: documents, too many to read every minute).
RECENT_SCAN = timedelta(hours=2)
FULL_SCAN_EVERY = timedelta(hours=1)
#: The tag of the catch-up runs.
CATCH_UP_TAG = "acts/catch_up"
#: Runs that hold their minutes: queued or under way.
IN_PROGRESS = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
               DagsterRunStatus.STARTED]
#: One catch-up run covers at most this many minutes (one klines request per symbol).
KLINES_CATCH_UP_MAX_MINUTES = 1000


def missing_span(tracked_since: dict[str, datetime], stored: dict[str, set[datetime]], start: datetime,
                 end: datetime) -> tuple[datetime, datetime] | None:
    """The first and last minute in `[start, end)` that some tracked symbol has no kline for
    (each symbol counted from its first collected minute), or None."""
    missing = [m for row in coverage(tracked_since, stored, start, end) for m in row.missing_minutes]
    return (min(missing), max(missing)) if missing else None


def klines_gap(tracked_since: dict[str, datetime], stored: dict[str, set[datetime]], start: datetime,
               end: datetime) -> tuple[datetime, datetime] | None:
    """`missing_span`, capped to a run's worth of minutes."""
    span = missing_span(tracked_since, stored, start, end)
    if span is None:
        return None
    first, last = span
    return first, min(last, first + timedelta(minutes=KLINES_CATCH_UP_MAX_MINUTES - 1))


def retry_slot(now: datetime) -> str:
    """The part of a catch-up's run key that changes every 10 minutes: a run that failed is
    requested again in the next slot, and not twice in one."""
    return f"{now:%Y-%m-%d-%H}:{now.minute // 10}"


def scan_start(cursor: dict, now: datetime, window_start: datetime) -> tuple[datetime, bool]:
    """Where a catch-up sensor's tick starts reading what is stored (after the last minute its
    cursor found complete; the whole window once an hour), and whether that is a full scan."""
    full_scan_at = cursor.get("full_scan_at")
    if full_scan_at is None or now - datetime.fromisoformat(full_scan_at) >= FULL_SCAN_EVERY:
        return window_start, True
    complete_through = cursor.get("complete_through")
    start = now - RECENT_SCAN
    if complete_through is not None:
        start = max(start, datetime.fromisoformat(complete_through) + timedelta(minutes=1))
    return max(floor_minute(start), window_start), False


def klines_scan_end(now: datetime, ride_along: bool) -> datetime:
    """The end (exclusive) of the minutes the sensor fetches klines for: while klines ride along
    in the minute runs, the last minutes are theirs; otherwise every settled candle."""
    return floor_minute(now - (KLINES_CATCH_UP_MARGIN if ride_along else KLINES_SETTLE))


def klines_due(first_missing: datetime, now: datetime, ride_along: bool) -> bool:
    """Whether a gap starting at `first_missing` should be fetched now: at once if the minute
    runs fetch klines (it is a real gap), else once a batch's worth of minutes has closed."""
    return ride_along or minute_close(first_missing) + timedelta(minutes=KLINES_BATCH_MINUTES) <= now


@sensor(
    name="klines_catch_up_sensor",
    target=[klines_1m.key],
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Fetches the klines the minute runs did not, in one klines_1m run over the gap for "
    "all symbols: downtime and failed minutes within the live partition window (klines_history_catch_up_sensor "
    "takes those that leave it still missing, up to 24 h back), and, beyond the symbols whose "
    "klines ride along in the minute run, every symbol's klines in batches of 5 minutes.",
)
def klines_catch_up_sensor(context: SensorEvaluationContext, mongo: MongoResource, exchange: BinanceExchange):
    symbols = registered_symbols(context.instance)
    if not symbols:
        return SkipReason("no symbols registered yet")
    now = datetime.now(UTC)
    ride_along = klines_ride_along(len(symbols), exchange.levels())
    end = klines_scan_end(now, ride_along)
    window_start = max(floor_minute(now) - KLINES_CATCH_UP_WINDOW, live_window_start(context))
    cursor = json.loads(context.cursor) if context.cursor else {}
    start, full = scan_start(cursor, now, window_start)
    try:
        store = mongo.get_store()
        tracked = {s: since for s, since in store.tracked_since().items() if s in symbols}
        gap = klines_gap(tracked, store.stored_minutes(KLINES_1M, start, end), start, end)
    except StorageError as exc:
        # An outage is a skipped tick, not a failed one.
        return SkipReason(f"MongoDB unavailable, klines gaps not checked: {exc}")
    complete_through = (gap[0] if gap else end) - timedelta(minutes=1)
    cursor = {**cursor, "complete_through": complete_through.isoformat()}
    if full:
        cursor["full_scan_at"] = now.isoformat()
    context.update_cursor(json.dumps(cursor))
    if gap is None:
        return SkipReason(f"no kline missing since {start:%Y-%m-%d %H:%M}")
    first, last = gap
    # Only symbols a minute run has collected: one just added is not checked against the
    # exchange yet, and a refused one is never collected, so neither is asked for.
    collected = [s for s in symbols if s in tracked]
    if not klines_due(first, now, ride_along):
        return SkipReason(f"klines from {format_minute(first)} are fetched once due")
    # One catch-up at a time: a batch of 500 symbols takes minutes (paced under the weight
    # budget), and a second run over the same minutes would fetch them all again.
    running = context.instance.get_runs(
        filters=RunsFilter(tags={CATCH_UP_TAG: "klines"}, statuses=IN_PROGRESS), limit=1)
    if running:
        return SkipReason(f"klines catch-up run {running[0].run_id} is still in progress")
    # The run key changes every 10 minutes, so a catch-up that failed is tried again later.
    return RunRequest(
        run_key=f"klines-catch-up:{format_minute(first)}..{format_minute(last)}@{retry_slot(now)}",
        asset_selection=[klines_1m.key],
        tags={**minute_range_tags(first, collected, last), **PER_CELL_EVENTS_TAGS, **SENSOR_RUN_TAGS, CATCH_UP_TAG: "klines"},
    )


#: How far back the snapshot catch-up looks for minutes the recorder kept and the runs missed (a
#: daemon restart, an outage); older ones are backfilled from the UI, within the recorder's retention.
SNAPSHOT_CATCH_UP_WINDOW = timedelta(minutes=60)
#: A minute this recent is still the minute run's to store.
SNAPSHOT_CATCH_UP_MARGIN = timedelta(minutes=2)


def snapshot_gap(recorded: dict[str, set[datetime]], stored: dict[str, set[datetime]],
                 symbols: list[str], withdrawn: Iterable[datetime] = ()) -> tuple[datetime, datetime] | None:
    """The first run of consecutive minutes in which some symbol has a boundary book the recorder
    vouched for and no stored snapshot, or a stored snapshot whose book the recorder withdrew
    (`withdrawn`: those minutes): (first, last), or None."""
    missing = sorted({m for s in symbols for m in recorded.get(s, set()) - stored.get(s, set())} | set(withdrawn))
    if not missing:
        return None
    last = missing[0]
    for minute in missing[1:]:
        if minute != last + timedelta(minutes=1):
            break
        last = minute
    return missing[0], last


@sensor(
    name="snapshot_catch_up_sensor",
    target=[order_book_snapshot.key, order_book_features.key],
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="With ACTS_BOOK_SOURCE=stream: stores the snapshots (and features) of minutes the stream "
    "recorder kept but no minute run stored (a daemon restart, an outage) over the last hour, in one run "
    "over the gap, from the recorder's boundary books; the same run deletes stored books the recorder "
    "withdrew afterwards (it learnt they may be wrong). Older minutes are backfilled from the UI.",
)
def snapshot_catch_up_sensor(context: SensorEvaluationContext, book_source: BookSource):
    if not book_source.streams():
        return SkipReason("REST design (ACTS_BOOK_SOURCE=rest): a missed minute's book cannot be taken again")
    symbols = registered_symbols(context.instance)
    if not symbols:
        return SkipReason("no symbols registered yet")
    now = datetime.now(UTC)
    end = floor_minute(now - SNAPSHOT_CATCH_UP_MARGIN)
    window_start = max(end - SNAPSHOT_CATCH_UP_WINDOW, live_window_start(context))
    # Recorded books against stored snapshots from after the last minute found complete (the
    # whole hour once an hour): an hour of 500 symbols is 30,000 cells to read every minute.
    # Withdrawn books are looked for over the whole hour (a revision can come minutes later):
    # only the revisions are read, a few small documents.
    cursor = json.loads(context.cursor) if context.cursor else {}
    start, full = scan_start(cursor, now, window_start)
    try:
        store = book_source.mongo.get_store()
        books = BoundaryBooks(store)
        withdrawn = [Cell(minute, symbol) for symbol, minute in books.withdrawn(window_start, end) if symbol in symbols]
        stale = {cell.minute for cell in book_source.stored_from_stream(withdrawn)}
        gap = snapshot_gap(books.usable_minutes(start, end),
                           store.stored_minutes(ORDER_BOOK_SNAPSHOTS, start, end), symbols, stale)
    except StorageError as exc:
        return SkipReason(f"MongoDB unavailable, snapshot gaps not checked: {exc}")
    cursor = {**cursor, "complete_through": ((gap[0] if gap else end) - timedelta(minutes=1)).isoformat()}
    if full:
        cursor["full_scan_at"] = now.isoformat()
    context.update_cursor(json.dumps(cursor))
    if gap is None:
        return SkipReason(f"no minute since {start:%Y-%m-%d %H:%M} has a recorded book and no snapshot, "
                          "nor a stored book the recorder withdrew")
    running = context.instance.get_runs(
        filters=RunsFilter(tags={CATCH_UP_TAG: "snapshots"}, statuses=IN_PROGRESS), limit=1)
    if running:
        return SkipReason(f"snapshot catch-up run {running[0].run_id} is still in progress")
    first, last = gap
    return RunRequest(
        run_key=f"snapshot-catch-up:{format_minute(first)}..{format_minute(last)}@{retry_slot(now)}",
        asset_selection=[order_book_snapshot.key, order_book_features.key],
        tags={**minute_range_tags(first, symbols, last), **PER_CELL_EVENTS_TAGS, **SENSOR_RUN_TAGS, CATCH_UP_TAG: "snapshots"},
    )
