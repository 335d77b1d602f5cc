"""The docker runner against the real engine: experiment containers from compose's services.

A CPU stand-in compose file (tests/fixtures/compose.cpu.yaml) gives the trainer and vLLM
services small local images; the coordinator runs here with `--runner docker` and starts
one container per experiment through the Docker SDK, labelled with its experiment.
"""

import subprocess

import pytest

from hypolab.coordinator.docker_runner import DockerRunner, load_compose_config

from ..conftest import FIXTURES, ROOT, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker_image(coordinator_image):
    """The coordinator image (Python, httpx, PyYAML) tagged as the test's trainer/vLLM image."""
    for stack in ("legacy", "current"):
        subprocess.run(["docker", "tag", coordinator_image, f"hypolab-test/worker:{stack}"], check=True)
    return "hypolab-test/worker"


def test_docker_runner_runs_h06_in_labelled_containers(worker_image, make_coordinator, tmp_path, monkeypatch):
    project = f"hltest-{tmp_path.name[-8:].lower().replace('_', '-')}"
    vllm_port = free_port()
    monkeypatch.setenv("HYPOLAB_TEST_DATA", str(tmp_path))
    monkeypatch.setenv("HYPOLAB_TEST_FIXTURES", str(FIXTURES))
    monkeypatch.setenv("TEST_VLLM_PORT", str(vllm_port))
    config = load_compose_config(ROOT, [str(FIXTURES / "compose.cpu.yaml")], project)
    runner = DockerRunner(config, project)
    assert runner.vllm_command()[-1] == "{model}"
    try:
        live = make_coordinator(
            runner="docker", vllm_url=f"http://127.0.0.1:{vllm_port}",
            trainer_command=["python3", "/fixtures/fake_trainer.py", "--spec", "{spec}", "--experiment-id",
                             "{experiment_id}", "--coordinator", "{coordinator}", "--output-dir", "{output_dir}"],
            audit_command=["python3", "/fixtures/fake_audit.py", "--env", "{env}", "--stack", "{stack}",
                           "--json", "{output_dir}/audit.json"],
            runner_instance=runner,
        )
        live.client.post("/api/runs", json={"hypotheses": ["H06"]})
        live.wait(lambda: live.hypothesis("H06")["status"] == "validated", timeout=180, what="H06 validated")
        live.wait(lambda: live.client.get("/api/experiments/H06.gsm8k").json()["status"] != "running",
                  timeout=60, what="trainer container stopped")
        exp = live.client.get("/api/experiments/H06.gsm8k").json()
        assert exp["status"] == "succeeded"
        assert exp["container"] == "hypolab-test/worker:legacy"
        assert "env=gsm8k stack=legacy" in exp["log_tail"]  # streamed from the container's logs
        steps = sorted({m["step"] for m in live.client.get("/api/experiments/H06.gsm8k/metrics",
                                                            params={"name": "reward"}).json()})
        assert steps == list(range(len(steps))) and len(steps) >= 21
        if len(steps) < 120:  # FAKE_STEPS from the compose service's environment
            assert exp["reason"].startswith("stopped early: H06 validated")  # the verdict stopped the container

        import docker

        client = docker.from_env()
        (trainer,) = client.containers.list(all=True, filters={"label": ["hypolab.experiment=H06.gsm8k",
                                                                         f"hypolab.project={project}"]})
        assert trainer.labels["hypolab.project"] == project and trainer.labels["hypolab.role"] == "trainer"
        assert trainer.attrs["HostConfig"]["NetworkMode"] == "host" and trainer.attrs["HostConfig"]["IpcMode"] == "host"
        assert trainer.attrs["Config"]["Cmd"][1] == "/fixtures/fake_trainer.py"
        # vLLM was started from compose's vllm service with the experiment's model, on its port
        (vllm,) = client.containers.list(filters={"label": [f"hypolab.project={project}", "hypolab.role=vllm"]})
        assert (tmp_path / "vllm-starts").read_text().split() == ["--model", "Qwen/Qwen2.5-7B-Instruct"]
        assert vllm.attrs["HostConfig"]["PortBindings"]["8000/tcp"] == [{"HostIp": "127.0.0.1",
                                                                         "HostPort": str(vllm_port)}]
    finally:
        import docker

        if "live" in locals():
            live.close()  # no scheduler may start containers while they are removed
        client = docker.from_env()
        for c in client.containers.list(all=True, sparse=True, filters={"label": f"hypolab.project={project}"}):
            try:
                c.remove(force=True)
            except docker.errors.NotFound:  # already gone
                pass
        subprocess.run(["docker", "network", "rm", f"{project}_lab"], capture_output=True)
