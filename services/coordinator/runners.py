"""Runners: how the coordinator starts, watches and stops a workload.

Two implementations of one small interface:
- `LocalRunner`: subprocesses on this machine (the embedded default, CPU tests);
- `DockerRunner` (docker_runner.py): containers through the Docker SDK, defined by
  compose.yaml's own services.

Every workload writes its output to a log file the coordinator tails (log view, metric
lines fallback). Commands are argument lists built by the coordinator from validated
values; nothing is ever passed through a shell.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

from ..contracts import StrictModel

Role = Literal["trainer", "audit", "vllm"]


class Launch(StrictModel):
    """One workload to start."""

    experiment_id: str
    role: Role
    command: list[str]
    env: dict[str, str] = {}
    gpus: list[int] = []
    stack: str = "legacy"
    log_path: Path


class WorkloadDescription(StrictModel):
    """What `hypolab plan` shows for a workload: where and how it would run."""

    runner: str
    image: str | None
    gpus: list[int]
    command: list[str]


class Runner(ABC):
    name: str

    @abstractmethod
    def describe(self, launch: Launch) -> WorkloadDescription: ...

    @abstractmethod
    def start(self, launch: Launch) -> str:
        """Start the workload; returns a handle (pid, container id)."""

    @abstractmethod
    def poll(self, handle: str) -> int | None:
        """None while running, else the exit code."""

    @abstractmethod
    def stop(self, handle: str, grace_s: float = 30.0) -> None:
        """Ask it to stop (SIGTERM), then kill it after `grace_s`."""

    def live(self) -> dict[str, str]:
        """experiment id -> handle of workloads still running (re-attach after a restart)."""
        return {}

    def trainer_gpus(self) -> list[int]:
        return []


class LocalRunner(Runner):
    """Subprocesses with their own process group, output appended to the log file."""

    name = "local"

    def __init__(self, workdir: Path, trainer_gpus: list[int] | None = None):
        self.workdir = workdir
        self._gpus = trainer_gpus or []
        self._procs: dict[str, subprocess.Popen] = {}

    def trainer_gpus(self) -> list[int]:
        return list(self._gpus)

    def describe(self, launch: Launch) -> WorkloadDescription:
        return WorkloadDescription(runner=self.name, image=None, gpus=launch.gpus, command=launch.command)

    def start(self, launch: Launch) -> str:
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **launch.env, "PYTHONUNBUFFERED": "1"}
        if launch.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in launch.gpus)
        with open(launch.log_path, "ab") as log:
            proc = subprocess.Popen(launch.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.workdir, env=env, start_new_session=True)
        self._procs[str(proc.pid)] = proc
        return str(proc.pid)

    def poll(self, handle: str) -> int | None:
        proc = self._procs.get(handle)
        if proc is not None:
            return proc.poll()
        # not our child (the coordinator restarted): alive or gone, exit code unknown
        try:
            os.kill(int(handle), 0)
            return None
        except (ProcessLookupError, ValueError):
            return -1
        except PermissionError:
            return None

    def stop(self, handle: str, grace_s: float = 30.0) -> None:
        try:
            os.killpg(int(handle), signal.SIGTERM)
        except (ProcessLookupError, ValueError, PermissionError):
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if self.poll(handle) is not None:
                return
            time.sleep(0.1)
        try:
            os.killpg(int(handle), signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc = self._procs.get(handle)
        if proc is not None:
            proc.wait(timeout=10)
