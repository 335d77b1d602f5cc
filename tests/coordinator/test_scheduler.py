"""The scheduler without HTTP: a `Lab` over a real store and real subprocesses, driven by tick()."""

import os
import signal
import sys
import threading
import time

import pytest

from hypolab.contracts import ExperimentStatus, HypothesisStatus
from hypolab.coordinator.runners import LocalRunner
from hypolab.coordinator.scheduler import Lab, LabError
from hypolab.coordinator.store import Store
from hypolab.specs import EXPERIMENTS_DIR, load_hypotheses

from ..conftest import TOKEN

H09 = """
id: H09
title: scheduler drill
priority: 0
order: 9
criteria: {validated: it learns, invalidated: it does not}
experiments:
  - {id: run, spec: gsm8k, retries: 1}
verdict:
  validated: {rule: improves, experiment: run}
  invalidated: {rule: no_improvement, experiment: run}
"""

# ends with exit code 3 at once
CRASH = [sys.executable, "-c", "import sys; sys.exit(3)"]
# takes SIGTERM slowly: 4 s between the signal and its exit
SLOW_TO_STOP = [sys.executable, "-c",
                "import signal, sys, time\n"
                "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(4), sys.exit(0)))\n"
                "time.sleep(60)"]


@pytest.fixture
def make_lab(tmp_path):
    hyps = tmp_path / "hyps"
    hyps.mkdir()
    (hyps / "H09.yaml").write_text(H09)
    made = []

    def make(command):
        store = Store(tmp_path / "lab.sqlite")
        lab = Lab(store, LocalRunner(tmp_path, outputs=tmp_path / "outputs"), load_hypotheses(hyps, EXPERIMENTS_DIR),
                  data_dir=tmp_path, trainer_command=command, audit_command=command,
                  coordinator_url="http://127.0.0.1:9", token=TOKEN)
        made.append(lab)
        return lab

    yield make
    for lab in made:
        for exp in lab.store.experiments():
            if exp.handle and lab.runner.poll(exp.handle) is None:
                os.killpg(int(exp.handle), signal.SIGKILL)
        lab.store.close()


def tick_until(lab, predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lab.tick()
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("scheduler did not get there")


def test_a_crash_is_retried_once_and_every_transition_is_an_event(make_lab):
    lab = make_lab(CRASH)
    assert lab.requests.submit(["H09"], "key").created
    assert lab.requests.submit(["H09"], "key").model_dump() == {"run_id": 1, "hypotheses": ["H09"], "created": False}
    tick_until(lab, lambda: (e := lab.store.experiment("H09.run")) is not None and e.attempts == 2
               and e.status == ExperimentStatus.failed)
    exp = lab.store.experiment("H09.run")
    assert exp.exit_code == 3 and exp.reason == "exit code 3"
    states = [e.payload["status"] for e in lab.store.events_since(0) if e.type == "experiment"]
    assert states == ["queued", "running", "failed", "queued", "running", "failed"]  # retries: 1
    assert lab.store.hypothesis("H09").status == HypothesisStatus.inconclusive  # over, without evidence
    with pytest.raises(LabError) as refused:
        lab.requests.cancel("H09.run")
    assert refused.value.status == 409


def test_cancel_stops_the_workload_without_holding_the_lab(make_lab):
    lab = make_lab(SLOW_TO_STOP)
    lab.requests.submit(["H09"], None)
    tick_until(lab, lambda: lab.store.experiment("H09.run").status == ExperimentStatus.running)
    handle = lab.store.experiment("H09.run").handle
    time.sleep(0.5)  # the workload has installed its SIGTERM handler
    answer = {}
    canceller = threading.Thread(target=lambda: answer.setdefault("row", lab.requests.cancel("H09.run")))
    canceller.start()
    tick_until(lab, lambda: lab.store.experiment("H09.run").status == ExperimentStatus.cancelled)
    lab.tick()  # the scheduler keeps going while the workload takes its time to stop
    assert canceller.is_alive() and lab.runner.poll(handle) is None
    canceller.join(timeout=40)
    assert answer["row"].status == ExperimentStatus.cancelled and answer["row"].reason == "cancelled by request"
    assert lab.runner.poll(handle) is not None  # stopped before the answer came back


def test_unknown_and_uncontrolled_requests_are_refused(make_lab):
    lab = make_lab(CRASH)
    before = lab.store.last_event_seq()
    with pytest.raises(LabError) as unknown:
        lab.requests.submit(["H99"], None)
    assert unknown.value.status == 404 and "unknown hypothesis 'H99'" in str(unknown.value)
    with pytest.raises(LabError) as missing:
        lab.requests.retry("H09.nope")
    assert missing.value.status == 404
    assert lab.store.experiments() == [] and lab.store.events_since(before) == []
