"""The coordinator image, built from the local Debian base, started by Compose and by `make up`."""

import json
import os
import socket
import subprocess

import httpx
import pytest

from ..conftest import ROOT, free_port
from .conftest import compose

pytestmark = pytest.mark.integration


def make_up(env_file, **env):
    environ = {**os.environ, "HYPOLAB_ENV_FILE": str(env_file), **env}
    return subprocess.run(["make", "--no-print-directory", "up"], cwd=ROOT, capture_output=True, text=True,
                          env=environ, timeout=900)


def container_ids(project):
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True)
    return out.stdout.split()


def test_compose_starts_a_healthy_coordinator(coordinator_image, project_name, tmp_path):
    port = free_port()
    env = {"COORDINATOR_PORT": str(port), "COORDINATOR_BASE_IMAGE": "hypolab/base:bookworm"}
    compose("--env-file", "/dev/null", "-p", project_name, "up", "-d", "--wait", "--wait-timeout", "120",
            "coordinator", env=env)
    health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["runner"] == "docker"
    assert body["db"]["ok"] and "/data/hypolab.sqlite" in body["db"]["detail"]
    assert body["vllm"]["ok"] is False  # GPU services were left out
    assert httpx.get(f"http://127.0.0.1:{port}/docs", timeout=10).status_code == 200

    # published on loopback only, and Docker itself reports it healthy
    (cid,) = container_ids(project_name)
    inspect = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True, text=True).stdout)[0]
    bindings = inspect["HostConfig"]["PortBindings"]["8080/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    assert inspect["State"]["Health"]["Status"] == "healthy"
    assert inspect["Config"]["Image"] == coordinator_image

    # the database lives on the volume: it survives the container
    compose("-p", project_name, "restart", "coordinator", env=env)
    compose("--env-file", "/dev/null", "-p", project_name, "up", "-d", "--wait", "coordinator", env=env)
    assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).json()["db"]["ok"]


def test_make_up_starts_the_embedded_default_without_gpus(coordinator_image, project_name, tmp_path):
    port = free_port()
    env_file = tmp_path / ".env"
    env_file.write_text(f"COORDINATOR_PORT={port}\nCOORDINATOR_BASE_IMAGE=hypolab/base:bookworm\n")
    result = make_up(env_file, COMPOSE_PROJECT_NAME=project_name)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "The GPU services cannot start on this host" in result.stderr
    assert f"coordinator at http://127.0.0.1:{port}" in result.stderr
    assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).json()["status"] == "ok"
    assert len(container_ids(project_name)) == 1  # the coordinator alone, no vLLM


@pytest.mark.parametrize("bad", ["stack", "port"])
def test_make_up_refuses_bad_settings_before_starting_anything(docker_engine, project_name, tmp_path, bad):
    env_file = tmp_path / ".env"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        if bad == "stack":
            env_file.write_text("STACK=nightly\n")
            expected = "STACK=nightly: unknown stack"
        else:
            env_file.write_text(f"COORDINATOR_PORT={port}\n")
            expected = f"COORDINATOR_PORT={port}: 127.0.0.1:{port} is already in use"
        result = make_up(env_file, COMPOSE_PROJECT_NAME=project_name)
    assert result.returncode != 0
    messages = [l for l in result.stderr.splitlines() if l.startswith("make up:")]
    assert len(messages) == 1 and expected in messages[0]
    assert container_ids(project_name) == []
