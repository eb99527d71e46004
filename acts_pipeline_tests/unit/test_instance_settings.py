"""The instance settings are never lost silently (issue 13, item 3): an instance folder without
ACTS's dagster.yaml settings is refused with each missing setting named, by `acts-pipeline dev`
(when DAGSTER_HOME is set) and by `acts-pipeline check-instance` (the production services'
pre-start check); an empty DAGSTER_HOME gets the project's settings written, and says so."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from acts_pipeline.core.errors import ConfigurationError
from acts_pipeline.platform.instance_settings import REQUIRED, check_instance_folder, missing_settings
from acts_devkit.platform import PROJECT, clean_env, project_copy

DEV_SETTINGS = PROJECT / "dagster.yaml"
ALL_NAMES = [setting.name for setting in REQUIRED]


def dev_config() -> dict:
    return yaml.safe_load(DEV_SETTINGS.read_text())


def test_the_projects_settings_have_everything_and_no_file_has_nothing():
    assert missing_settings(dev_config()) == []
    assert missing_settings(None) == ALL_NAMES
    assert missing_settings({}) == ALL_NAMES


@pytest.mark.parametrize(("change", "missing"), [
    (lambda c: c.pop("event_log_storage"), "the batched event log"),
    (lambda c: c["run_coordinator"].update({"class": "DefaultRunCoordinator"}), "the run queue with its limit"),
    (lambda c: c["run_coordinator"]["config"].pop("max_concurrent_runs"), "the run queue with its limit"),
    (lambda c: c["run_retries"].update({"enabled": False}), "run retries"),
    (lambda c: c.pop("run_monitoring"), "run monitoring with a maximum run time"),
    (lambda c: c["run_monitoring"].pop("max_runtime_seconds"), "run monitoring with a maximum run time"),
    (lambda c: c.pop("sensors"), "sensors evaluated in threads"),
    (lambda c: c.pop("retention"), "retention of sensor ticks"),
])
def test_each_missing_setting_is_named(change, missing):
    config = dev_config()
    change(config)
    assert [name.split(" (")[0] for name in missing_settings(config)] == [missing]


def test_postgres_storage_counts_as_the_batched_event_log_and_dagsters_run_queue_shorthand_as_the_queue():
    config = dev_config()
    config.pop("event_log_storage")
    config["storage"] = {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    config.pop("run_coordinator")
    config["run_queue"] = {"max_concurrent_runs": 6}
    assert missing_settings(config) == []


def test_an_empty_instance_folder_gets_the_projects_settings_written(tmp_path):
    for home in (tmp_path / "new", tmp_path / "empty"):
        if home.name == "empty":
            home.mkdir()
        said = check_instance_folder(home, template=DEV_SETTINGS, fix="-")
        assert said == f"DAGSTER_HOME {home} was empty: wrote ACTS's instance settings there ({home / 'dagster.yaml'})"
        assert (home / "dagster.yaml").read_bytes() == DEV_SETTINGS.read_bytes()
        # and from then on it is an instance with the settings: nothing more to say
        assert check_instance_folder(home, template=DEV_SETTINGS, fix="-") is None


def test_a_folder_holding_an_instance_without_the_settings_is_refused_and_left_as_it_was(tmp_path):
    (tmp_path / "history").mkdir()  # an instance that ran on Dagster's defaults
    with pytest.raises(ConfigurationError) as refused:
        check_instance_folder(tmp_path, template=DEV_SETTINGS, fix="Copy them.")
    message = str(refused.value)
    assert message.startswith(f"DAGSTER_HOME {tmp_path} has no dagster.yaml: Dagster would run this instance on its "
                              "defaults, without the batched event log")
    assert all(name in message for name in ALL_NAMES) and message.endswith("Copy them.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history"]

    (tmp_path / "dagster.yaml").write_text("run_retries:\n  enabled: true\ntelemetry:\n  enabled: false\n")
    with pytest.raises(ConfigurationError) as refused:
        check_instance_folder(tmp_path, template=DEV_SETTINGS, fix="Copy them.")
    assert str(refused.value).startswith(f"{tmp_path / 'dagster.yaml'} lacks settings ACTS relies on: the batched")
    assert "run retries" not in str(refused.value)
    assert (tmp_path / "dagster.yaml").read_text().startswith("run_retries:")


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "acts-pipeline"), *args], cwd=cwd,
                          env=clean_env(**env), capture_output=True, text=True, timeout=120)


def test_dev_with_a_dagster_home_without_the_settings_refuses_before_starting_anything(tmp_path):
    project = project_copy(tmp_path / "project")
    home = tmp_path / "home"
    (home / "storage").mkdir(parents=True)
    done = run_cli("dev", "--simulated", cwd=project, DAGSTER_HOME=str(home))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: DAGSTER_HOME {home} has no dagster.yaml: Dagster would run this instance "
                                  "on its defaults, without the batched event log"), done.stderr
    assert f"ACTS's settings are in {project / 'dagster.yaml'}: copy or merge them in, or unset DAGSTER_HOME" in done.stderr
    assert done.stdout == ""  # no simulator, no database, nothing started
    assert not (project / ".acts" / "mongo").exists() and not (home / "dagster.yaml").exists()


def test_check_instance_refuses_an_instance_without_the_settings_or_with_a_bad_postgres_url(tmp_path):
    done = run_cli("check-instance", cwd=tmp_path, DAGSTER_HOME=str(tmp_path))
    assert done.returncode == 2 and "has no dagster.yaml" in done.stderr, done.stderr
    assert "Install deploy/dagster.yaml there as dagster.yaml" in done.stderr

    shutil.copyfile(PROJECT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    done = run_cli("check-instance", cwd=tmp_path, DAGSTER_HOME=str(tmp_path),
                   DAGSTER_PG_URL="mysql://acts:s3cret@db.internal/dagster")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: DAGSTER_PG_URL must be a postgresql:// URL such as postgresql://acts:<password>@db.internal:5432/dagster, "
        "got mysql://***@db.internal/dagster (scheme 'mysql'; dagster-postgres runs on psycopg2)")
    assert "s3cret" not in done.stdout + done.stderr


def test_dev_with_a_relative_dagster_home_says_so_before_starting_anything(tmp_path):
    project = project_copy(tmp_path / "project")
    done = run_cli("dev", cwd=project, DAGSTER_HOME="instance")
    assert (done.returncode, done.stderr) == (2, "error: DAGSTER_HOME must be an absolute path, got 'instance'\n")
    assert not (project / "instance").exists() and not (project / ".acts" / "mongo").exists()
