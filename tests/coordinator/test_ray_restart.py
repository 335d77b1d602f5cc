"""The ray runner across restarts: a coordinator killed with SIGKILL, a Ray head that lost its jobs.

On the real local two-node cluster of conftest.py (marker `ray`). After a kill -9 and a
restart the coordinator re-attaches to its job (or records how it ended meanwhile) and
never submits it twice; after a head restart the experiment fails with that reason and
its retry policy resubmits it as the next attempt.
"""

import json
import signal
import sys

import httpx
import pytest

from hypolab.coordinator.runners import submission_id
from hypolab.coordinator.store import Store

from ..conftest import FIXTURES, ROOT, TOKEN, free_port
from .test_ray_runner import hypotheses, ray_jobs, status

pytestmark = pytest.mark.ray

FAKE_TRAINER = [sys.executable, str(FIXTURES / "fake_trainer.py"), "--spec", "{spec}", "--experiment-id",
                "{experiment_id}", "--coordinator", "{coordinator}", "--output-dir", "{output_dir}"]


def test_a_coordinator_killed_mid_run_ends_with_exactly_one_job_per_experiment(ray_cluster, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({
        "db_path": str(tmp_path / "lab.sqlite"), "data_dir": str(tmp_path), "runner": "ray", "token": TOKEN,
        "ray_address": ray_cluster.address, "coordinator_url": url, "tick_interval_s": 0.1,
        "hypotheses_dir": str(hypotheses(tmp_path, "H51", "H52")), "trainer_command": FAKE_TRAINER,
        # long enough that both jobs run at once even when a loaded host starts the second one late
        "ray_runtime_env": {"env_vars": {"FAKE_STEPS": "150"}}}))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    proc = start_coordinator(settings, url)
    try:
        httpx.post(f"{url}/api/runs", json={"hypotheses": ["H51", "H52"]}, headers=headers, timeout=20)
        wait_for(lambda: [status_of(url, f"{h}.run") for h in ("H51", "H52")] == ["running", "running"],
                 "both running")
        proc.send_signal(signal.SIGKILL)  # mid-run: its jobs keep running on the cluster
        proc.wait(timeout=10)
        proc = start_coordinator(settings, url)
        wait_for(lambda: all(status_of(url, f"{h}.run") == "succeeded" for h in ("H51", "H52")),
                 "both succeeded after the restart", timeout=180)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    store = Store(tmp_path / "lab.sqlite")
    lab = store.lab_id()
    for eid in ("H51.run", "H52.run"):
        assert [j.submission_id for j in ray_jobs(ray_cluster, eid)] == [submission_id(lab, eid, 1)]
        assert [s.submission_id for s in store.submissions(eid)] == [submission_id(lab, eid, 1)]
        assert store.experiment(eid).attempts == 1
        log = (tmp_path / "outputs" / eid / "coordinator.log").read_text()
        assert log.count(f"fake trainer: {eid} env=") == 1  # the job's output copied once, across the restart


def test_a_head_restart_fails_the_experiment_with_that_reason_and_retries_it(ray_cluster, make_coordinator,
                                                                             tmp_path):
    vary = ", vary: {env_args: {fake_hang_after: 3}}, retries: 1"
    live = make_coordinator(runner="ray", ray_address=ray_cluster.address, ray_stop_grace_s=3,
                            hypotheses_dir=hypotheses(tmp_path, "H53", vary=vary))
    live.client.post("/api/runs", json={"hypotheses": ["H53"]})
    live.wait(lambda: status(live, "H53.run") == "running", timeout=120, what="running")
    first = submission_id(live.lab.ws.lab_id, "H53.run", 1)
    ray_cluster.restart()
    second = submission_id(live.lab.ws.lab_id, "H53.run", 2)
    live.wait(lambda: [s.submission_id for s in live.lab.store.submissions("H53.run")] == [first, second],
              timeout=120, what="the retry submitted as attempt 2")
    failed = [e.payload for e in live.lab.store.events_since(0) if e.type == "experiment"
              and e.payload["status"] == "failed"]
    assert [f["reason"] for f in failed] == [
        f"the Ray job {first} is gone: the Ray head restarted and lost its job table"]
    assert [j.submission_id for j in ray_jobs(ray_cluster, "H53.run")] == [second]
    assert live.client.post("/api/experiments/H53.run/cancel").json()["status"] == "cancelled"


def start_coordinator(settings, url):
    """tests/fixtures/coordinator_proc.py in its own process (so that it can be SIGKILLed); its log beside."""
    import subprocess

    log = open(settings.with_name("coordinator.out"), "ab")
    proc = subprocess.Popen([sys.executable, str(FIXTURES / "coordinator_proc.py"), str(settings)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is None and httpx.get(f"{url}/api/health", timeout=2).status_code
                 in (200, 503), "the coordinator", timeout=60)
    except AssertionError:
        proc.kill()
        raise AssertionError(settings.with_name("coordinator.out").read_text()[-2000:]) from None
    return proc


def status_of(url, eid):
    return httpx.get(f"{url}/api/experiments/{eid}", timeout=20).json().get("status")


def wait_for(predicate, what, timeout=120.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
