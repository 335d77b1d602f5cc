"""Runners: how the coordinator starts, watches and stops a workload.

Three implementations of one small interface (`Runner`: describe, start, poll, stop, plus
the command templates it runs by default and the room it has for trainings):
- `LocalRunner`: subprocesses on this machine (the embedded default, CPU tests);
- `DockerRunner` (docker_runner.py): containers through the Docker SDK, defined by
  compose.yaml's own services;
- `RayRunner` (ray_runner.py): Ray jobs on a Ray cluster, as many at once as it has GPUs.
`build_runner(settings)` picks one; `fill_command` fills a template for one experiment.

Every workload writes its output to a log file the coordinator tails (log view, metric
lines fallback). Commands are argument lists built by the coordinator from validated
values; nothing is ever passed through a shell.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..contracts import StrictModel

if TYPE_CHECKING:
    from .config import CoordinatorSettings

Role = Literal["trainer", "audit", "vllm"]

#: `hypolab train` / `hypolab audit` arguments of every trainer and audit workload.
TRAIN_ARGS = ["train", "--spec", "{spec}", "--experiment-id", "{experiment_id}",
              "--coordinator", "{coordinator}", "--output-dir", "{output_dir}"]
AUDIT_ARGS = ["audit", "--env", "{env}", "--stack", "{stack}", "--scripted", "--json", "{output_dir}/audit.json"]


def training_gpus(config: dict[str, Any]) -> int:
    """GPUs one training needs on one node: vLLM's, then one per trainer process."""
    return 1 + int(config.get("training", {}).get("num_processes", 1))


def submission_id(lab_id: str, experiment_id: str, attempt: int) -> str:
    """One cluster job per lab, experiment and attempt: submitting it again starts nothing new."""
    return f"hypolab-{lab_id}-{experiment_id}-{attempt}"


def fill_command(template: list[str], eid: str, config: dict[str, Any], output_dir: Path, coordinator: str) -> list[str]:
    """Placeholders in a command template, from validated values only; no shell ever sees it.

    {experiment_id} {spec} {output_dir} {coordinator} {env} {stack} {model} {python}
    """
    values = {
        "experiment_id": eid, "spec": str(output_dir / "spec.yaml"), "output_dir": str(output_dir),
        "coordinator": coordinator, "env": config["env"], "stack": config["stack"], "model": config["model"],
        "python": sys.executable,
    }
    return [part.format(**values) for part in template]


class RunnerUnavailable(RuntimeError):
    """The runner's backend does not answer (a cluster's address); a one-line message."""


class Launch(StrictModel):
    """One workload to start."""

    experiment_id: str
    role: Role
    command: list[str]
    env: dict[str, str] = {}
    gpus: list[int] = []
    num_gpus: int = 0  # how many a cluster runner reserves (vLLM + trainer processes)
    submission_id: str = ""  # per lab, experiment and attempt (runners that submit jobs)
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

    def attach_logs(self, handle: str, log_path: Path) -> None:
        """Resume collecting a running workload's output after a coordinator restart."""

    def trainer_gpus(self) -> list[int]:
        return []

    def attach_lab(self, lab_id: str) -> None:
        """The lab's id (from its store), which names a cluster runner's jobs."""

    def training_slots(self, gpus: int, running: int) -> int:
        """How many more trainings of `gpus` GPUs can start now: one GPU set here."""
        return 0 if running else 1

    def infeasible(self, gpus: int) -> str:
        """Why a training of `gpus` GPUs could never start here ('' when it could)."""
        return ""

    def end_reason(self, handle: str) -> str:
        """The runner's own account of how a finished workload ended ('' when its exit code is all)."""
        return ""

    def default_commands(self) -> tuple[list[str], list[str]]:
        """Trainer and audit command templates ({placeholders} filled per experiment).

        On this machine's Python, and the trainer as a CPU rehearsal.
        """
        local = ["{python}", "-m", "hypolab"]
        return [*local, *TRAIN_ARGS, "--rehearsal"], [*local, *AUDIT_ARGS]

    def vllm_command(self) -> list[str] | None:
        """The vLLM server's command template, when this runner manages one."""
        return None

    def cluster_health(self) -> tuple[bool, str] | None:
        """A cluster runner's state in words (None: no cluster behind this runner)."""
        return None


