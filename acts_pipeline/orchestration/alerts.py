"""`alert_sensor`: a person hears about a problem of the platform within 2 minutes, through a
Slack-compatible webhook (`AlertWebhook`, `ACTS_ALERT_WEBHOOK_URL`), once per problem, with
reminders while it lasts and a message when it is over.

Every 30 s it looks at (`core/alert_problems.py` says which observations are problems):

- runs: the failures (RUN_FAILURE events) since its last look, and the latest finished run of
  every sensor and schedule of the code location;
- checks: the latest evaluation of every asset check;
- gaps: the (minute, symbol) cells of snapshots and features of the minutes closed since its last
  look, against the symbols tracked then (`symbol_registry`, as the completeness check counts);
  and, with the stream design, the stored books of minutes it had already looked at that the
  recorder withdrew afterwards and the catch-up run deleted (the live look found them stored);
- the stream recorder (`ACTS_BOOK_SOURCE=stream`): the status it stores every 5 s.

Then `core/alerting.py` decides what to say, and the messages go out; a message the webhook did
not take waits in the sensor's cursor for the next tick. The sensor only reads, requests no run,
and never raises: a webhook that is down, or a source it cannot read (said as a problem of its
own after a minute), leaves the minute runs as they are.

Without `ACTS_ALERT_WEBHOOK_URL` it does nothing, and says so once in its log.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dagster import (
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    RunStatusChangeRecordsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from acts_pipeline.core.alert_problems import (
    CheckOutcome,
    FailedRun,
    check_problem,
    gap_problem,
    recorder_problems,
    runs_problem,
    unreadable,
    withdrawn_problem,
)
from acts_pipeline.core.alerting import AlertState, Problem, evaluate
from acts_pipeline.core.cells import Cell, floor_minute, format_minute, parse_minute
from acts_pipeline.core.quality import coverage
from acts_pipeline.orchestration.alert_webhook import AlertDeliveryError, AlertWebhook
from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.orchestration.sensors import IN_PROGRESS, minute_sensor
from acts_pipeline.orchestration.symbols import registered_symbols
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline.storage.client import StorageError
from acts_pipeline.storage.collections import ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS
from acts_pipeline.storage.handlers import as_utc
from acts_pipeline.storage.io_manager import MongoResource

SENSOR_NAME = "alert_sensor"
TICK_SECONDS = 30
#: A minute's cells are looked for this long after its close: its run stores them within the
#: capture tolerance (10 s) and a few seconds of writes...
GAP_SETTLE = timedelta(seconds=30)
#: ... or, while that run is still under way, this long after its close at the latest (a stuck run
#: must not hide its gap), which with a tick every 30 s keeps a gap's alert within 2 minutes.
GAP_MAX_WAIT = timedelta(seconds=90)
#: After a pause (the daemon down, the sensor off), gaps are looked for this far back at most.
GAP_LOOKBACK = timedelta(minutes=60)
GAP_COLLECTIONS = (ORDER_BOOK_SNAPSHOTS, ORDER_BOOK_FEATURES)
#: On its first tick, the run failures of this recent past are counted.
FIRST_LOOK_BACK = timedelta(minutes=2)
#: Posting stops for the tick after this long (the rest waits for the next tick): the daemon's two
#: sensor threads (dagster.yaml) are shared with minute_sensor, which requests each minute's run 30 s
#: before its close and must not wait long for a thread.
POST_BUDGET_SECONDS = 6.0
#: The tags Dagster gives the runs a sensor or a schedule launched (retries keep them).
ORIGIN_TAGS = ("dagster/sensor_name", "dagster/schedule_name")
WILL_RETRY_TAG = "dagster/will_retry"
MINUTE_TAG = "acts/minute"
MINUTE = timedelta(minutes=1)


@dataclass
class Cursor:
    """What the sensor keeps between ticks: the alert state (with its outbox), how far gaps and
    run failures were looked at, the last delivery error (said once), whether "off" was said."""

    state: AlertState = field(default_factory=AlertState)
    checked_through: datetime | None = None
    failures_after: int | None = None
    delivery_error: str | None = None
    off_noted: bool = False
    #: withdrawn cells ("minute|symbol") already judged: said as deleted, or kept from REST
    withdrawn_seen: list[str] = field(default_factory=list)

    @classmethod
    def loads(cls, text: str | None) -> Cursor:
        data = json.loads(text) if text else {}
        through = data.get("checked_through")
        return cls(AlertState.from_json(data.get("alerts")), datetime.fromisoformat(through) if through else None,
                   data.get("failures_after"), data.get("delivery_error"), bool(data.get("off_noted")),
                   list(data.get("withdrawn_seen") or []))

    def dumps(self) -> str:
        return json.dumps({"alerts": self.state.to_json(), "failures_after": self.failures_after,
                           "checked_through": self.checked_through.isoformat() if self.checked_through else None,
                           "delivery_error": self.delivery_error, "off_noted": self.off_noted,
                           "withdrawn_seen": self.withdrawn_seen}, sort_keys=True)


@sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=TICK_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Posts to ACTS_ALERT_WEBHOOK_URL (Slack-compatible) within 2 minutes of a problem: a failed "
    "run of a sensor or schedule, a failed ERROR check (or day_is_complete), missing cells of the minutes just "
    "closed, a stopped, silent or out-of-sync stream recorder. One message per problem, a reminder every "
    "ACTS_ALERT_REMINDER_MINUTES while it lasts, and one when it is resolved. Off while the URL is unset.",
)
def alert_sensor(context: SensorEvaluationContext, alert_webhook: AlertWebhook, mongo: MongoResource,
                 book_source: BookSource):
    return alert_tick(context, alert_webhook, mongo, book_source, datetime.now(UTC))


def alert_tick(context: SensorEvaluationContext, webhook: AlertWebhook, mongo: MongoResource,
               book_source: BookSource, now: datetime) -> SkipReason:
    """One tick of `alert_sensor` at `now` (the sensor's body; tests give `now`)."""
    cursor = Cursor.loads(context.cursor)
    if not webhook.enabled():
        if not cursor.off_noted:
            context.log.info("alerts are off: ACTS_ALERT_WEBHOOK_URL is not set (set it to a Slack-compatible "
                             "incoming webhook to hear about failed runs, failed checks, gaps and the recorder)")
        context.update_cursor(Cursor(off_noted=True).dumps())
        return SkipReason("alerts are off: ACTS_ALERT_WEBHOOK_URL is not set")
    problems: list[Problem] = []
    unknown: set[str] = set()
    for source, look in (("run", lambda: _run_problems(context, cursor, now)),
                         ("check", lambda: _check_problems(context, unknown)),
                         ("gap", lambda: _gap_problems(context, mongo, book_source, cursor, now, unknown)),
                         ("recorder", lambda: _recorder_problems(context, book_source, now, unknown))):
        try:
            problems += look()
        except StorageError as exc:
            unknown.add(source)
            problems.append(unreadable("mongodb", "MongoDB", str(exc)))
        except Exception as exc:  # noqa: BLE001 - one source that cannot be read must not silence the others
            unknown.add(source)
            problems.append(unreadable(source, f"the {source} records", f"{type(exc).__name__}: {exc}"))
            context.log.warning(f"the alert sensor could not look at {source}s: {type(exc).__name__}: {exc}")
    state = evaluate(cursor.state, problems, now, webhook.policy(), unknown)
    cursor.state, error = _deliver(context, webhook, state)
    if error != cursor.delivery_error:
        if error:
            context.log.warning(f"alerts not delivered: {error}; {len(cursor.state.outbox)} waiting, retried every "
                                f"{TICK_SECONDS} s")
        else:
            context.log.info(f"alerts delivered again to {webhook.where()}")
    cursor.delivery_error = error
    context.update_cursor(cursor.dumps())
    ongoing = sorted(cursor.state.ongoing)
    waiting = len(cursor.state.outbox)
    return SkipReason((f"{len(ongoing)} ongoing: {', '.join(ongoing)}" if ongoing else "no problem")
                      + (f"; {waiting} messages waiting for the webhook" if waiting else ""))


def _deliver(context: SensorEvaluationContext, webhook: AlertWebhook,
             state: AlertState) -> tuple[AlertState, str | None]:
    """Posts the outbox in order until one message fails or the budget is spent."""
    deadline = time.monotonic() + POST_BUDGET_SECONDS
    sent = 0
    error = None
    for message in state.pending():
        try:
            webhook.post(message.payload(), deadline=deadline)
        except AlertDeliveryError as exc:
            error = str(exc)
            break
        sent += 1
        context.log.info(f"alert posted ({message.kind.value}, {message.key}): {message.text.splitlines()[0]}")
    return state.delivered(sent), error


# ---- runs ----------------------------------------------------------------------------------------

def _origin(tags: dict) -> str | None:
    return next((tags[t] for t in ORIGIN_TAGS if t in tags), None)


def _failed_run(run, failure_event=None) -> FailedRun:
    """A failed run (`DagsterRun`) and the error of its RUN_FAILURE event (the first failed step's,
    down to its root cause, else the run's own)."""
    error = ""
    if failure_event is not None:
        data = failure_event.dagster_event.job_failure_data if failure_event.dagster_event else None
        info = None
        if data is not None:
            step = data.first_step_failure_event
            info = step.step_failure_data.error if step is not None and step.step_failure_data else data.error
        while info is not None and info.cause is not None:
            info = info.cause
        error = info.message if info is not None else (failure_event.message or "")
    # "dagster._core.definitions.events.Failure: minute ... closed": the class by its own name
    error = re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", error.strip())
    return FailedRun(run.run_id, error or "no error recorded", run.tags.get(MINUTE_TAG),
                     run.tags.get(WILL_RETRY_TAG) == "true")


def _run_problems(context: SensorEvaluationContext, cursor: Cursor, now: datetime) -> list[Problem]:
    instance = context.instance
    if cursor.failures_after is None:
        records = instance.fetch_run_status_changes(RunStatusChangeRecordsFilter(
            DagsterEventType.RUN_FAILURE, after_timestamp=(now - FIRST_LOOK_BACK).timestamp()), limit=100,
            ascending=True).records
    else:
        records = instance.fetch_run_status_changes(RunStatusChangeRecordsFilter(
            DagsterEventType.RUN_FAILURE, after_storage_id=cursor.failures_after), limit=100, ascending=True).records
    failed: dict[tuple[str, str], list[FailedRun]] = defaultdict(list)
    for record in records:
        run = instance.get_run_by_id(record.event_log_entry.run_id)
        tag = next((t for t in ORIGIN_TAGS if run is not None and t in run.tags), None)
        if tag is not None:
            failed[(tag, run.tags[tag])].append(_failed_run(run, record.event_log_entry))
    failures_after = cursor.failures_after
    if records:
        failures_after = records[-1].storage_id
    elif failures_after is None:
        latest = instance.fetch_run_status_changes(DagsterEventType.RUN_FAILURE, limit=1).records
        failures_after = latest[0].storage_id if latest else 0
    origins = set(failed)
    repository = context.repository_def
    if repository is not None:
        origins |= {("dagster/sensor_name", s.name) for s in repository.sensor_defs if s.name != SENSOR_NAME}
        origins |= {("dagster/schedule_name", s.name) for s in repository.schedule_defs}
    problems = []
    for tag, name in sorted(origins):
        latest = instance.get_run_records(filters=RunsFilter(
            tags={tag: name}, statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE]), limit=1)
        latest_failed = None
        if latest and latest[0].dagster_run.status == DagsterRunStatus.FAILURE:
            run = latest[0].dagster_run
            events = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
            latest_failed = _failed_run(run, events[-1] if events else None)
        problem = runs_problem(name, failed.get((tag, name), []), latest_failed)
        if problem is not None:
            problems.append(problem)
    cursor.failures_after = failures_after
    return problems


