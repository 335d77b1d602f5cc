"""The `hypolab` command: help lists the commands; bad settings stop `up` in one line."""

import os
import subprocess
import sys

from typer.testing import CliRunner

from hypolab import __version__
from hypolab.cli import app

from ..conftest import ROOT


def test_help_lists_the_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("coordinator", "preflight", "up", "health", "version"):
        assert command in result.output


def test_version():
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.strip() == __version__


def run_hypolab(*args, env_file=None, **env):
    environ = {**os.environ, **env}
    if env_file is not None:
        environ["HYPOLAB_ENV_FILE"] = str(env_file)
    return subprocess.run([sys.executable, "-m", "hypolab", *args], capture_output=True, text=True,
                          env=environ, cwd=ROOT, timeout=60)


def test_up_with_unknown_stack_fails_before_starting_anything(tmp_path):
    env = tmp_path / ".env"
    env.write_text("STACK=nightly\n")
    result = run_hypolab("up", env_file=env, COMPOSE_PROJECT_NAME="hypolab-never-started")
    assert result.returncode == 2
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert lines == ["make up: STACK=nightly: unknown stack; choose one of current, legacy (docker/stacks/*.txt)"]


def test_preflight_json_on_this_host(tmp_path):
    env = tmp_path / ".env"
    env.write_text("COORDINATOR_PORT=1\n")  # privileged port: free, never bound by a test
    result = run_hypolab("preflight", "--json", env_file=env)
    assert result.returncode == 0, result.stderr
    import json

    data = json.loads(result.stdout)
    assert data["plan"]["mode"] in ("gpu", "cpu", "local")
    if not data["probe"]["gpus"]:  # this machine and CI: no GPU, so never the GPU plan
        assert data["plan"]["mode"] != "gpu" and data["plan"]["explanation"]
