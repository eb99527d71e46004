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
        assert result.output_for_node("delete_old_runs") == 1
        remaining = {r.run_id for r in instance.get_runs()}
        assert old not in remaining and not instance.all_logs(old)
        assert recent in remaining and instance.all_logs(recent)
        assert result.run_id in remaining
