"""The names an operator reads in the README are the names the Dagster UI shows (issue 9: the
README's `prune_run_history_hourly` was `prune_run_history_schedule` in the UI)."""

import re
from pathlib import Path

from acts_pipeline.definitions import defs

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def ui_names() -> dict[str, set[str]]:
    repository = defs().get_repository_def()
    return {
        "asset": {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()},
        "check": {key.name for key in repository.asset_graph.asset_check_keys},
        "sensor": {sensor.name for sensor in repository.sensor_defs},
        "schedule": {schedule.name for schedule in repository.schedule_defs},
        "job": {job.name for job in repository.get_all_jobs() if not job.name.startswith("__")},
    }


def test_every_sensor_schedule_job_and_check_is_named_in_the_readme():
    names = ui_names()
    for kind in ("sensor", "schedule", "job", "check", "asset"):
        for name in names[kind]:
            assert f"`{name}`" in README, f"the UI's {kind} {name} is not in the README"


def test_every_sensor_schedule_or_job_the_readme_names_exists():
    names = set().union(*ui_names().values())
    named = set(re.findall(r"`([a-z_]+_(?:sensor|schedule|hourly|daily|history|job))`", README))
    assert named, "the README names no sensor or schedule: the pattern is stale"
    assert named <= names, f"the README names {sorted(named - names)}, which the UI does not have"
