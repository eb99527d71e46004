"""deploy/ as written, where Docker and systemd are not available to run it: the instance settings
keep every setting of the project's dagster.yaml; every command the systemd units, the compose
file and the image name exists, with its subcommands and flags, in the installed package; the
compose file and the units run the same commands with the same environment, and the image has the
units' layout. (acts_pipeline_tests/e2e/test_production_profile.py runs the units' commands.)"""

import re
import shlex
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from acts_pipeline import settings
from acts_pipeline.platform.cli import build_parser
from acts_pipeline.platform.instance_settings import missing_settings
from acts_devkit.production import (
    DEPLOY,
    ENV_FILE,
    ENV_TEMPLATE,
    INSTALL_DIR,
    SERVICES,
    STATE_DIR,
    UNITS,
    VENV_BIN,
    read_env_file,
    read_unit,
    unit_commands,
)

PROJECT = DEPLOY.parent
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
#: What the issue asks the compose file to hold, besides the pre-start check and the hourly reload.
STACK = {"postgres", "mongo", "webserver", "daemon", "code-server", "recorder"}
#: The services compose.yaml runs from the ACTS image, and their systemd units.
IMAGE_SERVICES = {"code-server": "code-server", "webserver": "webserver", "daemon": "daemon",
                  "recorder": "recorder", "reload-code": "reload-code", "instance-check": None}
HOST_FLAGS = ("-h", "--host")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def image_services() -> dict[str, dict]:
    return {name: service for name, service in compose()["services"].items() if "build" in service}


def unit_argvs() -> list[list[str]]:
    argvs = []
    for path in sorted(UNITS.glob("*.service")):
        pre, start = unit_commands(read_unit(path))
        argvs += [*pre, start]
    return argvs


def compose_argvs() -> list[list[str]]:
    argvs = []
    for service in image_services().values():
        argvs.append(service["command"])
        test = service.get("healthcheck", {}).get("test")
        if test:
            assert test[0] == "CMD", test  # exec form: the command itself, no shell
            argvs.append(test[1:])
    return argvs


def dockerfile_argvs() -> list[list[str]]:
    text = DOCKERFILE.read_text()
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, re.M)
    return [yaml.safe_load(cmd)]


def without_host(argv: list[str]) -> list[str]:
    """`argv` with its executable's folder and its listening host left out (127.0.0.1 on the VM,
    0.0.0.0 in a container)."""
    out, skip = [Path(argv[0]).name], False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg in HOST_FLAGS:
            skip = True
            continue
        out.append(arg)
    return out


def test_the_production_instance_keeps_every_setting_of_the_development_instance():
    dev = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    prod = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    # the one difference: the storage (SQLite with the batched event log -> PostgreSQL)
    assert {k: v for k, v in dev.items() if k != "event_log_storage"} == \
        {k: v for k, v in prod.items() if k != "storage"}
    assert prod["storage"] == {"custom": {"module": "acts_pipeline.platform.postgres_storage", "class": "PostgresStorage",
                                          "config": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}}
    assert missing_settings(prod) == [] and missing_settings(dev) == []


def test_the_workspace_points_at_the_code_server_named_by_the_environment():
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    assert workspace == {"load_from": [{"grpc_server": {
        "host": {"env": "ACTS_CODE_SERVER_HOST"}, "port": {"env": "ACTS_CODE_SERVER_PORT"},
        "location_name": "acts_pipeline"}}]}
    env = read_env_file(ENV_TEMPLATE)
    code_server = read_unit(UNITS / SERVICES["code-server"])
    _, argv = unit_commands(code_server)
    assert argv[argv.index("-p") + 1] == env["ACTS_CODE_SERVER_PORT"]
    assert argv[argv.index("-h") + 1] == env["ACTS_CODE_SERVER_HOST"] == "127.0.0.1"
    _, webserver = unit_commands(read_unit(UNITS / SERVICES["webserver"]))
    assert env["ACTS_DAGSTER_WEBSERVER_URL"] == f"http://127.0.0.1:{webserver[webserver.index('-p') + 1]}"


def installed_scripts() -> set[str]:
    return {ep.name for ep in entry_points(group="console_scripts")}


