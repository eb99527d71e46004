"""Keeping the Dagster instance small: old runs and their event logs are deleted every hour.

Every minute run writes a few hundred events per hundred symbols (one materialization per cell
and asset, check evaluations, step events); left alone, the event log grows without bound and the
UI's asset pages slow down with it. The data itself lives in MongoDB and is not touched: deleting
a run only forgets its Dagster history (the cells' materialization events go with it).
"""

from datetime import UTC, datetime, timedelta

from dagster import (
    Config,
    DagsterRunStatus,
    DefaultScheduleStatus,
    OpExecutionContext,
    RunsFilter,
    ScheduleDefinition,
    job,
    op,
)

from acts_pipeline.orchestration.partitions import PARTITION_WINDOW_HOURS, window_start

FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]


class RetentionConfig(Config):
    """How many days of finished runs to keep; by default, those created since the start of the
    rolling partition window (`ACTS_PARTITION_WINDOW_HOURS` whole hours before this hour)."""

    keep_days: float | None = None
    batch: int = 500


def retention_cutoff(now: datetime, keep_days: float | None) -> datetime:
    """Runs created before this are deleted: `keep_days` ago, or the partition window's start.
    A run older than the window holds only events of partitions the definitions no longer have."""
    if keep_days is None:
        return window_start(now, PARTITION_WINDOW_HOURS)
    return now - timedelta(days=keep_days)


#: No output: the op's result is the deletion itself. An output would go through the code
#: location's I/O manager (MongoDB, for assets only), which refuses it and failed every run.
@op(out={})
def delete_old_runs(context: OpExecutionContext, config: RetentionConfig):
    """Deletes finished runs created before the retention cutoff, with their event logs."""
    cutoff = retention_cutoff(datetime.now(UTC), config.keep_days)
    deleted = 0
    while True:
        runs = context.instance.get_runs(
            filters=RunsFilter(created_before=cutoff, statuses=FINISHED), limit=config.batch)
        if not runs:
            break
        for run in runs:
            context.instance.delete_run(run.run_id)
        deleted += len(runs)
    context.log.info(f"deleted {deleted} runs created before {cutoff:%Y-%m-%d %H:%M} UTC")


@job(description="Deletes finished runs (and their event logs) older than the retention period.")
def prune_run_history():
    delete_old_runs()


#: Hourly, a quarter of an hour after the reload that moves the window's start by an hour. Named
#: explicitly: Dagster would call it `prune_run_history_schedule`, and the README and the UI must agree.
prune_run_history_hourly = ScheduleDefinition(
    name="prune_run_history_hourly", job=prune_run_history, cron_schedule="17 * * * *", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
