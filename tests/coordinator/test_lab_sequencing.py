"""The coordinator end to end with the local runner: real subprocesses, real HTTP, real SQLite.

The fake trainer (tests/fixtures) reports a learning curve for gsm8k and the `current`
stack and a flat one otherwise, half over HTTP and half as log lines; the fake audit
reports the legacy masking defect for multi-turn envs.
"""

import json
import threading

import httpx
import pytest

from ..conftest import TOKEN


def collect_events(url, stop, out):
    with httpx.Client(timeout=None) as client:
        with client.stream("GET", f"{url}/api/events", params={"since": 0}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    out.append(json.loads(line[5:]))
                if stop.is_set():
                    return


def decided(live, hid):
    return live.hypothesis(hid)["status"] in ("validated", "invalidated", "inconclusive")


def test_h06_then_h07_then_next(make_coordinator):
    live = make_coordinator()
    events, stop = [], threading.Event()
    threading.Thread(target=collect_events, args=(live.url, stop, events), daemon=True).start()

    receipt = live.client.post("/api/runs", json={"hypotheses": ["H07"], "request_key": "k1"}).json()
    assert receipt["hypotheses"] == ["H06", "H07"] and receipt["created"]
    # the same request key is the same run
    again = live.client.post("/api/runs", json={"hypotheses": ["H07"], "request_key": "k1"}).json()
    assert again == {**receipt, "created": False}

    live.wait(lambda: decided(live, "H07"), timeout=120, what="H07 verdict")
    h06, h07 = live.hypothesis("H06"), live.hypothesis("H07")
    assert h06["status"] == "validated", h06["verdict"]
    ev = next(e for e in h06["verdict"]["evidence"] if e["rule"].startswith("improves"))
    assert ev["holds"] is True and ev["numbers"]["effect"] > 0.05 and ev["numbers"]["interval"][0] > 0
    assert h07["status"] == "validated"  # math-python stayed flat: multi-step fails in general
    assert h07["verdict"]["queued_next"] == ["H02"]

    # H06's experiment ran before H07's training, which used the trainer GPU set alone
    exps = {e["id"]: e for e in live.client.get("/api/experiments").json()}
    assert exps["H06.gsm8k"]["finished_at"] <= exps["H07.math-python"]["started_at"]
    assert exps["H07.math-python"]["gpus"] == [1, 2, 3] and exps["H07.audit-musique"]["gpus"] == []
    assert exps["H07.math-python"]["diff"] == [
        {"path": "env", "control": "gsm8k", "treatment": "math-python"},
        {"path": "env_args", "control": {"use_think": False}, "treatment": {"max_turns": 5}},
    ]
    # both ingestion paths: even steps over HTTP, odd steps from the log; stopped early once decided
    steps = sorted({m["step"] for m in live.client.get("/api/experiments/H07.math-python/metrics",
                                                        params={"name": "reward"}).json()})
    decided_at = next(e for e in h07["verdict"]["evidence"] if e["rule"].startswith("no_improvement"))
    assert decided_at["numbers"]["decided_at_step"] >= 99  # "no" needs 100 steps (verdicts.py)
    assert steps[:100] == list(range(100)) and len(steps) < 150
    assert exps["H07.math-python"]["reason"].startswith("stopped early: H07 validated at step")
    assert exps["H07.audit-math-python"]["report"]["findings"][0]["code"] == "CONTEXT_HIDDEN_FROM_ATTENTION"

    # the verdict queued H02 (not H04/H05), which then runs and is decided too
    live.wait(lambda: decided(live, "H02"), timeout=120, what="H02 verdict")
    board = {h["id"]: h for h in live.client.get("/api/hypotheses").json()}
    assert board["H02"]["status"] == "validated"  # defect present and the fixed stack learns
    assert board["H04"]["status"] == "untested" and not board["H04"]["queued"]
    assert board["H05"]["status"] == "untested" and not board["H05"]["queued"]

    stop.set()
    live.client.post("/api/runs", json={"hypotheses": ["H06"]})  # one more event unblocks the reader
    transitions = [(e["id"], e["status"]) for e in events if e["type"] == "hypothesis"]
    assert [s for i, s in transitions if i == "H06"] == ["untested", "testing", "validated"]
    exp_states = [e["status"] for e in events if e["type"] == "experiment" and e["id"] == "H06.gsm8k"]
    assert exp_states == ["queued", "running", "succeeded"]
    assert any(e["type"] == "metrics" and e["id"] == "H06.gsm8k" for e in events)


def test_gsm8k_that_does_not_learn_invalidates_h06(make_coordinator, monkeypatch):
    monkeypatch.setenv("FAKE_FLAT", "1")
    live = make_coordinator()
    live.client.post("/api/runs", json={"hypotheses": ["H06"]})
    live.wait(lambda: decided(live, "H06"), what="H06 verdict")
    h06 = live.hypothesis("H06")
    assert h06["status"] == "invalidated" and h06["verdict"]["queued_next"] == []
    assert live.hypothesis("H07")["status"] == "untested"


def test_uncontrolled_treatment_is_refused(make_coordinator, tmp_path, root):
    hyp_dir = tmp_path / "hyps"
    hyp_dir.mkdir()
    (hyp_dir / "H09.yaml").write_text("""
id: H09
title: sneaky
priority: 0
order: 9
criteria: {validated: a, invalidated: b}
experiments:
  - {id: control, spec: math-python}
  - {id: treatment, spec: musique, control: control, vary: {training: {learning_rate: 2.0e-6}}}
  - {id: fine, spec: math-python, control: gsm8k, vary: {training: {learning_rate: 2.0e-6}}}
  - {id: gsm8k, spec: gsm8k}
verdict:
  validated: {rule: improves, experiment: treatment}
  invalidated: {rule: no_improvement, experiment: treatment}
""")
    live = make_coordinator(hypotheses_dir=hyp_dir)
    resp = live.client.post("/api/runs", json={"hypotheses": ["H09"]})
    assert resp.status_code == 422
    # musique.yaml declares env/env_args against gsm8k, not against math-python
    assert resp.json()["detail"] == (
        "refused: H09.treatment differs from its control H09.control in undeclared field(s) "
        "env; declare them in `vary`")
    plans = {p.name: p for p in live.lab.plans["H09"]}
    assert plans["fine"].controlled  # against gsm8k, math-python.yaml's own vary is declared
    assert [d.path for d in plans["fine"].diff] == ["env", "env_args", "training.learning_rate"]
    assert live.client.get("/api/experiments").json() == []
    assert live.hypothesis("H09")["status"] == "untested"


def test_cancel_and_retry(make_coordinator, monkeypatch):
    monkeypatch.setenv("FAKE_STEP_SLEEP", "0.3")
    live = make_coordinator()
    live.client.post("/api/runs", json={"hypotheses": ["H06"]})
    def has_metrics():
        resp = live.client.get("/api/experiments/H06.gsm8k/metrics")
        return resp.status_code == 200 and resp.json()

    live.wait(has_metrics, what="first metrics")
    resp = live.client.post("/api/experiments/H06.gsm8k/cancel")
    assert resp.status_code == 200, resp.text
    cancelled = resp.json()
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "cancelled by request"
    assert live.client.post("/api/experiments/H06.gsm8k/cancel").status_code == 409
    # a cancelled run's metrics are refused
    late = {"experiment_id": "H06.gsm8k", "step": 99, "time": 1.0, "metrics": {"reward": 0.5}}
    assert live.client.post("/api/experiments/H06.gsm8k/metrics", json=late).status_code == 409

    monkeypatch.setenv("FAKE_STEP_SLEEP", "0.01")
    retried = live.client.post("/api/experiments/H06.gsm8k/retry").json()
    assert retried["status"] == "queued"
    live.wait(lambda: decided(live, "H06"), what="H06 verdict after retry")
    live.wait(lambda: live.client.get("/api/experiments/H06.gsm8k").json()["status"] != "running", what="stop")
    exp = live.client.get("/api/experiments/H06.gsm8k").json()
    assert exp["status"] == "succeeded" and exp["attempts"] == 2
    assert live.hypothesis("H06")["status"] == "validated"


def test_trainer_crash_fails_the_experiment_and_restarts_vllm(make_coordinator, tmp_path, monkeypatch):
    import sys

    from ..conftest import FIXTURES, free_port

    marker, starts, port = tmp_path / "failed-once", tmp_path / "vllm-starts", free_port()
    monkeypatch.setenv("FAKE_FAIL_MARKER", str(marker))
    live = make_coordinator(
        vllm_command=[sys.executable, str(FIXTURES / "fake_vllm.py"), str(port), str(starts), "{model}", "{stack}"],
        vllm_url=f"http://127.0.0.1:{port}",
    )
    live.client.post("/api/runs", json={"hypotheses": ["H06"]})
    live.wait(lambda: live.client.get("/api/experiments/H06.gsm8k").json().get("status") == "failed", what="crash")
    exp = live.client.get("/api/experiments/H06.gsm8k").json()
    assert exp["exit_code"] == 3 and "simulated NCCL error" in exp["log_tail"]
    assert starts.read_text().splitlines() == ["Qwen/Qwen2.5-7B-Instruct legacy"]
    live.client.post("/api/experiments/H06.gsm8k/retry")
    live.wait(lambda: decided(live, "H06"), what="H06 verdict after crash")
    # vLLM was started again before the retried training (its communicator initialises once)
    assert len(starts.read_text().splitlines()) == 2


@pytest.mark.parametrize("case", ["no-token", "wrong-token", "unknown", "nan", "mismatch", "huge", "bad-name"])
def test_bad_metric_requests_are_4xx_and_change_nothing(make_coordinator, monkeypatch, case):
    monkeypatch.setenv("FAKE_STEP_SLEEP", "0.3")
    live = make_coordinator()
    live.client.post("/api/runs", json={"hypotheses": ["H06"]})
    live.wait(lambda: live.client.get("/api/experiments/H06.gsm8k").json().get("status") == "running", what="running")
    before = live.client.get("/api/experiments/H06.gsm8k/metrics").json()
    eid, headers = "H06.gsm8k", {"Authorization": f"Bearer {TOKEN}"}
    body: object = {"experiment_id": eid, "step": 500, "time": 1.0, "metrics": {"reward": 0.5}}
    expected = 422
    if case == "no-token":
        headers, expected = {}, 401
    elif case == "wrong-token":
        headers, expected = {"Authorization": "Bearer nope"}, 401
    elif case == "unknown":
        eid, body, expected = "H99.x", {**body, "experiment_id": "H99.x"}, 404
    elif case == "nan":
        body = '{"experiment_id": "H06.gsm8k", "step": 500, "time": 1.0, "metrics": {"reward": NaN}}'
    elif case == "mismatch":
        body = {**body, "experiment_id": "H07.math-python"}
    elif case == "huge":
        body, expected = [body] * 20000, 413
    elif case == "bad-name":
        body = {**body, "metrics": {"reward; rm -rf /": 1.0}}
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    with httpx.Client(base_url=live.url, timeout=20) as raw:
        resp = raw.post(f"/api/experiments/{eid}/metrics", headers={**headers, "Content-Type": "application/json"},
                        **kwargs)
    assert resp.status_code == expected, resp.text
    assert resp.json()["detail"]
    after = live.client.get("/api/experiments/H06.gsm8k/metrics").json()
    assert not any(m["step"] == 500 for m in after) and len(after) >= len(before)


def test_unknown_hypothesis_and_read_endpoints(make_coordinator):
    live = make_coordinator()
    resp = live.client.post("/api/runs", json={"hypotheses": ["H99"]})
    assert resp.status_code == 404 and "unknown hypothesis 'H99'" in resp.json()["detail"]
    assert live.client.get("/api/hypotheses/H99").status_code == 404
    assert [h["id"] for h in live.client.get("/api/hypotheses").json()] == ["H06", "H07", "H02", "H04", "H05", "H90"]
    prom = live.client.get("/metrics").text
    assert 'hypolab_hypotheses{status="untested"} 6' in prom
    assert httpx.post(f"{live.url}/api/runs", json={"hypotheses": ["H06"]}).status_code == 401
