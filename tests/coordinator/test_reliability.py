"""The lab keeps its results through crashes, hangs and restarts (local runner, real processes)."""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from hypolab.coordinator.runners import LocalRunner
from hypolab.coordinator.scheduler import Lab
from hypolab.coordinator.store import Store
from hypolab.specs import load_hypotheses

from ..conftest import FIXTURES, TOKEN, free_port, start_coordinator_process

H09 = """
id: H09
title: reliability drill
priority: 0
order: 9
criteria: {validated: fine learns, invalidated: fine does not}
experiments:
  - {id: hang, spec: gsm8k, vary: {env_args: {fake_hang_after: 5}}, stall_timeout_s: 1.5, retries: 1}
  - {id: crash, spec: gsm8k, vary: {env_args: {fake_fail_once: true}}, retries: 1}
  - {id: fine, spec: gsm8k}
verdict:
  validated: {rule: improves, experiment: fine}
  invalidated: {rule: no_improvement, experiment: fine}
"""


def trainer_command():
    return [sys.executable, str(FIXTURES / "fake_trainer.py"), "--spec", "{spec}", "--experiment-id",
            "{experiment_id}", "--coordinator", "{coordinator}", "--output-dir", "{output_dir}"]


def test_stall_and_crash_follow_the_retry_policy(make_coordinator, tmp_path, monkeypatch):
    hyps = tmp_path / "hyps"
    hyps.mkdir()
    (hyps / "H09.yaml").write_text(H09)
    live = make_coordinator(hypotheses_dir=hyps)
    live.client.post("/api/runs", json={"hypotheses": ["H09"]})
    live.wait(lambda: live.hypothesis("H09")["status"] == "validated", timeout=120, what="H09 verdict")
    exps = {e["id"]: e for e in live.client.get("/api/experiments").json()}
    hang = exps["H09.hang"]
    assert hang["status"] == "stalled" and hang["attempts"] == 2  # stalled, retried once, stalled again
    assert "no metrics for" in hang["reason"] and "hanging in a weight sync" in hang["log_tail"]
    crash = exps["H09.crash"]  # the first attempt crashed (exit 3), the automatic retry ran
    assert crash["attempts"] == 2 and crash["status"] == "succeeded"
    assert exps["H09.fine"]["status"] in ("running", "succeeded")
    # the hung process was stopped, not left holding the GPUs
    pid = int((tmp_path / "outputs" / "H09.hang" / "pid").read_text().split()[0])
    live.wait(lambda: not _alive(pid), timeout=40, what="hung trainer stopped (SIGTERM, then SIGKILL after 10 s)")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().split()[2] != "Z"


def test_unhealthy_vllm_pauses_the_queue_and_says_why(make_coordinator, tmp_path):
    port, starts = free_port(), tmp_path / "vllm-starts"
    (tmp_path / "vllm-starts.unhealthy").write_text("")
    live = make_coordinator(vllm_command=[sys.executable, str(FIXTURES / "fake_vllm.py"), str(port), str(starts)],
                            vllm_url=f"http://127.0.0.1:{port}")
    live.client.post("/api/runs", json={"hypotheses": ["H06"]})
    live.wait(lambda: "not healthy" in live.client.get("/api/health").json()["queue"]["detail"], what="queue paused")
    health = live.client.get("/api/health").json()
    assert health["queue"]["ok"] is False
    assert health["queue"]["detail"].startswith("training waits for vLLM") and "not healthy" in health["queue"]["detail"]
    assert live.client.get("/api/experiments/H06.gsm8k").json()["status"] == "queued"
    (tmp_path / "vllm-starts.unhealthy").unlink()
    live.wait(lambda: live.client.get("/api/experiments/H06.gsm8k").json()["status"] != "queued", what="resumed")
    assert live.client.get("/api/health").json()["queue"]["ok"]