# ---- checks --------------------------------------------------------------------------------------

def _check_problems(context: SensorEvaluationContext, unknown: set[str]) -> list[Problem]:
    repository = context.repository_def
    if repository is None:
        return []
    keys = set(repository.asset_checks_defs_by_key)
    keys |= {key for assets_def in repository.assets_defs_by_key.values() for key in assets_def.check_keys}
    problems = []
    for key in sorted(keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        record = context.instance.get_latest_asset_check_evaluation_record(key)
        if record is None:
            continue
        asset = key.asset_key.to_user_string()
        evaluation = record.event.asset_check_evaluation if record.event is not None else None
        if evaluation is None:  # planned: its run is under way, or never finished (that run's failure says it)
            unknown.add(f"check:{asset}/{key.name}")
            continue
        problem = check_problem(CheckOutcome(asset, key.name, evaluation.passed, evaluation.severity.value,
                                             evaluation.description or "", record.partition))
        if problem is not None:
            problems.append(problem)
    return problems


# ---- gaps ----------------------------------------------------------------------------------------

def gap_scan(now: datetime, checked_through: datetime | None, running: list[datetime]) -> tuple[datetime, datetime]:
    """The minutes `[start, end)` to look for gaps in at `now`: those closed `GAP_SETTLE` ago whose
    run is not still under way (`running`: the minutes of the minute runs in progress), or closed
    `GAP_MAX_WAIT` ago whatever their run, after `checked_through` (on a first look, the last
    such minute), at most `GAP_LOOKBACK` back. Empty (`start >= end`) when none closed since."""
    end = floor_minute(now - GAP_SETTLE)
    if running:
        end = max(min(end, min(running)), floor_minute(now - GAP_MAX_WAIT))
    start = checked_through + MINUTE if checked_through is not None else end - MINUTE
    return max(start, end - GAP_LOOKBACK), end


def _gap_problems(context: SensorEvaluationContext, mongo: MongoResource, book_source: BookSource, cursor: Cursor,
                  now: datetime, unknown: set[str]) -> list[Problem]:
    instance = context.instance
    running = [parse_minute(run.tags[MINUTE_TAG]) for run in instance.get_runs(
        filters=RunsFilter(tags={"dagster/sensor_name": minute_sensor.name}, statuses=IN_PROGRESS))
        if MINUTE_TAG in run.tags]
    start, end = gap_scan(now, cursor.checked_through, running)
    if start >= end:
        unknown.add("gap")  # no minute closed since the last look: the gap stands as it was
        return []
    registered = set(registered_symbols(instance))
    store = mongo.get_store()
    tracked = {s: since for s, since in store.tracked_since().items() if s in registered}
    rows = {name: coverage(tracked, store.stored_minutes(name, start, end), start, end) for name in GAP_COLLECTIONS}
    looked_before = cursor.checked_through
    cursor.checked_through = end - MINUTE
    problems = [gap_problem(rows)]
    if book_source.streams() and looked_before is not None:
        problems.append(withdrawn_problem(_withdrawn_deleted(book_source, store, tracked, cursor, looked_before, end)))
    return [problem for problem in problems if problem is not None]


def _withdrawn_deleted(book_source: BookSource, store, tracked: dict[str, datetime], cursor: Cursor,
                       looked_through: datetime, end: datetime) -> dict[str, dict[datetime, str]]:
    """The cells of minutes up to `looked_through` (the live look has judged them) whose book the
    recorder withdrew and that are stored in neither way now: `{symbol: {minute: reason}}`. A
    withdrawn cell still stored from the stream is looked at again next minute (the catch-up run
    deletes it); one stored over REST stays. Each cell is said once (`cursor.withdrawn_seen`,
    kept for the hour the revisions are read over)."""
    since = end - GAP_LOOKBACK
    seen = {key for key in cursor.withdrawn_seen if parse_minute(key.split("|", 1)[0]) >= since}
    withdrawn = {Cell(minute, symbol): reason
                 for (symbol, minute), reason in BoundaryBooks(store).withdrawn(since, looked_through + MINUTE).items()
                 if symbol in tracked and minute >= tracked[symbol]
                 and f"{format_minute(minute)}|{symbol}" not in seen}
    deleted: dict[str, dict[datetime, str]] = defaultdict(dict)
    if withdrawn:
        stored = {Cell(as_utc(d["minute"]), d["symbol"]): d.get("source")
                  for d in store.find_cells(ORDER_BOOK_SNAPSHOTS, withdrawn, fields=["source"])}
        for cell, reason in withdrawn.items():
            if stored.get(cell) == "stream":
                continue  # still there: its deletion is to come
            seen.add(f"{format_minute(cell.minute)}|{cell.symbol}")
            if cell not in stored:
                deleted[cell.symbol][cell.minute] = reason
    cursor.withdrawn_seen = sorted(seen)
    return dict(deleted)


# ---- the stream recorder -------------------------------------------------------------------------

def _recorder_problems(context: SensorEvaluationContext, book_source: BookSource, now: datetime,
                       unknown: set[str]) -> list[Problem]:
    if not book_source.streams():
        return []
    status = book_source.recorder_status()
    problems, not_known = recorder_problems(book_source.recorder_down(status, now), status is None,
                                            (status or {}).get("symbols") or {}, registered_symbols(context.instance))
    unknown |= not_known
    return problems
