"""`acts-pipeline reload-code` finds the webserver the way the other commands find the platform:
an explicit --url, else ACTS_DAGSTER_WEBSERVER_URL, else the platform `acts-pipeline dev` runs in
this project folder (its .acts/runtime.json)."""

import json

import pytest

from acts_pipeline.platform import cli
from acts_pipeline_tests.fakes import GraphqlWebserver
from acts_pipeline_tests.unit.test_window_reload import answer


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder, the current one, with no ACTS_* or DAGSTER_* variable set (and whatever
    the command sets undone afterwards)."""
    for name in ("ACTS_DAGSTER_WEBSERVER_URL", "DAGSTER_HOME"):
        monkeypatch.setenv(name, "")  # recorded, so that the teardown restores the original
        monkeypatch.delenv(name)
    (tmp_path / "workspace.yaml").write_text("load_from: []\n")
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def webservers():
    started = [GraphqlWebserver(answer), GraphqlWebserver(answer)]
    yield started
    for server in started:
        server.close()


def platform_running_at(project, url):
    """What `acts-pipeline dev --port N` leaves for the commands run beside it."""
    (project / ".acts").mkdir(exist_ok=True)
    (project / ".acts" / "runtime.json").write_text(json.dumps({"ACTS_DAGSTER_WEBSERVER_URL": url}))


def test_reload_code_reloads_the_platform_dev_runs_here(project, webservers, capsys):
    running, _ = webservers
    platform_running_at(project, running.url)
    assert cli.main(["reload-code"]) == 0, capsys.readouterr().err
    assert any("reloadWorkspace" in p["query"] for p in running.posted)
    assert "the partition window still starts at 2026-11-26-07:00" in capsys.readouterr().out


def test_an_explicit_url_wins_over_the_running_platform(project, webservers, capsys):
    running, other = webservers
    platform_running_at(project, running.url)
    assert cli.main(["reload-code", "--url", other.url]) == 0, capsys.readouterr().err
    assert any("reloadWorkspace" in p["query"] for p in other.posted)
    assert running.posted == []
