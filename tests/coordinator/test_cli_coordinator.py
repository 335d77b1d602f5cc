"""`hypolab run` and `hypolab status` against a live coordinator (`hypolab plan`: test_plan_view.py)."""

import os
import subprocess
import sys

from ..conftest import ROOT, TOKEN


def hypolab(*args, timeout=120, **env):
    return subprocess.run([sys.executable, "-m", "hypolab", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", **env}, timeout=timeout)


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


def test_run_names_each_failed_experiment_with_its_reason_and_exits_1(make_coordinator, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_FAIL_MARKER", str(tmp_path / "failed-once"))  # the fake trainer exits 3 once
    live = make_coordinator()
    out = hypolab("run", "H06", "--url", live.url, "--token", TOKEN, "--timeout", "90")
    exp = live.client.get("/api/experiments/H06.gsm8k").json()
    assert exp["status"] == "failed" and exp["reason"], exp
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"H06.gsm8k failed: {exp['reason']}" in out.stdout


def test_cancel_stops_a_running_experiment_in_one_line(make_coordinator, monkeypatch):
    monkeypatch.setenv("FAKE_STEPS", "600")  # the fake trainer runs for a minute unless stopped
    monkeypatch.setenv("FAKE_STEP_SLEEP", "0.1")
    live = make_coordinator()
    assert hypolab("run", "H06", "--url", live.url, "--token", TOKEN, "--no-follow").returncode == 0
    live.wait(lambda: live.client.get("/api/experiments/H06.gsm8k").json().get("status") == "running", timeout=60,
              what="the experiment running")
    out = hypolab("cancel", "H06.gsm8k", "--url", live.url, "--token", TOKEN)
    assert out.returncode == 0 and out.stdout.strip().startswith("H06.gsm8k: cancelled"), out.stdout + out.stderr
    assert live.client.get("/api/experiments/H06.gsm8k").json()["status"] == "cancelled"
    unknown = hypolab("cancel", "H06.nope", "--url", live.url, "--token", TOKEN)
    assert unknown.returncode == 2 and unknown.stdout.strip().startswith("cancel: 404: ")
