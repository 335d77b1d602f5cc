"""The lab's brain: sequence hypotheses, run their experiments, render verdicts.

`Lab` holds the loaded hypotheses, the store and a runner. Every change of state goes
through its methods (called by the HTTP routes) or through `tick()`, one scheduling step
that a background thread repeats:

1. reap finished workloads (exit code, log tail, audit report, metric lines in the log);
2. evaluate the verdict of every hypothesis under test, queueing its `next` ids;
3. start hypotheses whose `after` ids all have a verdict (priority, then order);
4. launch work: one training at a time on the trainer GPU set, with vLLM (re)started for
   its model and stack (always after a trainer crash); audits on CPU alongside.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError

from ..verdicts.rules import ExperimentEvidence, decide
from ..contracts import DECIDED, FINISHED, HypothesisSpec, MetricEvent, Verdict
from .planner import PlannedExperiment, plan_hypothesis, run_order
from .runners import Launch, Runner
from .store import Store

log = logging.getLogger("hypolab.coordinator")

METRIC_LINE = "HYPOLAB_METRIC "
EARLY_STOP = "stopped early"
LOG_TAIL_LINES = 40


class LabError(Exception):
    """A request the lab refuses; `status` is the HTTP status the route answers with."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 64_000) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        data = f.read().decode("utf-8", "replace")
    return "\n".join(data.splitlines()[-lines:])


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
        self.store, self.runner, self.hypotheses = store, runner, hypotheses
        self.data_dir = data_dir
        self.trainer_command, self.audit_command = trainer_command, audit_command
        self.vllm_command, self.vllm_url = vllm_command, vllm_url
        self.coordinator_url, self.token = coordinator_url, token
        self.max_parallel_audits = max_parallel_audits
        self.rehearsal = rehearsal
        kwargs = {"experiments_dir": experiments_dir} if experiments_dir else {}
        self.plans: dict[str, list[PlannedExperiment]] = {
            hid: plan_hypothesis(h, hypotheses, **kwargs) for hid, h in hypotheses.items()
        }
        self._lock = threading.RLock()
        self._log_offsets: dict[str, int] = {}
        saved = store.get_meta("vllm_state") or {}
        self.vllm_state: dict[str, Any] = {"handle": saved.get("handle"), "key": saved.get("key"),
                                           "needs_restart": bool(saved.get("needs_restart")), "detail": "",
                                           "healthy": None}
        self.queue_paused: str = ""  # why trainings wait, shown by /api/health
        self._dirty: set[str] = set()  # hypotheses with new metrics, judged on the next tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for hid in hypotheses:
            if store.hypothesis(hid) is None:
                store.set_hypothesis(hid, "untested", queued=False)
        self.recover()

    def _save_vllm(self) -> None:
        keep = {k: self.vllm_state[k] for k in ("handle", "key", "needs_restart")}
        self.store.set_meta("vllm_state", keep)

    def recover(self) -> None:
        """After a restart: re-attach to workloads still running, adopt ones started just before a crash.

        Nothing is launched twice: an experiment still `queued` whose workload exists (the
        coordinator died between starting it and recording that) is adopted, not restarted.
        Workloads that ended meanwhile are reaped by the next tick from their exit codes.
        """
        live = self.runner.live()
        for exp in self.store.experiments(status="running"):
            if exp["handle"] and self.runner.poll(exp["handle"]) is None:
                self.runner.attach_logs(exp["handle"], self.log_path(exp["id"]))
        for exp in self.store.experiments(status="queued"):
            handle = live.get(exp["id"])
            if handle:
                self.store.update_experiment(exp["id"], status="running", handle=handle, started_at=time.time(),
                                             attempts=exp["attempts"] + 1, reason="adopted after a restart")
                self.runner.attach_logs(handle, self.log_path(exp["id"]))

    # -- paths ---------------------------------------------------------------------------

    def output_dir(self, eid: str) -> Path:
        return self.data_dir / "outputs" / eid

    def log_path(self, eid: str) -> Path:
        """The workload's output, beside everything else it produced (on the outputs volume)."""
        return self.output_dir(eid) / "coordinator.log"

    def planned(self, eid: str) -> PlannedExperiment | None:
        hid = eid.split(".", 1)[0]
        return next((p for p in self.plans.get(hid, []) if p.id == eid), None)

    # -- requests ------------------------------------------------------------------------

    def submit(self, requested: list[str], request_key: str | None) -> dict[str, Any]:
        """Queue hypotheses (and what they come after). Idempotent per request key."""
        with self._lock:
            if request_key:
                existing = self.store.find_run(request_key)
                if existing:
                    return {"run_id": existing["id"], "hypotheses": existing["hypotheses"], "created": False}
            try:
                order = run_order(requested, self.hypotheses)
            except KeyError as exc:
                raise LabError(404, str(exc.args[0])) from None
            refused = [p for hid in order for p in self.plans[hid] if not p.controlled]
            if refused:
                p = refused[0]
                raise LabError(422, f"refused: {p.id} differs from its control {p.control_id} in undeclared "
                                    f"field(s) {', '.join(p.undeclared)}; declare them in `vary`")
            run_id = self.store.add_run(request_key, order)
            for hid in order:
                row = self.store.hypothesis(hid)
                if row["status"] == "untested":
                    self.store.set_hypothesis(hid, "untested", queued=True)
            self.store.emit("run", {"id": run_id, "hypotheses": order})
            return {"run_id": run_id, "hypotheses": order, "created": True}

    def cancel(self, eid: str) -> dict[str, Any]:
        with self._lock:
            exp = self._experiment_or_404(eid)
            if exp["status"] in FINISHED:
                raise LabError(409, f"{eid} is already {exp['status']}")
            if exp["status"] == "running" and exp["handle"]:
                self.runner.stop(exp["handle"], grace_s=30)
            self.store.update_experiment(eid, status="cancelled", reason="cancelled by request",
                                         finished_at=time.time(), log_tail=tail(self.log_path(eid)))
            return self.store.experiment(eid)

    def retry(self, eid: str) -> dict[str, Any]:
        with self._lock:
            exp = self._experiment_or_404(eid)
            if exp["status"] not in ("failed", "cancelled", "stalled"):
                raise LabError(409, f"{eid} is {exp['status']}; only failed, cancelled or stalled experiments retry")
            self.store.update_experiment(eid, status="queued", reason=f"retry (attempt {exp['attempts'] + 1})",
                                         exit_code=None, handle=None, queued_at=time.time(), finished_at=None)
            hid = exp["hypothesis_id"]
            if self.store.hypothesis(hid)["status"] in DECIDED:  # new evidence reopens the question
                self.store.set_hypothesis(hid, "testing")
            return self.store.experiment(eid)

    def _experiment_or_404(self, eid: str) -> dict[str, Any]:
        exp = self.store.experiment(eid)
        if exp is None:
            raise LabError(404, f"unknown experiment {eid!r}")
        return exp

    def ingest(self, eid: str, events: list[MetricEvent]) -> int:
        """Store metric events for a running experiment; returns the values stored."""
        exp = self.store.experiment_state(eid)
        if exp is None:
            raise LabError(404, f"unknown experiment {eid!r}")
        wrong = [e.experiment_id for e in events if e.experiment_id != eid]
        if wrong:
            raise LabError(422, f"event for {wrong[0]!r} posted to {eid!r}: experiment_id must match the path")
        if exp["status"] != "running":
            raise LabError(409, f"{eid} is {exp['status']}: metrics are accepted only while it runs")
        if not events:
            return 0
        stored = self.store.add_metrics(eid, [(e.step, e.time, e.metrics) for e in events])
        if any(e.rehearsal for e in events) and not exp["rehearsal"]:
            self.store.update_experiment(eid, rehearsal=1)
        self._dirty.add(exp["hypothesis_id"])  # judged after this batch, on the next tick
        return stored

    def store_trainer_config(self, eid: str, config: dict[str, Any]) -> None:
        """The trainer's resolved config (spec + overrides + the stack's own config)."""
        self._experiment_or_404(eid)
        self.store.update_experiment(eid, trainer_config=config)
        self.store.emit("trainer_config", {"id": eid})

    def store_report(self, eid: str, report: dict[str, Any]) -> None:
        self._experiment_or_404(eid)
        self.store.update_experiment(eid, report=report)
        self.store.emit("report", {"id": eid})

    # -- the scheduling step -------------------------------------------------------------

    def tick(self) -> None:
        with self._lock:
            self._reap()
            self._find_stalls()
            self._judge()
            self._activate()
            self._launch()

    def _reap(self) -> None:
        for exp in self.store.experiments(status="running"):
            eid = exp["id"]
            self._read_metric_lines(eid)
            code = self.runner.poll(exp["handle"]) if exp["handle"] else -1
            if code is None:
                continue
            self._read_metric_lines(eid)
            fields: dict[str, Any] = {"exit_code": code, "finished_at": time.time(),
                                      "log_tail": tail(self.log_path(eid))}
            if code == 0 or exp["reason"].startswith(EARLY_STOP):
                fields["status"] = "succeeded"
                if exp["kind"] == "audit":
                    fields["report"] = self._read_report(eid)
            else:
                fields["status"] = "failed"
                fields["reason"] = f"exit code {code}" if code >= 0 else "ended without an exit code (killed hard)"
                if exp["kind"] == "train":  # vLLM's weight-sync communicator initialises once
                    self.vllm_state["needs_restart"] = True
                    self._save_vllm()
            self.store.update_experiment(eid, **fields)
            if fields["status"] == "failed":
                self._maybe_retry(eid, fields["reason"])

    def _maybe_retry(self, eid: str, why: str) -> None:
        """The experiment's retry policy: requeue it while attempts remain."""
        planned, row = self.planned(eid), self.store.experiment(eid)
        if planned is None or row["attempts"] > planned.retries:
            return
        self.store.update_experiment(eid, status="queued", handle=None, queued_at=time.time(),
                                     reason=f"retry {row['attempts']}/{planned.retries} after: {why}")

    def _find_stalls(self) -> None:
        """A training silent for longer than its stall timeout (NCCL weight sync hangs quietly)."""
        now = time.time()
        for exp in self.store.experiments(status="running"):
            planned = self.planned(exp["id"])
            if exp["kind"] != "train" or planned is None or exp["reason"].startswith(EARLY_STOP):
                continue
            last = max(filter(None, (exp["last_metric_at"], exp["started_at"])), default=now)
            if now - last <= planned.stall_timeout_s:
                continue
            why = f"no metrics for {now - last:.0f}s (stall timeout {planned.stall_timeout_s:.0f}s)"
            self.store.update_experiment(exp["id"], status="stalled", reason=why, finished_at=now,
                                         log_tail=tail(self.log_path(exp["id"])))
            if exp["handle"]:
                threading.Thread(target=self.runner.stop, args=(exp["handle"], 10.0), daemon=True).start()
            self.vllm_state["needs_restart"] = True  # a hung weight sync leaves vLLM's group broken too
            self._save_vllm()
            self._maybe_retry(exp["id"], why)

    def _read_report(self, eid: str) -> dict[str, Any] | None:
        path = self.output_dir(eid) / "audit.json"
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def _read_metric_lines(self, eid: str) -> None:
        """Fallback path: `HYPOLAB_METRIC {json MetricEvent}` lines in the workload's log."""
        path = self.log_path(eid)
        if not path.exists():
            return
        offset = self._log_offsets.get(eid, 0)
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read()
        complete = chunk.rfind(b"\n") + 1
        self._log_offsets[eid] = offset + complete
        events = []
        for raw in chunk[:complete].decode("utf-8", "replace").splitlines():
            idx = raw.find(METRIC_LINE)
            if idx < 0:
                continue
            try:
                event = MetricEvent.model_validate_json(raw[idx + len(METRIC_LINE):])
            except ValidationError:
                continue
            if event.experiment_id == eid:
                events.append(event)
        if events:
            self.store.add_metrics(eid, [(e.step, e.time, e.metrics) for e in events])
            if any(e.rehearsal for e in events):
                self.store.update_experiment(eid, rehearsal=1)

    def evidence(self, eid: str, metric: str | None) -> ExperimentEvidence:
        row = self.store.experiment(eid)
        if row is None:
            return ExperimentEvidence(id=eid, status="pending")
        series = {metric: self.store.series(eid, metric)} if metric else {}
        planned = self.planned(eid)
        return ExperimentEvidence(id=eid, status=row["status"], rehearsal=bool(row["rehearsal"]),
                                  series=series, report=row["report"], groups=planned.groups if planned else None)

    def verdict_of(self, hid: str) -> Verdict:
        hyp = self.hypotheses[hid]
        lookup = lambda name, metric: self.evidence(f"{hid}.{name}", metric)  # noqa: E731
        statuses = {p.name: (self.store.experiment(p.id) or {"status": "pending"})["status"] for p in self.plans[hid]}
        return decide(hyp, lookup, statuses)

    def _judge(self) -> None:
        self._dirty.clear()
        for hid, row in self.store.hypotheses().items():
            if row["status"] != "testing":
                continue
            verdict = self.verdict_of(hid)
            if verdict.status == "testing":
                continue
            nxt = self.hypotheses[hid].next
            queued = nxt.validated if verdict.status == "validated" else nxt.invalidated if verdict.status == "invalidated" else []
            verdict.queued_next = list(queued)
            self.store.set_hypothesis(hid, verdict.status, verdict=verdict.model_dump(mode="json"))
            for target in queued:
                if self.store.hypothesis(target)["status"] == "untested":
                    self.store.set_hypothesis(target, "untested", queued=True)
            self._stop_early(hid, verdict)

    def _stop_early(self, hid: str, verdict: Verdict) -> None:
        """The question is answered: stop this hypothesis's trainings that allow it, gracefully."""
        steps = [e.numbers.get("decided_at_step") for e in verdict.evidence if e.numbers.get("decided_at_step") is not None]
        note = f"{EARLY_STOP}: {hid} {verdict.status}" + (f" at step {max(steps)}" if steps else "")
        for p in self.plans[hid]:
            row = self.store.experiment(p.id)
            if p.kind != "train" or not p.early_stop or row is None or row["status"] != "running" or not row["handle"]:
                continue
            self.store.update_experiment(p.id, reason=note)
            # SIGTERM first (the trainer saves a checkpoint when it can), then the reaper records the exit
            threading.Thread(target=self.runner.stop, args=(row["handle"], 120.0), daemon=True).start()

    def _activate(self) -> None:
        rows = self.store.hypotheses()
        for hid, hyp in self.hypotheses.items():  # priority, then order
            row = rows[hid]
            if row["status"] != "untested" or not row["queued"]:
                continue
            if any(rows[dep]["status"] not in DECIDED for dep in hyp.after):
                continue
            plans = self.plans[hid]
            if any(not p.controlled for p in plans):
                refused = next(p for p in plans if not p.controlled)
                verdict = Verdict(hypothesis_id=hid, status="inconclusive", decided_at=time.time(),
                                  sentence=f"{hid} not run: {refused.id} differs from its control in "
                                           f"undeclared field(s) {', '.join(refused.undeclared)}")
                self.store.set_hypothesis(hid, "inconclusive", verdict=verdict.model_dump(mode="json"))
                continue
            now = time.time()
            for seq, p in enumerate(plans):
                self.store.add_experiment({
                    "id": p.id, "hypothesis_id": hid, "seq": seq, "kind": p.kind, "status": "queued",
                    "config": p.spec.model_dump(mode="json"), "control_id": p.control_id,
                    "diff": [d.model_dump(mode="json") for d in p.diff], "undeclared": p.undeclared,
                    "created_at": now, "queued_at": now,
                })
                self.store.emit("experiment", {"id": p.id, "status": "queued", "previous": None})
            self.store.set_hypothesis(hid, "testing")

    def _queue_order(self, kind: str) -> list[dict[str, Any]]:
        rank = {hid: i for i, hid in enumerate(self.hypotheses)}
        queued = [e for e in self.store.experiments(status="queued") if e["kind"] == kind]
        return sorted(queued, key=lambda e: (rank.get(e["hypothesis_id"], 99), e["seq"]))

    def _launch(self) -> None:
        running = self.store.experiments(status="running")
        audits_running = sum(1 for e in running if e["kind"] == "audit")
        for exp in self._queue_order("audit")[: max(0, self.max_parallel_audits - audits_running)]:
            self._start(exp, "audit")
        if not any(e["kind"] == "train" for e in running):
            queue = self._queue_order("train")
            if queue:
                if self._ensure_vllm(queue[0]):
                    self.queue_paused = ""
                    self._start(queue[0], "trainer")
                else:
                    self.queue_paused = f"training waits for vLLM: {self.vllm_state['detail']}"
            else:
                self.queue_paused = ""

    # -- launching -----------------------------------------------------------------------

    def _fill(self, template: list[str], exp: dict[str, Any]) -> list[str]:
        return fill_command(template, exp["id"], exp["config"], self.output_dir(exp["id"]), self.coordinator_url)

    def launch_for(self, exp: dict[str, Any], role: str) -> Launch:
        template = self.trainer_command if role == "trainer" else self.audit_command
        gpus = self.runner.trainer_gpus() if role == "trainer" else []
        return Launch(experiment_id=exp["id"], role=role, command=self._fill(template, exp), gpus=gpus,
                      stack=exp["config"]["stack"], log_path=self.log_path(exp["id"]),
                      env={"HYPOLAB_TOKEN": self.token, "HYPOLAB_EXPERIMENT_ID": exp["id"],
                           "HYPOLAB_COORDINATOR": self.coordinator_url})

    def _start(self, exp: dict[str, Any], role: str) -> None:
        eid = exp["id"]
        out = self.output_dir(eid)
        out.mkdir(parents=True, exist_ok=True)
        (out / "spec.yaml").write_text(yaml.safe_dump(exp["config"], sort_keys=False))
        launch = self.launch_for(exp, role)
        self._log_offsets[eid] = self.log_path(eid).stat().st_size if self.log_path(eid).exists() else 0
        try:
            handle = self.runner.start(launch)
        except Exception as exc:  # the runner could not start it at all
            self.store.update_experiment(eid, status="failed", reason=f"could not start: {exc}"[:500],
                                         finished_at=time.time(), attempts=exp["attempts"] + 1)
            return
        desc = self.runner.describe(launch)
        self.store.update_experiment(eid, status="running", handle=handle, container=desc.image or "",
                                     gpus=launch.gpus, started_at=time.time(), attempts=exp["attempts"] + 1,
                                     rehearsal=int(self.rehearsal), reason="")

    def _ensure_vllm(self, exp: dict[str, Any]) -> bool:
        """vLLM serving this experiment's model and stack; False while it is not ready yet."""
        if self.vllm_command is None:
            self.vllm_state["detail"] = "no vLLM managed by this coordinator (rehearsal: scripted policy)"
            return True
        cfg = exp["config"]
        key = [cfg["model"], cfg["stack"], json.dumps(cfg["vllm"], sort_keys=True)]
        state = self.vllm_state
        if state["key"] != key or state["needs_restart"] or (
                state["handle"] and self.runner.poll(state["handle"]) is not None):
            if state["handle"]:
                self.runner.stop(state["handle"], grace_s=30)
            launch = Launch(experiment_id=f"vllm.{cfg['stack']}", role="vllm", command=self._fill(self.vllm_command, exp),
                            stack=cfg["stack"], log_path=self.data_dir / "outputs" / "vllm" / "coordinator.log")
            state.update(handle=self.runner.start(launch), key=list(key), needs_restart=False,
                         detail=f"starting {cfg['model']} ({cfg['stack']})", healthy=False)
            self._save_vllm()
            self.store.emit("vllm", {"status": "starting", "model": cfg["model"], "stack": cfg["stack"]})
            return False
        if not self.vllm_url:
            return True
        try:
            ok = httpx.get(self.vllm_url.rstrip("/") + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            ok = False
        if ok != state.get("healthy"):
            self.store.emit("vllm", {"status": "healthy" if ok else "unhealthy", "model": cfg["model"]})
        state["healthy"] = ok
        state["detail"] = f"{cfg['model']} ({cfg['stack']}) {'healthy' if ok else 'not healthy'}"
        return ok

    # -- background loop -----------------------------------------------------------------

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
