"""The Ray runner: each experiment is one Ray job on a real Ray cluster (Ray's Jobs API).

Ray places the job; we schedule nothing ourselves. A training is `hypolab launch` (the
vLLM/trainer pair of one experiment, on one node) with `entrypoint_num_gpus` = 1 vLLM +
the trainer's processes, so Ray puts the whole pair on one node and gives it
CUDA_VISIBLE_DEVICES; an audit is `hypolab audit` with no GPU. Every job has a
deterministic `submission_id` (lab, experiment, attempt; `submission_id()`): submitting
it again attaches to the job Ray already has instead of starting a second one. Its
`metadata` names the lab and the experiment, so `live()` finds the lab's jobs after a
coordinator restart.

Every job gets the runtime env the settings name (`--ray-runtime-env`: env_vars,
working_dir, py_modules, ...), checked before the coordinator starts (Ray's field names
and its `RuntimeEnv` types; no field that swaps the interpreter, since the entrypoint is
the checkout's own), with our variables added to its `env_vars` (the API token as a
private file, not in plain sight). A runtime env that fails on the node fails the job
before our entrypoint runs: the experiment ends with Ray's reason (`ray_reason()` keeps
the first line and the exception of Ray's traceback).

Status, logs and stop go through the same `JobSubmissionClient`: `poll()` maps Ray's
status to an exit code (and `end_reason()` keeps Ray's own message); a thread per job
copies its logs into the experiment's log (resuming where it stopped after a restart);
`stop()` asks Ray to stop the job (SIGTERM to the entrypoint and its children, SIGKILL
after `RAY_JOB_STOP_WAIT_TIME_S`, which each job gets as the stop grace). A job Ray no
longer knows (its head restarted and lost the job table) ends with that reason.

Capacity comes from the dashboard's per-node logical resources, which lag a few seconds
behind placements: `training_slots()` counts on each node the larger of what the
dashboard reports used and what our own running jobs there hold, then how many more
trainings fit, less one per job still pending; `infeasible()` says when no node has
enough GPUs at all.
"""

from __future__ import annotations

import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .runners import AUDIT_ARGS, TRAIN_ARGS, Launch, Runner, RunnerUnavailable, WorkloadDescription, submission_id

TERMINAL = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 143}
LOST = "the Ray job {sid} is gone: the Ray head restarted and lost its job table"


class RayUnreachable(RunnerUnavailable):
    """No Ray dashboard (Jobs API) answers at the address."""


class BadRuntimeEnv(RunnerUnavailable):
    """The runtime env the settings name is not one Ray accepts, or not one our jobs would get."""


class NotADashboard(RunnerUnavailable):
    """The address is not the dashboard's URL (the Jobs API): a GCS address, ray://, auto."""


#: runtime env fields that change the interpreter: our entrypoint is the checkout's
#: `.venv/bin/python` (an absolute path on every node), so they would never reach hypolab
INTERPRETER_FIELDS = ("pip", "uv", "conda", "py_executable", "container", "image_uri")


def dashboard_url(address: str) -> str:
    """The Jobs API's base URL; anything else is refused in one line (Ray's own client would
    hang on a GCS address, or accept it and fail at the first submission)."""
    parts = urlsplit(address.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotADashboard(f"--ray-address {address}: not the Ray dashboard's URL; give http://HEAD:8265 "
                            "(the Jobs API), not the GCS address HEAD:6379, ray:// or auto")
    return address.strip().rstrip("/")


def checked_runtime_env(runtime_env: dict[str, Any]) -> dict[str, Any]:
    """The runtime env as Ray's own `RuntimeEnv` validates it (types), with Ray's field names
    only, and none that would bypass our interpreter (INTERPRETER_FIELDS)."""
    from ray.runtime_env import RuntimeEnv

    usable = sorted(f for f in RuntimeEnv.known_fields if not f.startswith("_") and f not in INTERPRETER_FIELDS)
    for name in runtime_env:
        if name in INTERPRETER_FIELDS:
            raise BadRuntimeEnv(f"--ray-runtime-env: {name} would not reach hypolab: its jobs run the checkout's "
                                ".venv interpreter on each node (install packages there)")
        if name not in RuntimeEnv.known_fields:
            raise BadRuntimeEnv(f"--ray-runtime-env: unknown field {name!r}; Ray's are: {', '.join(usable)}")
    try:
        RuntimeEnv(**runtime_env)
    except (TypeError, ValueError) as exc:
        raise BadRuntimeEnv(f"--ray-runtime-env: {exc}") from None
    return dict(runtime_env)


def _client(address: str) -> Any:
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError) as exc:
        raise RayUnreachable(f"no Ray cluster answers at {address} ({type(exc).__name__})") from None


