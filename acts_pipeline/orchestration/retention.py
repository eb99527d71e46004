"""Keeping the Dagster instance small: old runs and their event logs are deleted every hour.

Every minute run writes a few hundred events per hundred symbols (one materialization per cell
and asset, check evaluations, step events); left alone, the event log grows without bound and the
UI's asset pages slow down with it. The data itself lives in MongoDB and is not touched: deleting
a run only forgets its Dagster history (the cells' materialization events go with it).

The runs of the history assets (days and months: daily coverage, archive, klines and features
backfills) are kept: they are few (a handful a day), and their materializations are what the UI
shows of the last year. Deleting them would grey out every day older than the live window.
"""

from datetime import UTC, datetime, timedelta

from dagster import (
    Config,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    OpExecutionContext,
    RunsFilter,
    ScheduleDefinition,
    job,
    op,
)

from acts_pipeline import settings
from acts_pipeline.orchestration import archive_assets, coverage_assets, history_assets, symbol_coverage
from acts_pipeline.orchestration.assets import order_book_snapshot
from acts_pipeline.orchestration.partitions import minute_window_start, window_start

FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
#: The assets whose runs are never deleted: the history of the last year in the UI.
KEPT_ASSETS = frozenset(key for a in (*coverage_assets.ASSETS, *symbol_coverage.ASSETS, *history_assets.ASSETS,
                                      *archive_assets.ASSETS) for key in a.keys)
#: Their jobs (the schedules' runs carry the job's name, and no asset selection).
KEPT_JOBS = frozenset(j.name for j in (*coverage_assets.JOBS, *archive_assets.JOBS))


def is_kept(run: DagsterRun) -> bool:
    """Whether `run` is one of the history assets': launched by their schedules (a job of theirs),
    or from the UI or a backfill with one of them selected."""
    return run.job_name in KEPT_JOBS or bool(run.asset_selection and set(run.asset_selection) & KEPT_ASSETS)


class RetentionConfig(Config):
    """How many days of finished runs to keep; by default, those created since the start of the
    live partition window (`ACTS_PARTITION_WINDOW_HOURS` whole hours before the hour the code
    location loaded)."""

    keep_days: float | None = None
    batch: int = 500


def retention_cutoff(now: datetime, keep_days: float | None, window_start: datetime) -> datetime:
    """Runs created before this are deleted: `keep_days` ago, or the live window's start. A run
    older than the window holds only events of partitions the definitions no longer have."""
    if keep_days is None:
        return window_start
    return now - timedelta(days=keep_days)


def _live_window_start(context: OpExecutionContext, now: datetime) -> datetime:
    """The live window of the code location this run was loaded from (`definitions.py`); run
    outside one (`execute_in_process` of the bare job), the window the settings give now."""
    try:
        assets_def = context.repository_def.assets_defs_by_key.get(order_book_snapshot.key)
    except Exception:  # noqa: BLE001 - Dagster's invariant error: no repository on this run
        assets_def = None
    if assets_def is None:
        return window_start(now, settings.partition_window_hours())
    return minute_window_start(assets_def.partitions_def)


#: No output: the op's result is the deletion itself. An output would go through the code
#: location's I/O manager (MongoDB, for assets only), which refuses it and failed every run.
@op(out={})
def delete_old_runs(context: OpExecutionContext, config: RetentionConfig):
    """Deletes finished runs created before the retention cutoff, with their event logs."""
    now = datetime.now(UTC)
    cutoff = retention_cutoff(now, config.keep_days, _live_window_start(context, now))
    doomed, kept = [], 0
    cursor = None
    while True:  # first the whole list, then the deletions: a deleted run cannot be a page's cursor
        runs = context.instance.get_runs(
            filters=RunsFilter(created_before=cutoff, statuses=FINISHED), cursor=cursor, limit=config.batch)
        if not runs:
            break
        cursor = runs[-1].run_id
        for run in runs:
            if is_kept(run):
                kept += 1
            else:
                doomed.append(run.run_id)
    for run_id in doomed:
        context.instance.delete_run(run_id)
    context.log.info(f"deleted {len(doomed)} runs created before {cutoff:%Y-%m-%d %H:%M} UTC; kept {kept} runs of "
                     "the history assets")


@job(description="Deletes finished runs (and their event logs) older than the retention period.")
def prune_run_history():
    delete_old_runs()


#: Hourly, a quarter of an hour after the reload that moves the window's start by an hour. Named
#: explicitly: Dagster would call it `prune_run_history_schedule`, and the README and the UI must agree.
prune_run_history_hourly = ScheduleDefinition(
    name="prune_run_history_hourly", job=prune_run_history, cron_schedule="17 * * * *", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
