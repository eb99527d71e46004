"""`klines_history_catch_up_sensor`: klines still missing when their minutes leave the live window.

`klines_catch_up_sensor` fills klines gaps through `klines_1m`, whose minute partitions cover the
live window only (`ACTS_PARTITION_WINDOW_HOURS`: by default the hour before the current one, and
this one). A gap it could not fill before the window moved past it (a daemon down for longer than
the window, the exchange failing for an hour) would otherwise wait for someone to backfill
`klines_history` by hand.

This sensor watches the window's start (a tick every 5 minutes). When the hourly code reload
moves it, the sensor reads the klines of the minutes that just left the window (one read of an
hour's documents, once an hour; after an outage, of the minutes missed, up to the catch-up's 24
hours, which are mostly absent and cheap to read). If some collected symbol has no kline in
them, it requests one `klines_history` run over the missing span for every collected symbol:
the run's tags (`KLINES_SPAN_FROM_TAG`, `KLINES_SPAN_TO_TAG`) make it fetch those minutes only,
one request per symbol per 1000 minutes, paced under the weight budget, and report each month
as an observation of what it stored. The
span stays owed (in the cursor) until a run over it succeeds; one that fails is requested again
every 10 minutes, and a span wholly older than 24 hours is dropped (it is the UI's to backfill).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from acts_pipeline.core.cells import floor_minute, format_minute
from acts_pipeline.orchestration.history_klines import (
    KLINES_SPAN_FROM_TAG,
    KLINES_SPAN_TO_TAG,
    MONTH_FORMAT,
    klines_history,
)
from acts_pipeline.orchestration.partitions import RANGE_END_TAG, RANGE_START_TAG
from acts_pipeline.orchestration.sensors import (
    CATCH_UP_TAG,
    IN_PROGRESS,
    KLINES_CATCH_UP_WINDOW,
    SENSOR_RUN_TAGS,
    live_window_start,
    missing_span,
    retry_slot,
)
from acts_pipeline.orchestration.symbols import registered_symbols
from acts_pipeline.storage.client import StorageError
from acts_pipeline.storage.collections import KLINES_1M
from acts_pipeline.storage.io_manager import MongoResource

MINUTE = timedelta(minutes=1)


def merged(owed: tuple[datetime, datetime] | None,
           new: tuple[datetime, datetime] | None) -> tuple[datetime, datetime] | None:
    """One span over both (the minutes between are fetched again: same klines, replaced)."""
    spans = [s for s in (owed, new) if s is not None]
    return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None


def span_request(first: datetime, last: datetime, symbols: list[str], now: datetime) -> RunRequest:
    """The `klines_history` run over `[first, last]` for `symbols` (registration order: Dagster
    resolves the range of the symbol dimension in that order). The run key changes every 10
    minutes, so a run that failed is tried again later."""
    first_month, last_month = (m.replace(day=1, hour=0, minute=0).strftime(MONTH_FORMAT) for m in (first, last))
    return RunRequest(
        run_key=f"klines-history-catch-up:{format_minute(first)}..{format_minute(last)}@{retry_slot(now)}",
        asset_selection=[klines_history.key],
        tags={RANGE_START_TAG: f"{first_month}|{symbols[0]}", RANGE_END_TAG: f"{last_month}|{symbols[-1]}",
              KLINES_SPAN_FROM_TAG: format_minute(first), KLINES_SPAN_TO_TAG: format_minute(last),
              **SENSOR_RUN_TAGS, CATCH_UP_TAG: "klines"},
    )


@sensor(
    name="klines_history_catch_up_sensor",
    target=[klines_history.key],
    # The window moves once an hour, and an owed span is requested again every 10 minutes: a tick
    # every 5 minutes is enough, and costs the code server and the daemon a fifth of one a minute.
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="When the live partition window moves (hourly), reads the klines of the minutes that left it; if "
    "some are missing (a daemon down for hours, a gap klines_catch_up_sensor could not fill in time), one "
    "klines_history run fetches that span only, for every collected symbol, paced under the weight budget. "
    "Up to 24 h back; older gaps are backfilled from the UI.",
)
def klines_history_catch_up_sensor(context: SensorEvaluationContext, mongo: MongoResource):
    symbols = registered_symbols(context.instance)
    if not symbols:
        return SkipReason("no symbols registered yet")
    now = datetime.now(UTC)
    reach = floor_minute(now) - KLINES_CATCH_UP_WINDOW
    window_start = live_window_start(context)
    cursor = json.loads(context.cursor) if context.cursor else {}
    seen = datetime.fromisoformat(cursor["window_start"]) if "window_start" in cursor else None
    owed = tuple(map(datetime.fromisoformat, cursor["owed"])) if cursor.get("owed") else None
    try:
        store = mongo.get_store()
        tracked = {s: since for s, since in store.tracked_since().items() if s in symbols}
        if seen is not None and max(seen, reach) < window_start:
            # The minutes that left the window since the last look.
            start = max(seen, reach)
            owed = merged(owed, missing_span(tracked, store.stored_minutes(KLINES_1M, start, window_start),
                                             start, window_start))
    except StorageError as exc:
        # An outage is a skipped tick: the cursor stays, and the next tick reads the same minutes.
        return SkipReason(f"MongoDB unavailable, klines before the live window not checked: {exc}")
    if owed is not None and owed[1] < reach:
        context.log.info(f"klines of {format_minute(owed[0])}..{format_minute(owed[1])} are older than "
                         f"{KLINES_CATCH_UP_WINDOW}: no longer caught up (backfill klines_history from the UI)")
        owed = None
    collected = [s for s in symbols if s in tracked]
    request = None
    if owed is not None and collected:
        span_tags = {KLINES_SPAN_FROM_TAG: format_minute(owed[0]), KLINES_SPAN_TO_TAG: format_minute(owed[1])}
        [last_run] = context.instance.get_runs(filters=RunsFilter(tags={CATCH_UP_TAG: "klines", **span_tags}),
                                               limit=1) or [None]
        if last_run is not None and last_run.status == DagsterRunStatus.SUCCESS:
            owed = None  # done
        else:
            request = span_request(owed[0], owed[1], collected, now)
    context.update_cursor(json.dumps({"window_start": window_start.isoformat(),
                                      "owed": [owed[0].isoformat(), owed[1].isoformat()] if owed else None}))
    if request is None:
        return SkipReason(f"no kline owed before the live window (it starts {window_start:%Y-%m-%d %H:%M})")
    # One klines catch-up at a time (this one or klines_catch_up_sensor's): they share the weight budget.
    running = context.instance.get_runs(filters=RunsFilter(tags={CATCH_UP_TAG: "klines"}, statuses=IN_PROGRESS),
                                        limit=1)
    if running:
        return SkipReason(f"klines catch-up run {running[0].run_id} is still in progress")
    return request