def build_runner(settings: "CoordinatorSettings") -> Runner:
    """The runner the settings name (the docker one reads compose.yaml through Compose)."""
    if settings.runner == "docker":
        from ..paths import ROOT
        from .docker_runner import DockerRunner, load_compose_config

        config = load_compose_config(ROOT, settings.compose_files, settings.compose_project)
        return DockerRunner(config, settings.compose_project)
    if settings.runner == "ray":
        from .ray_runner import RayRunner

        return RayRunner(settings.ray_address or "http://127.0.0.1:8265", rehearsal=settings.rehearsal,
                         workdir=settings.data_dir, stop_grace_s=settings.ray_stop_grace_s,
                         runtime_env=settings.ray_runtime_env)
    return LocalRunner(settings.data_dir, settings.trainer_gpus, outputs=settings.data_dir / "outputs")


class LocalRunner(Runner):
    """Subprocesses in their own session, each under `supervise` (exit code to a file).

    Workloads outlive the coordinator: after a restart, `live()` finds them again from the
    pid files beside their logs, and `poll()` reads their exit code from the exit file.
    """

    name = "local"

    def __init__(self, workdir: Path, trainer_gpus: list[int] | None = None, outputs: Path | None = None):
        self.workdir = workdir
        self.outputs = outputs or workdir / "outputs"
        self._gpus = trainer_gpus or []
        self._procs: dict[str, subprocess.Popen] = {}
        self._files: dict[str, Path] = {}

    def trainer_gpus(self) -> list[int]:
        return list(self._gpus)

    def describe(self, launch: Launch) -> WorkloadDescription:
        return WorkloadDescription(runner=self.name, image=None, gpus=launch.gpus, command=launch.command)

    def start(self, launch: Launch) -> str:
        folder = launch.log_path.parent
        folder.mkdir(parents=True, exist_ok=True)
        exit_file = folder / "exit_code"
        exit_file.unlink(missing_ok=True)
        env = {**os.environ, **launch.env, "PYTHONUNBUFFERED": "1"}
        if launch.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in launch.gpus)
        cmd = [sys.executable, "-m", "hypolab.coordinator.supervise", str(exit_file), "--", *launch.command]
        with open(launch.log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.workdir, env=env, start_new_session=True)
        handle = str(proc.pid)
        (folder / "pid").write_text(f"{handle} {launch.experiment_id}")
        self._procs[handle] = proc
        self._files[handle] = exit_file
        return handle

    def _exit_file(self, handle: str) -> Path | None:
        if handle in self._files:
            return self._files[handle]
        for pid_file in self.outputs.glob("*/pid"):
            if pid_file.read_text().split()[0] == handle:
                return pid_file.with_name("exit_code")
        return None

    def poll(self, handle: str) -> int | None:
        exit_file = self._exit_file(handle)
        if exit_file is not None and exit_file.exists():
            proc = self._procs.pop(handle, None)
            if proc is not None:
                proc.wait(timeout=10)
            return int(exit_file.read_text().strip() or -1)
        proc = self._procs.get(handle)
        if proc is not None:
            code = proc.poll()
            return None if code is None else code  # the wrapper itself died: report how
        try:
            os.kill(int(handle), 0)
            return None
        except (ProcessLookupError, ValueError):
            return -1  # gone without an exit file: killed hard, exit code unknown
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

    def live(self) -> dict[str, str]:
        found = {}
        for pid_file in self.outputs.glob("*/pid"):
            parts = pid_file.read_text().split()
            if len(parts) == 2 and not pid_file.with_name("exit_code").exists():
                try:
                    os.kill(int(parts[0]), 0)
                except (ProcessLookupError, ValueError):
                    continue
                except PermissionError:
                    pass
                found[parts[1]] = parts[0]
        return found