def test_every_command_the_profile_names_exists_with_its_subcommands_and_flags():
    scripts = installed_scripts()
    bin_dir = Path(sys.executable).parent
    helped: dict[tuple[str, ...], subprocess.Popen] = {}
    named = {"systemd": unit_argvs(), "compose": compose_argvs(), "Dockerfile": dockerfile_argvs()}
    for source, argvs in named.items():
        assert argvs, source
        for argv in argvs:
            name = Path(argv[0]).name
            if source == "systemd":
                assert argv[0].startswith(f"{VENV_BIN}/"), argv  # the install's own virtual environment
            if name == "python":
                assert argv[1] == "-c", argv
                compile(argv[2], "<healthcheck>", "exec")
                continue
            assert name in scripts, f"{source}: {shlex.join(argv)}: no console script {name!r} is installed"
            assert (bin_dir / name).is_file(), name
            if name == "acts-pipeline":
                # ours: its parser itself (subcommand, flags and their values)
                if "--help" in argv:
                    with pytest.raises(SystemExit) as exited:
                        build_parser().parse_args(argv[1:])
                    assert exited.value.code == 0
                else:
                    build_parser().parse_args(argv[1:])
                continue
            # Dagster's click commands: `--help` after the arguments stops before running anything,
            # and fails (exit 2, "No such option") on any unknown subcommand or flag before it.
            key = tuple(without_host(argv))
            if key not in helped:
                helped[key] = subprocess.Popen([str(bin_dir / name), *argv[1:], "--help"], stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, text=True)
    assert {key[:2] for key in helped} == {("dagster", "code-server"), ("dagster-webserver", "-w"),
                                           ("dagster-daemon", "run"), ("dagster", "api")}
    for key, process in helped.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and out.startswith("Usage:"), (key, out[-500:], err[-2000:])


def test_compose_runs_the_whole_stack_with_the_units_commands_and_environment():
    services = compose()["services"]
    assert STACK <= set(services)
    images = image_services()
    assert set(images) == set(IMAGE_SERVICES)
    env_keys = set(read_env_file(ENV_TEMPLATE))
    for name, service in images.items():
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
        assert service["image"] == "acts-pipeline:latest"
        assert set(service["environment"]) == env_keys, name  # the same variables as on the VM
        bind = [v for v in service["volumes"] if v.startswith("./")]
        assert bind == [f"./dagster.yaml:{STATE_DIR}/dagster_home/dagster.yaml:ro"], name
        assert service["environment"]["DAGSTER_HOME"] == read_env_file(ENV_TEMPLATE)["DAGSTER_HOME"]
        unit = IMAGE_SERVICES[name]
        if unit is None:
            assert service["command"] == ["acts-pipeline", "check-instance"]
            continue
        pre, start = unit_commands(read_unit(UNITS / SERVICES[unit]))
        assert without_host(service["command"]) == without_host(start), name
        if name != "reload-code":
            assert [without_host(p) for p in pre] == [["acts-pipeline", "check-instance"]], name
            assert services[name]["depends_on"].get("instance-check", {}).get("condition") in (
                None, "service_completed_successfully")
    code_server = images["code-server"]
    assert code_server["command"][code_server["command"].index("-p") + 1] == \
        code_server["environment"]["ACTS_CODE_SERVER_PORT"]
    assert code_server["environment"]["ACTS_CODE_SERVER_HOST"] == "code-server"


def test_the_units_run_from_the_installed_layout_under_one_target():
    target = read_unit(UNITS / "acts.target")
    assert sorted(target["Unit"]["Wants"][0].split()) == sorted(SERVICES.values())
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(SERVICES.values())
    for unit_name in SERVICES.values():
        service = read_unit(UNITS / unit_name)["Service"]
        assert service["EnvironmentFile"] == [ENV_FILE], unit_name
        assert service["WorkingDirectory"] == [STATE_DIR], unit_name
        assert service["User"] == ["acts"] and service["Restart"] == ["always"], unit_name
        assert read_unit(UNITS / unit_name)["Install"]["WantedBy"] == ["acts.target"]
    # the runs are the code server's children, and must outlive it (see the unit)
    assert read_unit(UNITS / SERVICES["code-server"])["Service"]["KillMode"] == ["process"]
    # Dagster below the recorder at each close, as `dev` does (settings.DEFAULT_DAGSTER_NICENESS)
    nice = {name: read_unit(UNITS / unit)["Service"].get("Nice", ["0"]) for name, unit in SERVICES.items()}
    assert nice["recorder"] == ["0"] and nice["daemon"] == nice["code-server"] == nice["webserver"] == [
        str(settings.DEFAULT_DAGSTER_NICENESS)], nice


def test_the_image_has_the_units_layout():
    text = DOCKERFILE.read_text()
    env = read_env_file(ENV_TEMPLATE)
    assert f"DAGSTER_HOME={env['DAGSTER_HOME']}" in text
    assert f"python -m venv {VENV_BIN.removesuffix('/bin')}" in text and f"PATH={VENV_BIN}:$PATH" in text
    assert f"WORKDIR {INSTALL_DIR}" in text and "COPY deploy ./deploy" in text
    assert f"deploy/dagster.yaml {env['DAGSTER_HOME']}/dagster.yaml" in text
    for source in re.findall(r"^COPY (\S+)", text, re.M):
        assert (PROJECT / source).exists(), source
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for source in re.findall(r"^COPY (\S+(?: \S+)*) \S+$", text, re.M):
        for path in source.split():
            assert f"!{path}" in ignored or f"!{path}/**" in ignored, path
