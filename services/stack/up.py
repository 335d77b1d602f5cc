"""`make up`: preflight, then start what this host can run and wait until it is healthy.

GPU host: `vllm` + `coordinator` with Compose, waiting on their healthchecks.
Docker without GPUs: the `coordinator` container alone. No Docker: the coordinator as a
local process (the embedded default). Every branch prints the coordinator URL.
"""

from __future__ import annotations

import os
import subprocess
import sys

from rich.console import Console

from .preflight import HostProbe, Plan, preflight
from .settings import ROOT, SettingError, StackSettings, env_file_path

console = Console(stderr=True, soft_wrap=True)  # one message, one line: the terminal wraps it

#: Seconds `--wait` allows: a 7B model's first start downloads ~15 GB before loading.
GPU_WAIT_S = 1800
CPU_WAIT_S = 300


def compose_env(settings: StackSettings) -> dict[str, str]:
    """Environment for Compose: the GPU base image follows the stack's vLLM pin."""
    env = dict(os.environ)
    env.setdefault("GPU_BASE_IMAGE", f"vllm/vllm-openai:v{settings.vllm_version}")
    return env


def start(plan: Plan, probe: HostProbe, settings: StackSettings) -> int:
    url = f"http://127.0.0.1:{settings.COORDINATOR_PORT}"
    if plan.mode == "local":
        console.print(f"coordinator (local, CPU only) at [bold]{url}[/]  — Ctrl-C stops it")
        cmd = [sys.executable, "-m", "hypolab", "coordinator", "--port", str(settings.COORDINATOR_PORT),
               "--db", str(ROOT / "hypolab.sqlite"), "--runner", "local"]
        return subprocess.call(cmd, cwd=ROOT)
    assert probe.compose is not None
    wait = GPU_WAIT_S if plan.mode == "gpu" else CPU_WAIT_S
    env_file = env_file_path()
    files = ["--env-file", str(env_file)] if env_file.exists() else []
    cmd = [*probe.compose, *files, "-p", settings.COMPOSE_PROJECT_NAME, "up", "-d", "--wait",
           "--wait-timeout", str(wait), *plan.services]
    console.print(f"$ {' '.join(cmd)}")
    rc = subprocess.call(cmd, cwd=ROOT, env=compose_env(settings))
    if rc != 0:
        console.print(f"[red]compose up failed (exit {rc}).[/] `make logs` shows why; README: Troubleshooting.")
        return rc
    console.print(f"[green]healthy:[/] {', '.join(plan.services)}")
    console.print(f"coordinator at [bold]{url}[/]  (API docs: {url}/docs)")
    if plan.mode == "gpu":
        console.print(f"vLLM at http://127.0.0.1:{settings.VLLM_PORT}  — train with `docker compose run trainer`")
    return 0


def up() -> int:
    """Preflight and start; returns the process exit code."""
    try:
        settings, probe, plan = preflight()
    except SettingError as exc:
        console.print(f"[red]make up: {exc}[/]", highlight=False)
        return 2
    if plan.explanation:
        console.print(f"[yellow]{plan.explanation}[/]", highlight=False)
    return start(plan, probe, settings)