class RayRunner(Runner):
    name = "ray"

    def __init__(self, address: str, *, rehearsal: bool = False, workdir: Path | None = None,
                 stop_grace_s: float = 30.0, runtime_env: dict[str, Any] | None = None):
        self.address = dashboard_url(address)
        self.runtime_env = checked_runtime_env(runtime_env or {})
        self.client = _client(self.address)
        self.rehearsal, self.workdir, self.stop_grace_s = rehearsal, workdir, stop_grace_s
        self.lab_id = ""
        self._status: dict[str, str] = {}  # last status seen per submission (pending ones hold no GPUs yet)
        self._placed: dict[str, tuple[str, float]] = {}  # running submission -> (node id, GPUs)
        self._messages: dict[str, str] = {}
        self._tails: dict[str, _LogTail] = {}

    def attach_lab(self, lab_id: str) -> None:
        self.lab_id = lab_id

    # -- commands ----------------------------------------------------------------------

    def default_commands(self) -> tuple[list[str], list[str]]:
        """`hypolab launch` (the pair on one node) and `hypolab audit`, on this interpreter's path."""
        base = [sys.executable, "-m", "hypolab"]
        launch = [*base, "launch", *TRAIN_ARGS[1:], *(["--rehearsal"] if self.rehearsal else [])]
        return launch, [*base, *AUDIT_ARGS]

    def describe(self, launch: Launch) -> WorkloadDescription:
        sid = launch.submission_id or submission_id(self.lab_id, launch.experiment_id, 1)
        return WorkloadDescription(runner=f"ray ({self.address})", image=f"Ray job {sid}", gpus=[],
                                   command=launch.command)

    # -- capacity ----------------------------------------------------------------------

    def nodes(self) -> dict[str, tuple[float, float]]:
        """Node id -> (used, total) logical GPUs of every alive node, from the dashboard."""
        try:
            resp = httpx.get(f"{self.address}/nodes", params={"view": "summary"}, timeout=10)
            resp.raise_for_status()
            logical = resp.json()["data"]["nodeLogicalResources"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise RayUnreachable(f"Ray at {self.address}: no node list ({type(exc).__name__})") from None
        nodes = {}
        for node, text in logical.items():
            gpu = next((line.split()[0] for line in text.splitlines() if line.endswith(" GPU")), "0/0")
            used, total = gpu.split("/")
            nodes[node] = (float(used), float(total))
        return nodes

    def cluster_health(self) -> tuple[bool, str]:
        try:
            nodes = self.nodes()
        except RayUnreachable as exc:
            return False, str(exc)
        used = sum(u for u, _ in nodes.values())
        total = sum(t for _, t in nodes.values())
        return bool(nodes), (f"Ray at {self.address}: {len(nodes)} node{'s' * (len(nodes) != 1)}, "
                             f"{total - used:g} of {total:g} GPUs free")

    def infeasible(self, gpus: int) -> str:
        nodes = self.nodes()
        if not nodes:  # a head (re)starting: no raylet has registered yet
            raise RayUnreachable(f"Ray at {self.address}: no node alive yet")
        largest = max(total for _, total in nodes.values())
        if gpus > largest:
            return (f"needs {gpus} GPUs on one node (1 vLLM + {gpus - 1} trainer); the largest node of the "
                    f"Ray cluster at {self.address} has {largest:g}")
        return ""

    def training_slots(self, gpus: int, running: int) -> int:
        pending = sum(1 for s in self._status.values() if s == "PENDING")
        ours: dict[str, float] = {}
        for sid, (node, held) in self._placed.items():
            if self._status.get(sid) == "RUNNING":
                ours[node] = ours.get(node, 0.0) + held
        free = [total - max(used, ours.get(node, 0.0)) for node, (used, total) in self.nodes().items()]
        return sum(int(f // gpus) for f in free if f > 0) - pending

    # -- jobs ---------------------------------------------------------------------------

    def start(self, launch: Launch) -> str:
        sid = launch.submission_id or submission_id(self.lab_id, launch.experiment_id, 1)
        entry = shlex.join(launch.command)
        if self.workdir is not None:
            entry = f"cd {shlex.quote(str(self.workdir))} && {entry}"
        env = {**self.runtime_env.get("env_vars", {}), **self._private(launch.env), "PYTHONUNBUFFERED": "1",
               "RAY_JOB_STOP_WAIT_TIME_S": str(int(self.stop_grace_s))}
        try:
            self.client.submit_job(
                entrypoint=entry, submission_id=sid, runtime_env={**self.runtime_env, "env_vars": env},
                entrypoint_num_gpus=launch.num_gpus, entrypoint_num_cpus=0,
                metadata={"hypolab_lab": self.lab_id, "hypolab_experiment": launch.experiment_id,
                          "hypolab_role": launch.role, "hypolab_gpus": str(launch.num_gpus)})
        except (RuntimeError, ValueError, TypeError) as exc:  # Ray's answer, or its client's own checks
            if not isinstance(exc, RuntimeError) or "already exists" not in str(exc):
                raise RuntimeError(_ray_error(exc)) from None
            # submitted before (a restart between submitting and recording it): attach
        self._status[sid] = "PENDING"
        self.attach_logs(sid, launch.log_path)
        return sid

    def _private(self, env: dict[str, str]) -> dict[str, str]:
        """The job's variables without the API token in plain sight: Ray shows every job's
        runtime env to whoever reaches its dashboard. The token goes to a file only the
        coordinator's user can read, in the data directory the nodes share."""
        token = env.get("HYPOLAB_TOKEN")
        if not token or self.workdir is None:
            return env
        path = self.workdir / ".hypolab" / "token"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != token:
            path.touch(mode=0o600)
            path.write_text(token)
        return {**{k: v for k, v in env.items() if k != "HYPOLAB_TOKEN"}, "HYPOLAB_TOKEN_FILE": str(path)}

    def poll(self, handle: str) -> int | None:
        try:
            info = self.client.get_job_info(handle)
        except RuntimeError as exc:
            if "does not exist" in str(exc):
                self._messages[handle] = LOST.format(sid=handle)
                self._status[handle] = "LOST"
                tail = self._tails.pop(handle, None)
                if tail is not None:
                    tail.finish()
                return -1
            return None  # the head is away for now: ask again next tick
        except (ConnectionError, OSError):
            return None
        status = str(getattr(info.status, "value", info.status))
        self._status[handle] = status
        if info.driver_node_id:
            self._placed[handle] = (info.driver_node_id, _gpus_of(info))
        if status not in TERMINAL:
            return None
        tail = self._tails.pop(handle, None)
        if tail is not None:
            tail.finish()
        if status == "FAILED":
            self._messages[handle] = f"Ray: {ray_reason(info.message or 'job failed')}"[:500]
            code = info.driver_exit_code
            return code if code not in (None, 0) else 1
        if status == "STOPPED":
            self._messages[handle] = "Ray: job stopped"
        return TERMINAL[status]

    def end_reason(self, handle: str) -> str:
        return self._messages.get(handle, "")

    def stop(self, handle: str, grace_s: float = 30.0) -> None:
        """Ray stops the job (SIGTERM, then SIGKILL after the job's stop grace); wait for it."""
        try:
            self.client.stop_job(handle)
        except (RuntimeError, ConnectionError, OSError):
            return
        deadline = time.monotonic() + grace_s + 10
        while time.monotonic() < deadline:
            if self.poll(handle) is not None:
                return
            time.sleep(0.2)

    def live(self) -> dict[str, str]:
        """This lab's jobs Ray still runs or has pending: experiment id -> submission id."""
        found = {}
        for job in self.client.list_jobs():
            meta = job.metadata or {}
            status = str(getattr(job.status, "value", job.status))
            if meta.get("hypolab_lab") == self.lab_id and status not in TERMINAL and job.submission_id:
                found[meta.get("hypolab_experiment", "")] = job.submission_id
                self._status[job.submission_id] = status
        return found

    def attach_logs(self, handle: str, log_path: Path) -> None:
        if handle not in self._tails:
            self._tails[handle] = _LogTail(self.client, handle, log_path)
            self._tails[handle].start()


def _gpus_of(job: Any) -> float:
    """The GPUs a job of ours holds (its metadata says; Ray's job details do not)."""
    try:
        return float((job.metadata or {}).get("hypolab_gpus", 0))
    except ValueError:
        return 0.0


def ray_reason(message: str) -> str:
    """Ray's message in one line: its first line and, after a traceback or logs, the last one
    (the exception, or the last thing the job printed)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return "job failed"
    return lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"


def _ray_error(exc: Exception) -> str:
    """Ray's answer without the server's traceback: its last line."""
    lines = [line for line in str(exc).splitlines() if line.strip() and line.strip() != "."]
    return f"Ray: {lines[-1].strip() if lines else type(exc).__name__}"[:500]


class _LogTail(threading.Thread):
    """Copies a job's logs into the experiment's log, once a second, until the job ends.

    How much it copied is kept beside the log (`<submission>.logpos`), so a restarted
    coordinator resumes there instead of copying the job's output twice.
    """

    def __init__(self, client: Any, sid: str, log_path: Path):
        super().__init__(name=f"ray-logs-{sid}", daemon=True)
        self.client, self.sid, self.log_path = client, sid, log_path
        self.pos_file = log_path.with_name(f"{sid}.logpos")
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(1.0):
            self._copy()
        self._copy()

    def finish(self) -> None:
        """The job ended: copy what is left, then stop."""
        self._done.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=20)

    def _copy(self) -> None:
        try:
            text = self.client.get_job_logs(self.sid)
        except (RuntimeError, ConnectionError, OSError):
            return
        written = int(self.pos_file.read_text() or 0) if self.pos_file.exists() else 0
        if len(text) <= written:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(text[written:])
        self.pos_file.write_text(str(len(text)))
