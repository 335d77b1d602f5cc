"""The metrics reporter never blocks training and loses nothing while the coordinator is away."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from hypolab.trainer.reporter import MetricReporter, normalise


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
