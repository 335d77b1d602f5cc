"""The metrics reporter never blocks training and loses nothing while the coordinator is away."""

import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx

from hypolab.trainer.reporter import MetricReporter, normalise

from ..conftest import FIXTURES, TOKEN, free_port, start_coordinator_process


def test_names_are_normalised():
    out = normalise({"train/reward": 0.5, "reward/std": 0.1, "completions/mean_length": 12, "loss": float("nan"),
                     "reward/correct_answer": 1.0, "grad_norm": 2, "flag": True, "text": "x"})
    assert out == {"reward": 0.5, "reward_std": 0.1, "completion_length": 12.0, "rewards/correct_answer": 1.0, "grad_norm": 2.0}


class Sink(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Sink.received.extend(body if isinstance(body, list) else [body])
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass


def test_buffers_while_down_and_flushes_when_back(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rep = MetricReporter("H07.x", tmp_path, f"http://127.0.0.1:{port}", "tok", rehearsal=True, max_backoff_s=0.5)
    started = time.monotonic()
    for step in range(5):
        rep.report(step, {"loss": step})
    assert time.monotonic() - started < 0.5  # reporting never waits for the network
    deadline = time.monotonic() + 10
    while not (tmp_path / "metrics.pending.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "metrics.pending.jsonl").exists()
    server = HTTPServer(("127.0.0.1", port), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        deadline = time.monotonic() + 15
        while len(Sink.received) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        rep.close()
    finally:
        server.shutdown()
    assert sorted(e["step"] for e in Sink.received) == [0, 1, 2, 3, 4]
    assert all(e["rehearsal"] for e in Sink.received)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 5
    assert not (tmp_path / "metrics.pending.jsonl").exists()


def test_a_coordinator_killed_mid_run_finds_every_step_in_the_log_lines(tmp_path):
    """The HYPOLAB_METRIC fallback, end to end: the coordinator is SIGKILLed after the first
    metrics and comes back only after the trainer has ended (so no retry can deliver them);
    it finds every step in the trainer's log."""
    steps = 30
    trainer = [sys.executable, str(FIXTURES / "reporter_trainer.py"), "--spec", "{spec}", "--experiment-id",
               "{experiment_id}", "--coordinator", "{coordinator}", "--output-dir", "{output_dir}"]
    settings = {"db_path": str(tmp_path / "lab.sqlite"), "data_dir": str(tmp_path), "runner": "local",
                "token": TOKEN, "coordinator_url": f"http://127.0.0.1:{free_port()}", "tick_interval_s": 0.1,
                "trainer_command": trainer}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    env = {"REPORTER_STEPS": str(steps), "REPORTER_STEP_SLEEP": "0.2"}
    client = httpx.Client(base_url=settings["coordinator_url"], headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=10)

    def rewards() -> list:  # [] until the experiment exists (its metrics answer 404 before)
        resp = client.get("/api/experiments/H06.gsm8k/metrics", params={"name": "reward"})
        return resp.json() if resp.status_code == 200 else []
    out = tmp_path / "outputs" / "H06.gsm8k"
    first = start_coordinator_process(tmp_path / "settings.json", env)
    try:
        client.post("/api/runs", json={"hypotheses": ["H06"]}).raise_for_status()
        deadline = time.monotonic() + 60
        while not rewards() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(rewards()) < steps, "the run ended before the coordinator could be killed mid-run"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    deadline = time.monotonic() + 60
    while not (out / "exit_code").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (out / "exit_code").read_text() == "0"
    assert "HYPOLAB_METRIC " in (out / "coordinator.log").read_text()
    second = start_coordinator_process(tmp_path / "settings.json", env)
    try:
        deadline = time.monotonic() + 30
        while client.get("/api/experiments/H06.gsm8k").json()["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [m["step"] for m in rewards()] == list(range(steps))
        assert {m["value"] for m in rewards()} == {0.1}
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()


def test_a_cluster_job_reads_its_token_from_the_file_it_is_given(tmp_path, monkeypatch):
    from hypolab.trainer.reporter import reporter_from_env

    (tmp_path / "token").write_text(f"{TOKEN}\n")
    monkeypatch.delenv("HYPOLAB_TOKEN", raising=False)
    monkeypatch.setenv("HYPOLAB_TOKEN_FILE", str(tmp_path / "token"))
    reporter = reporter_from_env("E.x", tmp_path / "out", None, False)
    assert reporter.token == TOKEN
    monkeypatch.setenv("HYPOLAB_TOKEN_FILE", str(tmp_path / "gone"))
    assert reporter_from_env("E.x", tmp_path / "out", None, False).token is None  # events still reach the log
