"""DEV / TEST / PROD (issue 13, item 3): `ACTS_ENV` chooses the environment; DEV's and TEST's
settings are the repository's config/dev.env and config/test.env, under the variables already set
(which win); a file's unknown key, secret or bad value is refused naming the file, the line and the
variable; TEST shares nothing local with DEV."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from acts_devkit.platform import PROJECT, clean_env, project_copy
from acts_pipeline import settings
from acts_pipeline.core.errors import ConfigurationError
from acts_pipeline.platform.environments import (
    config_file,
    environment_settings,
    parse_environment_file,
    state_folder,
)


@pytest.fixture
def project(tmp_path) -> Path:
    """A fresh clone's view, with its config/ folder."""
    folder = project_copy(tmp_path / "project")
    shutil.copytree(PROJECT / "config", folder / "config")
    return folder


def parse(text: str) -> dict[str, str]:
    return parse_environment_file(text, name="config/test.env")


# ---- the repository's files -----------------------------------------------------------------


def test_dev_file_says_what_the_built_in_defaults_are(project, monkeypatch):
    """DEV is the default environment: its file and no file at all give the same platform, so a
    project folder without config/ (made before the environments) runs as it did."""
    monkeypatch.chdir(project)  # the default archive is in the working folder, which dev makes the project
    from_file = environment_settings(project, {})
    (project / "config" / "dev.env").unlink()
    built_in = environment_settings(project, {})
    assert built_in == {"ACTS_ENV": "dev"}
    for reader in settings.READERS:
        if reader is not settings.state_dir:
            assert reader(from_file) == reader(built_in), reader.__name__
    assert state_folder(project, from_file) == state_folder(project, built_in) == project / ".acts"


def test_test_shares_nothing_local_with_dev(project):
    dev = environment_settings(project, {}, chosen="dev")
    test = environment_settings(project, {}, chosen="test")
    assert (dev["ACTS_ENV"], test["ACTS_ENV"]) == ("dev", "test")
    assert state_folder(project, dev) == project / ".acts"
    assert state_folder(project, test) == project / ".acts-test"
    assert (settings.mongo_db(dev), settings.mongo_db(test)) == ("acts", "acts_test")
    assert (settings.dagster_port(dev), settings.dagster_port(test)) == (3000, 3001)
    assert settings.archive_dir(test) == str(project / ".acts-test" / "archive")
    assert settings.archive_dir(dev) == str(project / ".acts" / "archive")
    assert (settings.alert_deployment(dev), settings.alert_deployment(test)) == ("ACTS DEV", "ACTS TEST")
    assert settings.partition_window_hours(test) == 1 and settings.snapshot_retention_days(test) == 2
    for secret in settings.SECRETS:
        assert secret not in dev and secret not in test


def test_prod_reads_no_file_and_takes_the_environment_as_it_is(project):
    env = {"ACTS_ENV": "prod", "ACTS_MONGO_URI": "mongodb://acts:pw@db.internal/", "ACTS_MONGO_DB": "acts"}
    assert config_file(project, "prod") is None
    assert environment_settings(project, env) == env
    settings.check_environment(env)
    with pytest.raises(ConfigurationError, match="ACTS_ENV=prod needs ACTS_MONGO_URI"):
        settings.check_environment({"ACTS_ENV": "prod"})
    assert settings.alert_deployment(env) == "ACTS PROD"


# ---- precedence -----------------------------------------------------------------------------


def test_a_variable_set_in_the_environment_wins_over_the_file(project):
    env = {"ACTS_MONGO_DB": "mine", "ACTS_STATE_DIR": "/srv/acts-test", "ACTS_SYMBOLS": "NKNUSDT",
           "ACTS_MONGO_URI": "mongodb://127.0.0.1:1/", "PATH": "/usr/bin"}
    merged = environment_settings(project, env, chosen="test")
    assert {k: merged[k] for k in env} == env
    assert merged["ACTS_PARTITION_WINDOW_HOURS"] == "1"  # not set: the file's
    assert state_folder(project, merged) == Path("/srv/acts-test")


def test_acts_env_in_the_environment_chooses_the_file_and_env_agrees_or_is_refused(project):
    assert environment_settings(project, {"ACTS_ENV": " TEST "})["ACTS_MONGO_DB"] == "acts_test"
    assert environment_settings(project, {"ACTS_ENV": "test"}, chosen="test")["ACTS_ENV"] == "test"
    with pytest.raises(ConfigurationError, match="--env test and ACTS_ENV=dev disagree"):
        environment_settings(project, {"ACTS_ENV": "dev"}, chosen="test")
    with pytest.raises(ConfigurationError, match="ACTS_ENV must be one of dev, test, prod, got 'staging'"):
        environment_settings(project, {"ACTS_ENV": "staging"})