def test_a_workload_started_just_before_a_crash_is_adopted_not_relaunched(tmp_path):
    store = Store(tmp_path / "lab.sqlite")
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    lab = Lab(store, LocalRunner(tmp_path, outputs=tmp_path / "outputs"), load_hypotheses(), data_dir=tmp_path,
              trainer_command=sleeper, audit_command=sleeper, coordinator_url="http://127.0.0.1:9", token=TOKEN)
    lab.requests.submit(["H06"], None)
    lab.launcher.activate()
    exp = store.experiment("H06.gsm8k")
    assert exp.status == "queued"
    handle = lab.runner.start(lab.launcher.launch_for(exp, "trainer"))  # ... and the coordinator dies here
    try:
        reborn = Lab(store, LocalRunner(tmp_path, outputs=tmp_path / "outputs"), load_hypotheses(), data_dir=tmp_path,
                     trainer_command=sleeper, audit_command=sleeper, coordinator_url="http://127.0.0.1:9", token=TOKEN)
        adopted = store.experiment("H06.gsm8k")
        assert adopted.status == "running" and adopted.handle == handle
        assert adopted.reason == "adopted after a restart"
        reborn.tick()
        assert reborn.runner.live() == {"H06.gsm8k": handle}  # still one process, no second launch
    finally:
        os.killpg(int(handle), signal.SIGKILL)


def start_coordinator(settings: dict, settings_file, env=None):
    settings_file.write_text(json.dumps(settings))
    return start_coordinator_process(settings_file, env)


@pytest.mark.parametrize("moment", ["at-submit", "first-metrics", "mid-run"])
def test_sigkill_mid_run_loses_nothing_and_launches_nothing_twice(tmp_path, moment):
    settings = {"db_path": str(tmp_path / "lab.sqlite"), "data_dir": str(tmp_path), "runner": "local",
                "token": TOKEN, "coordinator_url": f"http://127.0.0.1:{free_port()}", "tick_interval_s": 0.1,
                "trainer_command": trainer_command()}
    env = {"FAKE_STEP_SLEEP": "0.03", "FAKE_STARTS_FILE": str(tmp_path / "starts")}
    client = httpx.Client(base_url=settings["coordinator_url"], headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=10)
    first = start_coordinator(settings, tmp_path / "settings.json", env)
    try:
        client.post("/api/runs", json={"hypotheses": ["H06"]}).raise_for_status()

        def reward_steps():
            resp = client.get("/api/experiments/H06.gsm8k/metrics", params={"name": "reward"})
            return resp.json() if resp.status_code == 200 else []

        deadline = time.monotonic() + 30
        if moment == "at-submit":
            time.sleep(0.15)
        else:
            need = 1 if moment == "first-metrics" else 40
            while len(reward_steps()) < need and time.monotonic() < deadline:
                time.sleep(0.02)
        before = {(m["step"], m["name"]): m["value"] for m in client.get("/api/experiments/H06.gsm8k/metrics").json()} \
            if moment != "at-submit" else {}
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    time.sleep(0.5)  # the trainer goes on while the coordinator is down
    second = start_coordinator(settings, tmp_path / "settings.json", env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            exp = client.get("/api/experiments/H06.gsm8k").json()
            if client.get("/api/hypotheses/H06").json()["status"] == "validated" and exp["status"] != "running":
                break
            time.sleep(0.1)
        assert client.get("/api/hypotheses/H06").json()["status"] == "validated"
        assert exp["status"] == "succeeded", exp
        assert (tmp_path / "starts").read_text().splitlines().count("H06.gsm8k") == 1  # launched exactly once
        after = {(m["step"], m["name"]): m["value"] for m in client.get("/api/experiments/H06.gsm8k/metrics").json()}
        assert all(after.get(k) == v for k, v in before.items())  # nothing stored was lost or changed
        steps = sorted({s for s, _ in after})
        assert steps == list(range(len(steps))) and len(steps) >= 20  # no gap where the coordinator was down
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()
        subprocess.run(["pkill", "-f", str(tmp_path)], check=False)
