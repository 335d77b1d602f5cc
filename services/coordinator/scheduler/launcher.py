"""The queue: hypotheses become experiments, experiments become workloads.

`activate()` starts hypotheses whose `after` ids all have a verdict (priority, then
order), creating their experiments as `queued`. `launch()` starts work: audits on CPU
alongside (at most `max_parallel_audits`), and trainings in queue order as long as the
runner has room (`Runner.training_slots`: one GPU set for the local and docker runners,
the cluster's free GPUs for Ray) and vLLM serves the model and stack (when the lab
manages one). A training no node could ever hold fails with the runner's reason.
"""

from __future__ import annotations

import time

import yaml

from ...contracts import DECIDED, ExperimentStatus, HypothesisStatus, Verdict
from ..runners import Launch, Role, fill_command, submission_id, training_gpus
from ..store import ExperimentRow, SubmissionRow
from .vllm import VllmServer
from .workspace import Workspace


class Launcher:
    def __init__(self, ws: Workspace, vllm: VllmServer, *, trainer_command: list[str], audit_command: list[str],
                 coordinator_url: str, token: str, rehearsal: bool, max_parallel_audits: int = 2):
        self.ws, self.vllm = ws, vllm
        self.trainer_command, self.audit_command = trainer_command, audit_command
        self.coordinator_url, self.token = coordinator_url, token
        self.rehearsal, self.max_parallel_audits = rehearsal, max_parallel_audits
        self.paused = ""  # why trainings wait, shown by /api/health

    # -- hypotheses to experiments ----------------------------------------------------------

    def activate(self) -> None:
        rows = self.ws.store.hypotheses()
        for hid, hyp in self.ws.hypotheses.items():  # priority, then order
            row = rows[hid]
            if row.status != HypothesisStatus.untested or not row.queued:
                continue
            if any(rows[dep].status not in DECIDED for dep in hyp.after):
                continue
            refused = next((p for p in self.ws.plans[hid] if not p.controlled), None)
            if refused is not None:
                verdict = Verdict(hypothesis_id=hid, status=HypothesisStatus.inconclusive, decided_at=time.time(),
                                  sentence=f"{hid} not run: {refused.id} differs from its control in "
                                           f"undeclared field(s) {', '.join(refused.undeclared)}")
                self.ws.store.set_hypothesis(hid, HypothesisStatus.inconclusive,
                                             verdict=verdict.model_dump(mode="json"))
                continue
            self._create_experiments(hid)

    def _create_experiments(self, hid: str) -> None:
        now, store = time.time(), self.ws.store
        with store.transaction():
            for seq, p in enumerate(self.ws.plans[hid]):
                store.add_experiment(ExperimentRow(
                    id=p.id, hypothesis_id=hid, seq=seq, kind=p.kind, status=ExperimentStatus.queued,
                    config=p.spec.model_dump(mode="json"), control_id=p.control_id,
                    diff=[d.model_dump(mode="json") for d in p.diff], undeclared=p.undeclared,
                    created_at=now, queued_at=now))
            store.set_hypothesis(hid, HypothesisStatus.testing)

    # -- experiments to workloads ------------------------------------------------------------

    def queue(self, kind: str) -> list[ExperimentRow]:
        rank = {hid: i for i, hid in enumerate(self.ws.hypotheses)}
        queued = [e for e in self.ws.store.experiments(status=ExperimentStatus.queued) if e.kind == kind]
        return sorted(queued, key=lambda e: (rank.get(e.hypothesis_id, 99), e.seq))

    def launch(self) -> None:
        running = self.ws.store.experiments(status=ExperimentStatus.running)
        audits_running = sum(1 for e in running if e.kind == "audit")
        for exp in self.queue("audit")[: max(0, self.max_parallel_audits - audits_running)]:
            self.start(exp, "audit")
        running_trainings = sum(1 for e in running if e.kind == "train")
        self.paused = self._launch_trainings(running_trainings)  # one assignment: /api/health reads it unlocked

    def _launch_trainings(self, running: int) -> str:
        """Start queued trainings in order while there is room; why the rest waits ('' when none does)."""
        for exp in self.queue("train"):  # in order: a training that must wait holds back those after it
            need = training_gpus(exp.config)
            try:
                why, room = self.ws.runner.infeasible(need), self.ws.runner.training_slots(need, running)
            except RuntimeError as exc:  # the cluster does not answer: ask again next tick
                return f"training waits for the runner: {exc}"
            if why:
                self.ws.store.update_experiment(exp.id, status=ExperimentStatus.failed, reason=f"refused: {why}",
                                                finished_at=time.time())
                continue
            if room <= 0:
                return f"training waits for GPUs: {need} needed, none free ({running} running)"
            if not self.vllm.ready(exp):
                return f"training waits for vLLM: {self.vllm.detail}"
            if self.start(exp, "trainer"):
                running += 1
        return ""

    def launch_for(self, exp: ExperimentRow, role: Role) -> Launch:
        template = self.trainer_command if role == "trainer" else self.audit_command
        gpus = self.ws.runner.trainer_gpus() if role == "trainer" else []
        command = fill_command(template, exp.id, exp.config, self.ws.output_dir(exp.id), self.coordinator_url)
        return Launch(experiment_id=exp.id, role=role, command=command, gpus=gpus, stack=exp.config["stack"],
                      num_gpus=training_gpus(exp.config) if role == "trainer" else 0,
                      submission_id=submission_id(self.ws.lab_id, exp.id, exp.attempts + 1),
                      log_path=self.ws.log_path(exp.id),
                      env={"HYPOLAB_TOKEN": self.token, "HYPOLAB_EXPERIMENT_ID": exp.id,
                           "HYPOLAB_COORDINATOR": self.coordinator_url})

    def record_submission(self, eid: str, handle: str, attempt: int) -> None:
        """A cluster job's submission id, kept with the state change that names it (same transaction)."""
        if self.ws.runner.name == "ray":
            self.ws.store.add_submission(SubmissionRow(submission_id=handle, experiment_id=eid, attempt=attempt,
                                                       runner=self.ws.runner.name, submitted_at=time.time()))

    def start(self, exp: ExperimentRow, role: Role) -> bool:
        """Start its workload; False when the runner could not (the experiment failed)."""
        out = self.ws.output_dir(exp.id)
        out.mkdir(parents=True, exist_ok=True)
        (out / "spec.yaml").write_text(yaml.safe_dump(exp.config, sort_keys=False))
        launch = self.launch_for(exp, role)
        log = self.ws.log_path(exp.id)
        self.ws.log_offsets[exp.id] = log.stat().st_size if log.exists() else 0
        try:
            handle = self.ws.runner.start(launch)
        except Exception as exc:  # the runner could not start it at all
            self.ws.store.update_experiment(exp.id, status=ExperimentStatus.failed,
                                            reason=f"could not start: {exc}"[:500],
                                            finished_at=time.time(), attempts=exp.attempts + 1)
            return False
        desc = self.ws.runner.describe(launch)
        with self.ws.store.transaction():
            self.ws.store.update_experiment(exp.id, status=ExperimentStatus.running, handle=handle,
                                            container=desc.image or "", gpus=launch.gpus, started_at=time.time(),
                                            attempts=exp.attempts + 1, rehearsal=int(self.rehearsal), reason="")
            self.record_submission(exp.id, handle, exp.attempts + 1)
        return True
