"""The daily retention job deletes finished runs older than the retention period, and only those."""

from datetime import UTC, datetime, timedelta

from dagster import DagsterInstance, Definitions, asset, define_asset_job, materialize
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


@asset(name="daily_coverage")
def daily_coverage_stand_in() -> None:
    """Stands in for the history asset of that name (the run's asset selection is what counts)."""


def test_the_history_assets_runs_are_kept_however_old():
    """A year of days in the UI is the history assets' materializations: their runs stay, whether
    a schedule launched them (the job's name) or the UI or a backfill (the asset selection)."""
    history_defs = Definitions(assets=[daily_coverage_stand_in],
                               jobs=[define_asset_job("daily_coverage_job", selection=[daily_coverage_stand_in])])
    with DagsterInstance.ephemeral() as instance:
        minute_runs = [materialize([tiny], instance=instance).run_id for _ in range(3)]
        scheduled = history_defs.get_job_def("daily_coverage_job").execute_in_process(instance=instance).run_id
        from_the_ui = history_defs.get_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[daily_coverage_stand_in.key]).run_id
        for run_id in [*minute_runs, scheduled, from_the_ui]:
            set_created(instance, run_id, datetime.now(UTC) - timedelta(days=300))
        result = prune_run_history.execute_in_process(
            instance=instance, run_config={"ops": {"delete_old_runs": {"config": {"keep_days": 1, "batch": 2}}}})
        assert result.success
        remaining = {r.run_id for r in instance.get_runs()}
        assert remaining == {scheduled, from_the_ui, result.run_id}
        assert instance.get_latest_materialization_event(daily_coverage_stand_in.key).run_id == from_the_ui


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
