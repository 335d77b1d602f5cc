"""`hypolab launch`: one experiment on one node, without Docker.

The vLLM/trainer pair of one experiment, as compose.yaml runs it but as plain processes:
`vf-vllm` (the installed stack's server, the spec's vLLM settings) on the first visible
GPU, then, once vLLM's `/health` answers, `accelerate launch ... hypolab train` (ZeRO-3)
on the next `training.num_processes` GPUs. Both logs are streamed with a prefix
(`[vllm] `, `[trainer] `). Both stop, vLLM last, when the trainer ends, when either
fails, and on SIGTERM/SIGINT. `--rehearsal` runs the CPU rehearsal alone (no vLLM).

This is what a Ray job runs (the coordinator's ray runner) and how a researcher without
Docker runs an experiment by hand. `plan_launch` builds the commands (plain data, shown
by `--check`); `run_workloads` runs them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from ..contracts import StrictModel
from ..endpoints import vllm_health
from ..paths import ROOT
from ..specs import SpecError, load_experiment

#: the port vLLM listens on, on this node (127.0.0.1 only: the trainer is its one client)
VLLM_PORT = 8000


class LaunchError(ValueError):
    """Bad input to `hypolab launch` (a one-line message; the CLI exits 2)."""


class Workload(StrictModel):
    """One process of the pair: its name (the log prefix), command and extra environment."""

    name: str
    command: list[str]
    env: dict[str, str] = {}


class LaunchPlan(StrictModel):
    """What `hypolab launch` starts: vLLM (none in a rehearsal), then the trainer."""

    vllm: Workload | None
    trainer: Workload
    health_url: str | None


def _tool(name: str) -> str:
    """A console script of this interpreter's environment (the venv's, not PATH's)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def visible_gpus() -> list[str] | None:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES (Ray and Slurm set it); None
    when it is unset (a node of our own), [] when it is set empty (CUDA: no GPU at all)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return None if value is None else [g.strip() for g in value.split(",") if g.strip()]


def plan_launch(spec: Path, *, rehearsal: bool = False, experiment_id: str | None = None,
                coordinator: str | None = None, output_dir: Path | None = None,
                vllm_port: int = VLLM_PORT, gpus: list[str] | None = None) -> LaunchPlan:
    """The commands for one experiment; raises LaunchError on a bad spec or too few GPUs."""
    try:
        resolved = load_experiment(spec).spec
    except SpecError as exc:
        raise LaunchError(str(exc)) from None
    train = [sys.executable, "-m", "hypolab", "train", "--spec", str(spec)]
    for flag, value in (("--experiment-id", experiment_id), ("--coordinator", coordinator),
                        ("--output-dir", output_dir)):
        if value is not None:
            train += [flag, str(value)]
    if rehearsal:
        return LaunchPlan(vllm=None, trainer=Workload(name="trainer", command=[*train, "--rehearsal"]),
                          health_url=None)
    processes = resolved.training.num_processes
    gpus = visible_gpus() if gpus is None else gpus
    if gpus is None:
        gpus = [str(i) for i in range(1 + processes)]  # a node of our own: its first GPUs
    if len(gpus) < 1 + processes:
        raise LaunchError(f"{spec}: needs {1 + processes} GPUs (1 vLLM + {processes} trainer), "
                          f"{len(gpus)} visible (CUDA_VISIBLE_DEVICES={','.join(gpus)})")
    v = resolved.vllm
    serve = [_tool("vf-vllm"), "--model", resolved.model, "--host", "127.0.0.1", "--port", str(vllm_port),
             "--enable-auto-tool-choice", "--tool-call-parser", v.tool_call_parser,
             "--gpu-memory-utilization", str(v.gpu_memory_utilization), "--max-model-len", str(v.max_model_len),
             *(["--enforce-eager"] if v.enforce_eager else [])]
    url = f"http://127.0.0.1:{vllm_port}"
    accelerate = [_tool("accelerate"), "launch", "--config-file", str(ROOT / "configs/accelerate/zero3.yaml"),
                  "--num-processes", str(processes), *train[1:], "--vllm-url", url]
    return LaunchPlan(vllm=Workload(name="vllm", command=serve, env={"CUDA_VISIBLE_DEVICES": gpus[0]}),
                      trainer=Workload(name="trainer", command=accelerate,
                                       env={"CUDA_VISIBLE_DEVICES": ",".join(gpus[1:1 + processes])}),
                      health_url=url)


class _Process:
    """A started workload: its own process group, its output streamed with a prefix."""

    def __init__(self, workload: Workload, out: IO[str], lock: threading.Lock):
        env = {**os.environ, **workload.env, "PYTHONUNBUFFERED": "1"}
        self.name = workload.name
        self.proc = subprocess.Popen(workload.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.pump = threading.Thread(target=self._stream, args=(out, lock), daemon=True)
        self.pump.start()

    def _stream(self, out: IO[str], lock: threading.Lock) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            parts = raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\r")  # progress bars
            with lock:
                out.writelines(f"[{self.name}] {part.rstrip()}\n" for part in parts if part.strip())
                out.flush()

    def stop(self, grace_s: float) -> int:
        """SIGTERM to its group, SIGKILL after `grace_s`; its exit code."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        code = self.proc.wait()
        self.pump.join(timeout=5)
        return code


def run_workloads(plan: LaunchPlan, *, out: IO[str] | None = None, health_timeout_s: float = 1800.0,
                  grace_s: float = 30.0) -> int:
    """Run the pair: vLLM, its health, the trainer; stop both (vLLM last). The exit code.

    0 when the trainer succeeded; the trainer's code when it failed; 1 when vLLM died or
    never became healthy; 143 when stopped by SIGTERM (or SIGINT).
    """
    out = out or sys.stdout
    lock, stopping = threading.Lock(), threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
        previous = {s: signal.signal(s, lambda *_: stopping.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    vllm = trainer = None
    try:
        if plan.vllm is not None:
            vllm = _Process(plan.vllm, out, lock)
            if not _wait_healthy(vllm, plan.health_url or "", health_timeout_s, stopping, out, lock):
                return 143 if stopping.is_set() else 1
        trainer = _Process(plan.trainer, out, lock)
        while trainer.proc.poll() is None and not stopping.is_set():
            if vllm is not None and vllm.proc.poll() is not None:
                _say(out, lock, f"vLLM exited ({vllm.proc.returncode}) while training: stopping the trainer")
                trainer.stop(grace_s)
                return 1
            time.sleep(0.2)
        code = trainer.stop(grace_s)
        return 143 if stopping.is_set() else code
    finally:
        if trainer is not None:
            trainer.stop(grace_s)
        if vllm is not None:
            vllm.stop(grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_healthy(vllm: _Process, url: str, timeout_s: float, stopping: threading.Event, out: IO[str],
                  lock: threading.Lock) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stopping.is_set():
        if vllm.proc.poll() is not None:
            _say(out, lock, f"vLLM exited ({vllm.proc.returncode}) before it was healthy")
            return False
        if vllm_health(url, timeout_s=2)[0]:
            _say(out, lock, f"vLLM healthy at {url}: starting the trainer")
            return True
        time.sleep(1.0)
    if not stopping.is_set():
        _say(out, lock, f"vLLM not healthy at {url} after {timeout_s:.0f} s")
    return False


def _say(out: IO[str], lock: threading.Lock, line: str) -> None:
    with lock:
        out.write(f"[launch] {line}\n")
        out.flush()