def test_relative_folders_in_a_file_are_the_project_folders(tmp_path):
    values = parse_environment_file("ACTS_STATE_DIR=state\nACTS_ARCHIVE_DIR=s3://bucket/acts\n"
                                    "ACTS_SPOOL_DIR=/var/spool/acts\n", name="x.env", base=tmp_path)
    assert values == {"ACTS_STATE_DIR": str(tmp_path / "state"), "ACTS_ARCHIVE_DIR": "s3://bucket/acts",
                      "ACTS_SPOOL_DIR": "/var/spool/acts"}


# ---- errors: the file, the line, the variable -----------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("# TEST\n\nACTS_MONGO_DB=acts_test\nACTS_MONGODB=acts\n",
     "config/test.env, line 4: ACTS_MONGODB is not an ACTS setting"),
    ("ACTS_SYMBOLS=BTCUSDT\nACTS_DEPTH_LIMIT=lots\n",
     "config/test.env, line 2: ACTS_DEPTH_LIMIT must be a whole number of levels, got 'lots'"),
    ("ACTS_MONGO_DB=acts test\n", "config/test.env, line 1: ACTS_MONGO_DB must be a plain database name"),
    ("ACTS_FEATURES_RETENTION_DAYS=never\n",
     "config/test.env, line 1: ACTS_FEATURES_RETENTION_DAYS must be a whole number of days or 'forever'"),
    ("ACTS_DAGSTER_PORT=70000\n", "config/test.env, line 1: ACTS_DAGSTER_PORT must be between 1 and 65535"),
    ("ACTS_STATE_DIR=.\n", "config/test.env, line 1: ACTS_STATE_DIR must be a local folder of its own"),
    ("ACTS_ALERT_DEPLOYMENT=" + "x" * 41 + "\n", "config/test.env, line 1: ACTS_ALERT_DEPLOYMENT must be a short name"),
    ("ACTS_MONGO_DB=a\nACTS_MONGO_DB=b\n", "config/test.env, line 2: ACTS_MONGO_DB is set again (first on line 1)"),
    ("ACTS_ENV=prod\n", "config/test.env, line 1: ACTS_ENV chooses this file, it cannot be set in it"),
    ("export ACTS_MONGO_DB\n", "config/test.env, line 1: not a KEY=VALUE line"),
])
def test_a_bad_line_is_refused_naming_the_file_the_line_and_the_variable(text, message):
    with pytest.raises(ConfigurationError) as raised:
        parse(text)
    assert str(raised.value).startswith(message), str(raised.value)


@pytest.mark.parametrize("secret", settings.SECRETS)
def test_a_secret_in_a_file_is_refused_without_showing_it(secret):
    with pytest.raises(ConfigurationError) as raised:
        parse(f"ACTS_SYMBOLS=BTCUSDT\n{secret}=mongodb://acts:s3cret@db.internal/\n")
    assert str(raised.value) == (f"config/test.env, line 2: {secret} is a secret: set it in the environment, never "
                                 "in a file of the repository")


def test_a_missing_test_file_is_refused_rather_than_sharing_devs_state(project):
    (project / "config" / "test.env").unlink()
    with pytest.raises(ConfigurationError, match=r"config/test.env is missing: .* would share DEV's state folder"):
        environment_settings(project, {}, chosen="test")


# ---- the command line -----------------------------------------------------------------------


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "acts-pipeline"), *args], cwd=cwd,
                          env=clean_env(**env), capture_output=True, text=True, timeout=120)


def test_dev_refuses_a_bad_environment_file_before_starting_anything(project):
    with (project / "config" / "test.env").open("a") as file:
        file.write("ACTS_DEPTH_LIMIT=0\n")
    line = len((project / "config" / "test.env").read_text().splitlines())
    done = run_cli("dev", "--env", "test", "--simulated", cwd=project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == (f"error: {project / 'config' / 'test.env'}, line {line}: ACTS_DEPTH_LIMIT must be between "
                           "1 and 5000, got 0\n")
    assert done.stdout == "" and not (project / ".acts-test").exists() and not (project / ".acts").exists()


def test_dev_does_not_run_prod(project):
    done = run_cli("dev", cwd=project, ACTS_ENV="prod", ACTS_MONGO_URI="mongodb://127.0.0.1:1/")
    assert done.returncode == 2
    assert done.stderr.startswith("error: acts-pipeline dev runs DEV or TEST on this machine; PROD runs from deploy/")


def test_the_commands_beside_a_platform_use_its_environments_state(project):
    """`spool status` (as `symbols`, `coverage`, `reload-code`) finds TEST's instance with --env
    test or ACTS_ENV=test, and DEV's without."""
    test = run_cli("spool", "status", "--env", "test", cwd=project)
    assert test.returncode == 0, test.stderr
    assert test.stdout == f"0 batches waiting in {project / '.acts-test' / 'dagster_home' / 'acts_spool'}\n"
    assert run_cli("spool", "status", cwd=project, ACTS_ENV="test").stdout == test.stdout
    dev = run_cli("spool", "status", cwd=project)
    assert dev.stdout == f"0 batches waiting in {project / '.acts' / 'dagster_home' / 'acts_spool'}\n"
