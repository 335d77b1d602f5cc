"""The lab's brain: sequence hypotheses, run their experiments, render verdicts.

`Lab` assembles the scheduler's parts, one job each, around a shared `Workspace` (the
store, the runner, the plans):

- `Intake` (intake.py): the HTTP routes' requests — submit, cancel, retry, ingest, attach;
- `Reaper` (reaper.py): finished workloads, metric lines in logs, the retry policy;
- `StallWatch` (stalls.py): trainings silent past their stall timeout;
- `Judge` (judge.py): verdicts of hypotheses under test, early stops;
- `Launcher` (launcher.py): the queue — hypotheses to experiments, experiments to workloads;
- `VllmServer` (vllm.py): the vLLM server for the next training.

`tick()` is one scheduling step, repeated by a background thread: reap, find stalls,
judge, activate, launch. Requests and ticks take the lab's lock; nothing that waits for a
workload to stop runs under it.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ...contracts import ExperimentStatus, HypothesisSpec, HypothesisStatus, Verdict
from ..planner import PlannedExperiment, plan_hypothesis
from ..runners import Runner
from ..store import Store
from .intake import Intake
from .judge import Judge
from .launcher import Launcher
from .reaper import Reaper
from .stalls import StallWatch
from .vllm import VllmServer
from .workspace import Workspace

log = logging.getLogger("hypolab.coordinator")


class Lab:
    def __init__(
        self,
        store: Store,
        runner: Runner,
        hypotheses: dict[str, HypothesisSpec],
        data_dir: Path,
        trainer_command: list[str],
        audit_command: list[str],
        coordinator_url: str,
        token: str,
        vllm_command: list[str] | None = None,
        vllm_url: str | None = None,
        experiments_dir: Path | None = None,
        max_parallel_audits: int = 2,
        rehearsal: bool = False,
    ):
        kwargs = {"experiments_dir": experiments_dir} if experiments_dir else {}
        plans = {hid: plan_hypothesis(h, hypotheses, **kwargs) for hid, h in hypotheses.items()}
        self.ws = Workspace(store, runner, hypotheses, plans, data_dir, lab_id=store.lab_id())
        runner.attach_lab(self.ws.lab_id)
        self._lock = threading.RLock()
        self.vllm = VllmServer(self.ws, vllm_command, vllm_url, coordinator_url)
        self.requests = Intake(self.ws, self._lock)
        self.reaper = Reaper(self.ws, on_training_failed=self.vllm.restart_before_next_training)
        self.stalls = StallWatch(self.ws, retry=self.reaper.maybe_retry, on_stall=self.vllm.restart_before_next_training)
        self.judge = Judge(self.ws)
        self.launcher = Launcher(self.ws, self.vllm, trainer_command=trainer_command, audit_command=audit_command,
                                 coordinator_url=coordinator_url, token=token, rehearsal=rehearsal,
                                 max_parallel_audits=max_parallel_audits)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for hid in hypotheses:
            if store.hypothesis(hid) is None:
                store.set_hypothesis(hid, HypothesisStatus.untested, queued=False)
        self.recover()

    # -- what the routes read --------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self.ws.store

    @property
    def runner(self) -> Runner:
        return self.ws.runner

    @property
    def hypotheses(self) -> dict[str, HypothesisSpec]:
        return self.ws.hypotheses

    @property
    def plans(self) -> dict[str, list[PlannedExperiment]]:
        return self.ws.plans

    @property
    def queue_paused(self) -> str:
        """Why trainings wait ('' when they do not), shown by /api/health."""
        return self.launcher.paused

    def log_path(self, eid: str) -> Path:
        return self.ws.log_path(eid)

    def planned(self, eid: str) -> PlannedExperiment | None:
        return self.ws.planned(eid)

    def verdict_of(self, hid: str) -> Verdict:
        return self.judge.verdict_of(hid)

    # -- restart ---------------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: re-attach to workloads still running, adopt ones started just before a crash.

        Nothing is launched twice: an experiment still `queued` whose workload exists (the
        coordinator died between starting it and recording that) is adopted, not restarted.
        Workloads that ended meanwhile are reaped by the next tick from their exit codes.
        """
        live = self.runner.live()
        for exp in self.store.experiments(status=ExperimentStatus.running):
            if exp.handle and self.runner.poll(exp.handle) is None:
                self.runner.attach_logs(exp.handle, self.log_path(exp.id))
                log.info("re-attached to %s (%s %s)", exp.id, self.runner.name, exp.handle)
        for exp in self.store.experiments(status=ExperimentStatus.queued):
            handle = live.get(exp.id)
            if handle:
                log.info("adopted %s: its %s workload %s started before the restart", exp.id, self.runner.name,
                         handle)
                with self.store.transaction():
                    self.store.update_experiment(exp.id, status=ExperimentStatus.running, handle=handle,
                                                 started_at=time.time(), attempts=exp.attempts + 1,
                                                 reason="adopted after a restart")
                    self.launcher.record_submission(exp.id, handle, exp.attempts + 1)
                self.runner.attach_logs(handle, self.log_path(exp.id))

    # -- the scheduling step ---------------------------------------------------------------

    def tick(self) -> None:
        with self._lock:
            self.reaper.reap()
            self.stalls.check()
            self.judge.judge()
            self.launcher.activate()
            self.launcher.launch()

    def start_background(self, interval_s: float = 0.5) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:  # keep scheduling; the error is in the log
                    log.exception("scheduler tick failed")
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="hypolab-scheduler", daemon=True)
        self._thread.start()

    def stop_background(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
