"""`hypolab plan`, `hypolab run` and `hypolab status` against a live coordinator."""

import json
import os
import subprocess
import sys

from ..conftest import ROOT, TOKEN


def hypolab(*args, timeout=120, **env):
    return subprocess.run([sys.executable, "-m", "hypolab", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", **env}, timeout=timeout)


def test_plan_h07_shows_order_configs_diffs_and_workloads():
    out = hypolab("plan", "H07")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.index("1. H06") < text.index("2. H07")
    assert "H07.math-python (train)" in text and '"gsm8k"' in text and '"math-python"' in text
    assert "control H06.gsm8k" in text
    assert "hypolab train --spec outputs/H07.math-python/spec.yaml" in text
    assert "hypolab audit --env musique --stack legacy" in text
    plan = json.loads(hypolab("plan", "H07", "--json").stdout)
    assert [h["id"] for h in plan] == ["H06", "H07"]
    treatment = next(e for e in plan[1]["experiments"] if e["id"] == "H07.math-python")
    assert treatment["config"]["training"] == plan[0]["experiments"][0]["config"]["training"]
    assert treatment["workload"]["gpus"] == [1, 2, 3] and treatment["refused_fields"] == []


def test_plan_unknown_hypothesis():
    out = hypolab("plan", "H99")
    assert out.returncode == 2 and "unknown hypothesis 'H99'" in out.stdout


def test_run_follows_to_a_verdict_and_status_prints_the_board(make_coordinator):
    live = make_coordinator()
    out = hypolab("run", "H06", "--url", live.url, "--token", TOKEN, "--timeout", "90")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "run 1: H06" in out.stdout
    assert "H06 validated: Clear reward improvement within 20–50 steps." in out.stdout
    board = hypolab("status", "--url", live.url)
    assert board.returncode == 0 and "gsm8k" in board.stdout and "validated" in board.stdout  # short ids
    logs = live.client.get("/api/experiments/H06.gsm8k/logs")
    assert logs.status_code == 200 and "fake trainer: H06.gsm8k env=gsm8k" in logs.text
    exp = live.client.get("/api/experiments/H06.gsm8k").json()  # the verdict stopped it early
    assert exp["status"] == "succeeded" and exp["reason"].startswith("stopped early: H06 validated at step")
    bad = hypolab("run", "H06", "--url", live.url, "--token", "wrong")
    assert bad.returncode == 2 and "401" in bad.stdout
