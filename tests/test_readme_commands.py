"""The README's commands, typed as written from a fresh clone's root (defaults, relative paths).

`make demo`, the long one, is in test_demo.py. Each command here is taken from the README
text (the test fails if the README stops showing it) and run in a copy of the working
tree (tests/fixtures/fresh_clone.py) whose `.venv` is the venv running the tests.
"""

import json
import subprocess

import pytest

from .conftest import ROOT
from .fixtures.fresh_clone import SAFE_MAKE, make_clone, user_env

README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    return make_clone(tmp_path_factory.mktemp("fresh") / "hypolab")


def typed(clone, command: str, extra: str = "", timeout: int = 300) -> subprocess.CompletedProcess:
    assert command in README, f"the README no longer shows {command!r}"
    if command.startswith("make "):
        command = " ".join(SAFE_MAKE) + command[len("make"):]
    return subprocess.run(["bash", "-c", command + extra], cwd=clone, env=user_env(), capture_output=True,
                          text=True, timeout=timeout)


def test_make_help_lists_the_targets(clone):
    done = typed(clone, "make help")
    assert done.returncode == 0, done.stderr
    for target in ("up", "test", "demo", "install", "down", "logs", "status", "preflight"):
        assert f"make {target} " in done.stdout


def test_plan_h07(clone):
    done = typed(clone, ".venv/bin/hypolab plan H07")
    assert done.returncode == 0, done.stderr
    assert done.stdout.index("1. H06") < done.stdout.index("2. H07")
    assert "hypolab train --spec outputs/H07.math-python/spec.yaml" in done.stdout


def test_the_rehearsal_command_resolves_its_relative_spec(clone):
    """The README's CPU rehearsal line, checked (`--check`) rather than trained: that is
    tests/trainer/test_rehearsal.py's job."""
    done = typed(clone, ".venv/bin/hypolab train --spec configs/experiments/math-python.yaml --rehearsal --max-steps 1",
                 " --check")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["spec_file"] == "configs/experiments/math-python.yaml" and run["spec"]["env"] == "math-python"
    assert run["output_dir"] == "outputs/math-python" and run["spec"]["training"]["max_steps"] == 1


def test_make_preflight_says_what_make_up_would_start(clone):
    done = typed(clone, "make preflight")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "plan: " in done.stdout
