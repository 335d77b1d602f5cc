"""Preflight for `make up`: what can this host start, and is every setting usable?

`probe_host()` looks at the machine (Docker engine, Compose v2, NVIDIA runtime, GPUs);
`decide()` is a pure function of that probe and the settings, so tests can cover every
branch without a GPU. Bad settings raise `SettingError` (one line, nothing started);
a host that cannot run the GPU part gets a `Plan` for the embedded default instead.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from typing import Callable, Literal

from pydantic import BaseModel

from .settings import SettingError, StackSettings


class HostProbe(BaseModel):
    """What `make up` found on this host."""

    docker: bool = False
    docker_detail: str = ""
    compose: list[str] | None = None  # the Compose v2 command: ["docker", "compose"] or ["docker-compose"]
    compose_version: str = ""
    nvidia_runtime: bool = False
    gpus: list[int] | None = None  # indices nvidia-smi lists; None when there is no nvidia-smi
    stack_ports: list[int] = []  # ports our own running containers already publish


class Plan(BaseModel):
    """What `make up` will start."""

    mode: Literal["gpu", "cpu", "local"]
    services: list[str]
    explanation: str = ""  # the one paragraph shown when the GPU part cannot start


Runner = Callable[[list[str]], subprocess.CompletedProcess]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


def find_compose(run: Runner = _run) -> tuple[list[str] | None, str]:
    """Compose v2, as the docker CLI plugin or the standalone `docker-compose` binary."""
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        try:
            out = run([*cmd, "version", "--short"])
        except (OSError, subprocess.SubprocessError):
            continue
        version = out.stdout.strip().lstrip("v")
        if out.returncode == 0 and version.split(".")[0] == "2":
            return cmd, version
    return None, ""


def probe_host(project: str = "hypolab", run: Runner = _run) -> HostProbe:
    probe = HostProbe()
    if shutil.which("docker") is None:
        probe.docker_detail = "the docker command is not installed"
        return probe
    info = run(["docker", "info", "--format", "{{json .Runtimes}}"])
    if info.returncode != 0:
        probe.docker_detail = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return probe
    probe.docker = True
    probe.docker_detail = "engine reachable"
    try:
        runtimes = json.loads(info.stdout or "{}") or {}
    except json.JSONDecodeError:
        runtimes = {}
    hook = any(shutil.which(b) for b in ("nvidia-container-runtime-hook", "nvidia-container-toolkit"))
    probe.nvidia_runtime = "nvidia" in runtimes or hook
    probe.compose, probe.compose_version = find_compose(run)
    if shutil.which("nvidia-smi"):
        smi = run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"])
        if smi.returncode == 0:
            probe.gpus = [int(x) for x in smi.stdout.split() if x.strip().isdigit()]
    if probe.compose:
        ps = run([*probe.compose, "-p", project, "ps", "--format", "json"])
        probe.stack_ports = _published_ports(ps.stdout) if ps.returncode == 0 else []
    return probe


def _published_ports(ps_json: str) -> list[int]:
    """Ports published by running containers, from `compose ps --format json` (either shape)."""
    text = ps_json.strip()
    if not text:
        return []
    rows = json.loads(text) if text.startswith("[") else [json.loads(l) for l in text.splitlines() if l.strip()]
    return sorted({p["PublishedPort"] for r in rows for p in (r.get("Publishers") or []) if p.get("PublishedPort")})


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (we try to bind it, then let go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def decide(settings: StackSettings, probe: HostProbe, is_free: Callable[[int], bool] = port_free) -> Plan:
    """The plan for this host; raises SettingError when a setting cannot work."""
    if not probe.docker or probe.compose is None:
        why = probe.docker_detail if not probe.docker else "Compose v2 is not installed"
        plan = Plan(
            mode="local",
            services=["coordinator"],
            explanation=(
                f"No usable Docker stack here ({why}), so the GPU services (vLLM on GPU "
                f"{settings.VLLM_GPU}, the trainer on GPUs {_ids(settings.trainer_gpus)}) cannot start. "
                "Starting the embedded default instead: the coordinator as a local process on "
                "SQLite, with the local runner (CPU rehearsals and audits). Install Docker "
                "with Compose v2 and the NVIDIA Container Toolkit on a GPU host for the full stack."
            ),
        )
    elif not probe.nvidia_runtime or not probe.gpus:
        why = "no NVIDIA container runtime is installed" if not probe.nvidia_runtime else "nvidia-smi finds no GPU"
        plan = Plan(
            mode="cpu",
            services=["coordinator"],
            explanation=(
                f"The GPU services cannot start on this host: {why}. Starting the embedded "
                "default instead: the coordinator container alone (no vLLM, no trainer), which "
                "serves status and runs CPU audits. On a host with 4 NVIDIA GPUs and the NVIDIA "
                "Container Toolkit, `make up` starts vLLM on GPU "
                f"{settings.VLLM_GPU} and the trainer uses GPUs {_ids(settings.trainer_gpus)}."
            ),
        )
    else:
        for name in ("VLLM_GPU", "TRAINER_GPU_1", "TRAINER_GPU_2", "TRAINER_GPU_3"):
            gpu = getattr(settings, name)
            if gpu not in probe.gpus:
                raise SettingError(name, gpu, f"no such GPU on this host (nvidia-smi lists {_ids(probe.gpus)})")
        plan = Plan(mode="gpu", services=["vllm", "coordinator"])

    ports = {"COORDINATOR_PORT": settings.COORDINATOR_PORT}
    if plan.mode == "gpu":
        ports["VLLM_PORT"] = settings.VLLM_PORT
    for name, port in ports.items():
        if port not in probe.stack_ports and not is_free(port):
            raise SettingError(name, port, f"127.0.0.1:{port} is already in use; pick a free port in .env")
    return plan


def _ids(values: list[int]) -> str:
    return ",".join(str(v) for v in values) if values else "none"


def preflight() -> tuple[StackSettings, HostProbe, Plan]:
    """Settings from `.env`, the host probe and the plan; raises SettingError for bad input."""
    from .settings import load_settings

    settings = load_settings()
    probe = probe_host(settings.COMPOSE_PROJECT_NAME)
    return settings, probe, decide(settings, probe)
