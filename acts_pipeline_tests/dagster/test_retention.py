"""The daily retention job deletes finished runs older than the retention period, and only those."""

from datetime import UTC, datetime, timedelta

from dagster import DagsterInstance, asset, materialize
from dagster._core.storage.runs.schema import RunsTable

from acts_pipeline.orchestration.retention import prune_run_history


@asset
def tiny() -> int:
    return 1


def set_created(instance: DagsterInstance, run_id: str, when: datetime) -> None:
    """Dagster stamps a run's creation time itself: move it to `when` (stored as naive UTC)."""
    with instance.run_storage.connect() as conn:
        conn.execute(RunsTable.update().where(RunsTable.c.run_id == run_id)
                     .values(create_timestamp=when.astimezone(UTC).replace(tzinfo=None)))


def test_old_finished_runs_are_deleted_and_recent_ones_kept():
    # Ages set, not waited for: a run created three days ago and one created now, a day kept.
    with DagsterInstance.ephemeral() as instance:
        old = materialize([tiny], instance=instance).run_id
        recent = materialize([tiny], instance=instance).run_id
        set_created(instance, old, datetime.now(UTC) - timedelta(days=3))
        result = prune_run_history.execute_in_process(
            instance=instance, run_config={"ops": {"delete_old_runs": {"config": {"keep_days": 1}}}})
        assert result.success
        remaining = {r.run_id for r in instance.get_runs()}
        assert old not in remaining and not instance.all_logs(old)
        assert recent in remaining and instance.all_logs(recent)
        assert result.run_id in remaining


def test_the_scheduled_job_succeeds_with_the_code_locations_resources():
    """Issue 9: the hourly run failed after deleting, because its op's output went through the
    MongoDB I/O manager ("this output has no 'mongo_collection' metadata")."""
    from acts_pipeline.definitions import defs

    with DagsterInstance.ephemeral() as instance:
        materialize([tiny], instance=instance)
        job = defs().get_job_def("prune_run_history")
        result = job.execute_in_process(
            instance=instance, run_config={"ops": {"delete_old_runs": {"config": {"keep_days": 0.0}}}})
        assert result.success
        assert len(instance.get_runs()) == 1  # the job's own run; the materialization's is gone
