"""A daemon restart kills the run in flight, and Dagster's default run launcher cannot notice:
`acts-pipeline dev` marks runs left in progress as failed before it starts the new daemon, so
they do not hold `max_concurrent_runs` slots for ever."""

from dagster import DagsterEvent, DagsterEventType, DagsterInstance, DagsterRunStatus, job, op

from acts_pipeline.platform.cli import _fail_orphaned_runs


@op
def noop():
    pass


@job
def tiny():
    noop()


def test_runs_left_started_are_failed_and_finished_ones_untouched(tmp_path):
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        orphan = instance.create_run_for_job(tiny, run_config={})
        instance.handle_run_event(orphan.run_id, DagsterEvent(DagsterEventType.RUN_START.value, job_name="tiny"))
        finished = tiny.execute_in_process(instance=instance).run_id
        assert instance.get_run_by_id(orphan.run_id).status == DagsterRunStatus.STARTED

    _fail_orphaned_runs(tmp_path)

    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_run_by_id(orphan.run_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(finished).status == DagsterRunStatus.SUCCESS
