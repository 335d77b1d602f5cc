"""`hypolab plan`: what will run, where, and what differs, in a screen or two."""

import os
import subprocess
import sys

from hypolab.coordinator.plan_view import build_plan, rule_in_words, verdict_in_words
from hypolab.trainer.config import REHEARSAL_DEFAULTS, rehearsal_defaults

from ..conftest import ROOT


def plan_cli(*args):
    return subprocess.run([sys.executable, "-m", "hypolab", "plan", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "80"}, timeout=120)


def test_local_plan_is_a_cpu_rehearsal_with_its_effective_settings():
    plan = build_plan(["H07"], "local", rehearsal_defaults)
    treatment = next(e for e in plan[1]["experiments"] if e["id"] == "H07.math-python")
    assert treatment["rehearsal"] and treatment["workload"]["gpus"] == []  # no GPUs claimed for a CPU run
    training = treatment["effective_config"]["training"]
    assert training["max_steps"] == REHEARSAL_DEFAULTS["training.max_steps"] != treatment["config"]["training"]["max_steps"]
    assert training["batch_size"] == 4 and training["num_processes"] == 1
    assert training["learning_rate"] == treatment["config"]["training"]["learning_rate"]  # untouched by the rehearsal
    audit = next(e for e in plan[1]["experiments"] if e["kind"] == "audit")
    assert audit["overrides"] == {} and audit["effective_config"] == audit["config"]


def test_the_learning_rehearsal_plans_with_its_specs_own_settings():
    plan = build_plan(["H90"], "local", rehearsal_defaults)
    [training] = [e for e in plan[0]["experiments"] if e["kind"] == "train"]
    assert training["rehearsal"] and training["overrides"] == {}  # what `train --rehearsal` does with it too
    assert training["effective_config"]["training"]["batch_size"] != REHEARSAL_DEFAULTS["training.batch_size"]


def test_docker_plan_runs_the_spec_on_gpus():
    plan = build_plan(["H06"], "docker", rehearsal_defaults)
    exp = plan[0]["experiments"][0]
    assert not exp["rehearsal"] and exp["overrides"] == {} and exp["workload"]["gpus"] == [1, 2, 3]
    assert exp["effective_config"]["training"]["max_steps"] == 200


def test_verdict_rules_in_words():
    words = verdict_in_words({
        "validated": {"rule": "no_improvement", "experiment": "math-python", "metric": "reward", "min_effect": 0.05},
        "invalidated": {"rule": "all", "rules": [
            {"rule": "improves", "experiment": "math-python", "metric": "reward", "min_effect": None},
            {"rule": "audit", "experiment": "audit-musique", "check": "CONTEXT_HIDDEN_FROM_ATTENTION", "present": False}]},
        "futility_after": 100})
    assert words == [
        "validated when reward of math-python is shown to rise by less than 0.05",
        "invalidated when (reward of math-python rises by a clear margin over training and "
        "audit audit-musique does not report CONTEXT_HIDDEN_FROM_ATTENTION)",
        "a 'no' may be decided (and stop the run) from step 100"]
    assert rule_in_words({"rule": "compare", "treatment": "a", "control": "b", "metric": "reward",
                          "direction": "better", "min_effect": 1e-6}) == "reward of a ends better than b's by at least 1e-6"


def test_plan_h07_fits_a_screen_or_two_and_says_where_and_what_differs():
    out = plan_cli("H07")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.index("1. H06") < text.index("2. H07")
    assert len(text.splitlines()) < 60  # was ~250: full configs only behind --full
    assert "GPUs" not in text and text.count("CPU rehearsal (one process, no GPU, no vLLM)") == 2
    assert "max_steps 2 (spec 200)" in text and "learning_rate 1e-6" in text
    assert "verdict: validated when reward of math-python is shown to rise by less than 0.05" in text
    treatment = text[text.index("H07.math-python (train)"):]
    assert "control H06.gsm8k" in treatment and '"math-python"' in treatment  # the diff to its control
    assert "description:" not in text  # full configs (with the control's description) only with --full
    full = plan_cli("H07", "--full").stdout
    assert "config as it will run:" in full and "max_steps: 2" in full and len(full.splitlines()) > 150


def test_plan_bad_input_is_one_line_with_the_choices():
    for args, expected in ((["H99"], "hypolab plan: unknown hypothesis 'H99'; known: H06, H07"),
                           (["H07", "--runner", "bogus"], "hypolab plan: unknown runner 'bogus'; choose one of: local, docker")):
        out = plan_cli(*args)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.startswith(expected) and len(out.stderr.strip().splitlines()) == 1, out.stderr
