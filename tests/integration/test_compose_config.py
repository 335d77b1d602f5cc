"""compose.yaml as Compose itself reads it: GPU pinning, 127.0.0.1 ports, the H07 trainer."""

import json

import pytest

from hypolab.specs import load_experiment

from ..conftest import ROOT
from .conftest import compose

pytestmark = pytest.mark.integration

H07_TREATMENT = [
    "accelerate", "launch", "--config-file", "configs/accelerate/zero3.yaml", "--num-processes", "3",
    "-m", "hypolab", "train", "--spec", "configs/experiments/math-python.yaml",
]


def config(*files, env=None):
    """Compose's resolved config; `--env-file /dev/null` keeps a developer's .env out of it."""
    args = [a for f in files for a in ("-f", f)]
    out = compose(*args, "--env-file", "/dev/null", "--profile", "train", "config", "--format", "json", env=env)
    return json.loads(out.stdout)["services"]


def gpu_ids(service):
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert len(devices) == 1 and devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    return devices[0]["device_ids"]


@pytest.fixture(scope="module")
def services(docker_engine):
    return config("compose.yaml")


def test_gpu_reservations(services):
    assert gpu_ids(services["vllm"]) == ["0"]
    assert gpu_ids(services["trainer"]) == ["1", "2", "3"]
    assert "deploy" not in services["coordinator"] or not services["coordinator"]["deploy"].get("resources")


def test_published_ports_bind_loopback_only(services):
    published = [(name, p) for name, s in services.items() for p in s.get("ports", [])]
    assert {name for name, _ in published} == {"vllm", "coordinator"}
    assert all(p["host_ip"] == "127.0.0.1" for _, p in published)


def test_trainer_runs_the_h07_treatment(services):
    trainer = services["trainer"]
    assert trainer["command"] == H07_TREATMENT
    assert trainer["profiles"] == ["train"]
    assert trainer["depends_on"]["vllm"]["condition"] == "service_healthy"
    assert trainer["ipc"] == "host" and "lab" in trainer["networks"]
    assert any(v["target"] == "/app/outputs" for v in trainer["volumes"])
    # the spec it names is math-python with exactly the GSM8K control's parameters
    resolved = load_experiment(ROOT / H07_TREATMENT[-1])
    assert resolved.control == "gsm8k" and resolved.spec.env == "math-python"
    assert {d.path for d in resolved.diff} <= {"env", "env_args"}


def test_vllm_command_and_health(services):
    vllm = services["vllm"]
    cmd = vllm["command"]
    assert cmd[:3] == ["vf-vllm", "--model", "Qwen/Qwen2.5-7B-Instruct"]
    for flag, value in [("--port", "8000"), ("--tool-call-parser", "hermes"),
                        ("--gpu-memory-utilization", "0.6"), ("--max-model-len", "8192")]:
        assert cmd[cmd.index(flag) + 1] == value
    assert "--enable-auto-tool-choice" in cmd and "--enforce-eager" in cmd
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    assert vllm["healthcheck"]["start_period"] in ("20m0s", "20m")
    assert any(v["target"] == "/root/.cache/huggingface" and v["type"] == "volume" for v in vllm["volumes"])
    assert "HF_TOKEN" in vllm["environment"]


def test_coordinator_mounts_the_socket_and_keeps_its_db(services):
    coord = services["coordinator"]
    targets = {v["target"]: v for v in coord["volumes"]}
    assert targets["/var/run/docker.sock"]["source"] == "/var/run/docker.sock"
    assert targets["/data"]["type"] == "volume"
    assert "--db" in coord["command"] and coord["command"][coord["command"].index("--db") + 1].startswith("/data/")
    assert "/api/health" in " ".join(coord["healthcheck"]["test"])


def test_settings_from_the_environment_reach_the_services(docker_engine):
    services = config("compose.yaml", env={
        "VLLM_GPU": "3", "TRAINER_GPU_1": "0", "TRAINER_GPU_2": "1", "TRAINER_GPU_3": "2",
        "MODEL": "Qwen/Qwen2.5-0.5B-Instruct", "VLLM_EXTRA_ARGS": "", "COORDINATOR_PORT": "9090",
        "NCCL_P2P_DISABLE": "1",
    })
    assert gpu_ids(services["vllm"]) == ["3"] and gpu_ids(services["trainer"]) == ["0", "1", "2"]
    assert "Qwen/Qwen2.5-0.5B-Instruct" in services["vllm"]["command"]
    assert "--enforce-eager" not in services["vllm"]["command"]
    assert services["coordinator"]["ports"][0]["published"] == "9090"
    assert services["trainer"]["environment"]["NCCL_P2P_DISABLE"] == "1"


def test_host_network_override(docker_engine):
    services = config("compose.yaml", "compose.hostnet.yaml")
    for name in ("vllm", "trainer", "coordinator"):
        assert services[name]["network_mode"] == "host"
        assert not services[name].get("ports")
    assert services["vllm"]["command"][services["vllm"]["command"].index("--host") + 1] == "127.0.0.1"
    assert services["trainer"]["environment"]["VLLM_URL"] == "http://127.0.0.1:8000"
    assert gpu_ids(services["trainer"]) == ["1", "2", "3"]  # pinning is unchanged
