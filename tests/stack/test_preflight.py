"""What `make up` decides for each kind of host, and the bad inputs it refuses."""

import socket
import subprocess

import pytest

from hypolab.stack.preflight import HostProbe, _published_ports, decide, port_free, probe_host
from hypolab.stack.settings import SettingError, StackSettings

GPU_HOST = HostProbe(docker=True, compose=["docker", "compose"], nvidia_runtime=True, gpus=[0, 1, 2, 3])


def always_free(port):
    return True


def test_gpu_host_starts_vllm_and_coordinator():
    plan = decide(StackSettings(), GPU_HOST, always_free)
    assert plan.mode == "gpu" and plan.services == ["vllm", "coordinator"] and plan.explanation == ""


def test_no_docker_runs_the_local_embedded_default():
    plan = decide(StackSettings(), HostProbe(docker_detail="the docker command is not installed"), always_free)
    assert plan.mode == "local" and plan.services == ["coordinator"]
    assert "the docker command is not installed" in plan.explanation
    assert "\n" not in plan.explanation  # one paragraph


def test_docker_without_nvidia_runtime_runs_the_coordinator_container():
    probe = HostProbe(docker=True, compose=["docker", "compose"], nvidia_runtime=False, gpus=None)
    plan = decide(StackSettings(), probe, always_free)
    assert plan.mode == "cpu" and plan.services == ["coordinator"]
    assert "no NVIDIA container runtime" in plan.explanation


def test_missing_compose_v2_falls_back_to_local():
    probe = HostProbe(docker=True, compose=None, nvidia_runtime=True, gpus=[0, 1, 2, 3])
    assert decide(StackSettings(), probe, always_free).mode == "local"


def test_gpu_ids_that_do_not_exist_are_refused():
    probe = GPU_HOST.model_copy(update={"gpus": [0, 1]})
    with pytest.raises(SettingError) as err:
        decide(StackSettings(), probe, always_free)
    assert str(err.value) == "TRAINER_GPU_2=2: no such GPU on this host (nvidia-smi lists 0,1)"


def test_port_in_use_is_refused_with_a_real_listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_free(port)
        with pytest.raises(SettingError) as err:
            decide(StackSettings(COORDINATOR_PORT=port), GPU_HOST)
        assert str(err.value).startswith(f"COORDINATOR_PORT={port}: 127.0.0.1:{port} is already in use")
        # ...unless it is our own running stack that holds it (make up twice)
        ours = GPU_HOST.model_copy(update={"stack_ports": [port]})
        assert decide(StackSettings(COORDINATOR_PORT=port), ours).mode == "gpu"
    assert port_free(port)


def test_vllm_port_only_checked_when_vllm_starts():
    busy = {8000}
    probe_cpu = HostProbe(docker=True, compose=["docker", "compose"])
    assert decide(StackSettings(), probe_cpu, lambda p: p not in busy).mode == "cpu"
    with pytest.raises(SettingError, match="VLLM_PORT=8000"):
        decide(StackSettings(), GPU_HOST, lambda p: p not in busy)


def test_published_ports_both_json_shapes():
    line = '{"Service":"coordinator","Publishers":[{"URL":"127.0.0.1","TargetPort":8080,"PublishedPort":18080}]}'
    assert _published_ports(line) == [18080]
    assert _published_ports("[" + line + "]") == [18080]
    assert _published_ports("") == []


def test_probe_reads_runtimes_gpus_and_compose(monkeypatch):
    # no toolkit hook on PATH: the runtime must be found in `docker info`
    monkeypatch.setattr("shutil.which", lambda name: None if name.startswith("nvidia-container") else f"/usr/bin/{name}")
    answers = {
        "docker info": (0, '{"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}'),
        "docker compose version": (0, "2.40.3\n"),
        "nvidia-smi --query-gpu=index": (0, "0\n1\n2\n3\n"),
        "docker compose -p": (0, ""),
    }

    def fake(cmd):
        text = " ".join(cmd)
        for prefix, (rc, out) in answers.items():
            if text.startswith(prefix):
                return subprocess.CompletedProcess(cmd, rc, out, "")
        raise AssertionError(text)

    probe = probe_host(run=fake)
    assert probe.docker and probe.nvidia_runtime and probe.gpus == [0, 1, 2, 3]
    assert probe.compose == ["docker", "compose"] and probe.compose_version == "2.40.3"


def test_probe_reports_an_unreachable_engine(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    fake = lambda cmd: subprocess.CompletedProcess(cmd, 1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n")
    probe = probe_host(run=fake)
    assert not probe.docker and "Cannot connect to the Docker daemon" in probe.docker_detail
