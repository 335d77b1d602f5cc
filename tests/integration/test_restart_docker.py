"""SIGKILL the coordinator while a training container runs; restart it; nothing is lost or doubled.

Real engine, the docker runner, the CPU stand-in compose services. Repeated with the kill
at different moments: right after the first metrics, and in the middle of the run.
"""

import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from ..conftest import FIXTURES, TOKEN, free_port, start_coordinator_process

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker_image(coordinator_image):
    for stack in ("legacy", "current"):
        subprocess.run(["docker", "tag", coordinator_image, f"hypolab-test/worker:{stack}"], check=True)


def start(settings_file, env):
    return start_coordinator_process(settings_file, env, FIXTURES / "compose.cpu.yaml")


@pytest.mark.parametrize("moment", ["first-metrics", "mid-run"])
def test_restart_reattaches_to_the_running_container(worker_image, tmp_path, moment):
    import docker

    project = f"hlrestart-{moment}-{os.getpid()}"
    vllm_port = free_port()
    env = {**os.environ, "HYPOLAB_TEST_DATA": str(tmp_path), "HYPOLAB_TEST_FIXTURES": str(FIXTURES),
           "TEST_VLLM_PORT": str(vllm_port), "FAKE_STEP_SLEEP": "0.05"}
    url = f"http://127.0.0.1:{free_port()}"
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({
        "db_path": str(tmp_path / "lab.sqlite"), "data_dir": str(tmp_path), "runner": "docker", "token": TOKEN,
        "coordinator_url": url, "tick_interval_s": 0.1, "compose_project": project,
        "vllm_url": f"http://127.0.0.1:{vllm_port}",
        "trainer_command": ["python3", "/fixtures/fake_trainer.py", "--spec", "{spec}", "--experiment-id",
                            "{experiment_id}", "--coordinator", "{coordinator}", "--output-dir", "{output_dir}"],
    }))
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    engine = docker.from_env()
    first = start(settings_file, env)
    try:
        client.post("/api/runs", json={"hypotheses": ["H06"]}).raise_for_status()
        need = 1 if moment == "first-metrics" else 30
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            resp = client.get("/api/experiments/H06.gsm8k/metrics", params={"name": "reward"})
            if resp.status_code == 200 and len(resp.json()) >= need:
                break
            time.sleep(0.05)
        before = {(m["step"], m["name"]): m["value"] for m in client.get("/api/experiments/H06.gsm8k/metrics").json()}
        assert before
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    try:
        time.sleep(1.0)  # the container keeps training while nobody listens
        second = start(settings_file, env)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                exp = client.get("/api/experiments/H06.gsm8k").json()
                if client.get("/api/hypotheses/H06").json()["status"] == "validated" and exp["status"] != "running":
                    break
                time.sleep(0.1)
            assert exp["status"] == "succeeded", exp
            containers = engine.containers.list(all=True, sparse=True, filters={"label": [
                "hypolab.experiment=H06.gsm8k", f"hypolab.project={project}"]})
            assert len(containers) == 1  # re-attached, not started again
            assert (tmp_path / "starts").read_text().splitlines().count("H06.gsm8k") == 1
            after = {(m["step"], m["name"]): m["value"] for m in client.get("/api/experiments/H06.gsm8k/metrics").json()}
            assert all(after.get(k) == v for k, v in before.items())
            steps = sorted({s for s, _ in after})
            assert steps == list(range(len(steps)))
            # the log was rebuilt from the container's own log, once
            log = (tmp_path / "outputs" / "H06.gsm8k" / "coordinator.log").read_text()
            assert log.count("fake trainer: H06.gsm8k env=gsm8k") == 1
        finally:
            second.send_signal(signal.SIGKILL)
            second.wait()
    finally:
        for c in engine.containers.list(all=True, sparse=True, filters={"label": f"hypolab.project={project}"}):
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass
        for net in engine.networks.list(names=[f"{project}_lab"]):
            net.remove()
