"""Access and containment: tokens, private reads, ids that cannot escape, images that cannot be chosen."""

import httpx
import pytest

from hypolab.coordinator.docker_runner import DockerRunner
from hypolab.coordinator.runners import Launch




def test_private_reads_need_the_token_but_health_stays_open(make_coordinator):
    live = make_coordinator(private_reads=True)
    with httpx.Client(base_url=live.url, timeout=10) as anonymous:
        assert anonymous.get("/api/hypotheses").status_code == 401
        assert anonymous.get("/api/experiments").status_code == 401
        assert anonymous.get("/api/health").status_code == 200  # Docker's healthcheck has no token
    assert live.client.get("/api/hypotheses").status_code == 200


@pytest.mark.parametrize("eid", ["..%2F..%2Fetc%2Fpasswd", "H06.gsm8k%2F..%2F..%2Flab.sqlite", "%2e%2e", "H06.gsm8k;id"])
def test_experiment_ids_cannot_reach_files(make_coordinator, eid):
    live = make_coordinator()
    live.client.post("/api/runs", json={"hypotheses": ["H06"]})
    for suffix in ("", "/logs", "/metrics"):
        resp = live.client.get(f"/api/experiments/{eid}{suffix}")
        assert resp.status_code == 404, (eid, suffix, resp.text)
        assert "root:" not in resp.text and "SQLite" not in resp.text


def test_unknown_hypothesis_in_a_run_is_refused_before_anything_runs(make_coordinator):
    live = make_coordinator()
    resp = live.client.post("/api/runs", json={"hypotheses": ["H06; rm -rf /"]})
    assert resp.status_code == 404
    assert live.client.get("/api/experiments").json() == []


def test_docker_runner_only_runs_the_projects_images():
    config = {"services": {"trainer": {"image": "hypolab/trainer:legacy", "command": ["true"]},
                           "vllm": {"image": "hypolab/vllm:legacy", "command": ["true"]}}}
    runner = DockerRunner(config, "p", client=object())
    assert runner.image_for("trainer", "current") == "hypolab/trainer:current"
    assert runner.image_for("vllm", "legacy") == "hypolab/vllm:legacy"
    with pytest.raises(ValueError, match="unknown stack"):
        runner.image_for("trainer", "evil/image")
    launch = Launch(experiment_id="H06.gsm8k", role="trainer", command=["python3", "-m", "hypolab", "train"],
                    log_path="/tmp/x.log", stack="legacy")
    kwargs = runner.container_kwargs(launch)
    assert kwargs["image"] == "hypolab/trainer:legacy" and kwargs["command"] == launch.command
    assert kwargs["labels"] == {"hypolab.project": "p", "hypolab.experiment": "H06.gsm8k", "hypolab.role": "trainer"}
