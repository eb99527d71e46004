"""The daily retention job deletes finished runs older than the retention period, and only those."""

import time

from dagster import DagsterInstance, asset, materialize

from acts_pipeline.retention import prune_run_history


@asset
def tiny() -> int:
    return 1


def test_old_finished_runs_are_deleted_and_recent_ones_kept():
    with DagsterInstance.ephemeral() as instance:
        old = materialize([tiny], instance=instance).run_id
        time.sleep(4)
        recent = materialize([tiny], instance=instance).run_id
        # keep 2 s: the old run (4+ s) goes, the recent one (well under 2 s) stays
        result = prune_run_history.execute_in_process(
            instance=instance, run_config={"ops": {"delete_old_runs": {"config": {"keep_days": 2 / 86400}}}})
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
        job = defs.get_job_def("prune_run_history")
        result = job.execute_in_process(
            instance=instance, run_config={"ops": {"delete_old_runs": {"config": {"keep_days": 0.0}}}})
        assert result.success
        assert len(instance.get_runs()) == 1  # the job's own run; the materialization's is gone
