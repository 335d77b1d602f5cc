"""The `hypolab` command: help lists the commands; bad settings stop `up` in one line."""

import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from hypolab import __version__
from hypolab.cli import app

from .conftest import ROOT


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


COMMANDS = sorted(command.name for command in typer.main.get_command(app).commands.values())


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_every_option_by_its_full_name_at_80_columns(command):
    """`--help` and `-h`, in an 80-column terminal: every option's full name, no line over 80."""
    click_command = typer.main.get_command(app).commands[command]
    for flag in ("--help", "-h"):
        result = run_hypolab(command, flag, COLUMNS="80")
        assert result.returncode == 0, result.stderr
        assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
        for param in click_command.params:
            for name in [*param.opts, *param.secondary_opts]:
                if name.startswith("--"):
                    assert name in result.stdout, f"{command} {flag}: {name} missing or cut"


def test_train_flags_are_the_spec_fields_they_set():
    """One declaration: every train flag names a field of the spec, and sets it."""
    from hypolab.trainer.config import TRAIN_FLAGS, resolve_run

    spec = ROOT / "configs" / "experiments" / "gsm8k.yaml"
    values = {int: 2, float: 0.5, str: "bnpo", bool: False}
    for flag in TRAIN_FLAGS:
        value = "Qwen/Qwen2.5-0.5B-Instruct" if flag.name == "model" else values[flag.type]
        run = resolve_run(spec, [], {flag.name: value})
        node = run.spec
        for key in flag.path.split("."):
            node = getattr(node, key)
        assert node == value and [(o.path, o.source) for o in run.overrides] == [(flag.path, "flag")]
    result = run_hypolab("train", "--spec", str(spec), "--check", "--rehearsal", "--lora-alpha", "3", "--no-scale-rewards")
    assert result.returncode == 0, result.stderr
    assert '"alpha": 3' in result.stdout and '"scale_rewards": false' in result.stdout


@pytest.mark.parametrize("command,module", [("train", "verifiers"), ("demo", "verifiers"), ("coordinator", "fastapi")])
def test_a_missing_stack_stops_in_one_line_before_reading_input(tmp_path, command, module):
    """Where the stack (or extra) a command needs is not installed: one line, `make install`, exit 2."""
    hidden = tmp_path / "hide"  # as if the module were not installed (None in sys.modules)
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text(f"import sys\nsys.modules[{module!r}] = None\n")
    args = {"train": ["--spec", str(tmp_path / "no-such-spec.yaml")], "demo": ["--dir", str(tmp_path / "d")],
            "coordinator": ["--db", str(tmp_path / "x.sqlite")]}[command]
    result = run_hypolab(command, *args, PYTHONPATH=str(hidden))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert f"no module {module!r}" in lines[0] and "make install" in lines[0]
    assert not (tmp_path / "d").exists() and not (tmp_path / "x.sqlite").exists()  # nothing read or written
