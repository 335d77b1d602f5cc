"""Shared test helpers: the checkout root and free 127.0.0.1 ports."""

import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def root() -> Path:
    return ROOT


FIXTURES = ROOT / "tests" / "fixtures"
TOKEN = "test-token"


class LiveCoordinator:
    """A real coordinator (uvicorn on 127.0.0.1) in a thread, with an httpx client."""

    def __init__(self, settings, runner=None):
        import threading

        import httpx
        import uvicorn

        from hypolab.coordinator.app import create_app

        self.settings = settings
        self.app = create_app(settings, runner=runner)
        port = int(settings.coordinator_url.rsplit(":", 1)[1])
        self.url = settings.coordinator_url
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
        import time

        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.05)
        assert self.server.started, "coordinator did not start"

    @property
    def lab(self):
        return self.app.state.lab

    def wait(self, predicate, timeout=60.0, what="condition"):
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def hypothesis(self, hid):
        return self.client.get(f"/api/hypotheses/{hid}").json()

    def close(self):
        """Stop the server, then whatever it left running (workloads outlive a coordinator)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        handles = [e.handle for e in self.lab.store.experiments(status="running") if e.handle]
        handles.append(self.lab.vllm.handle)
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=15)
        for handle in filter(None, handles):
            self.lab.runner.stop(handle, grace_s=2)


@pytest.fixture
def make_coordinator(tmp_path):
    """Factory: a live coordinator with the fake trainer/audit (real subprocesses)."""
    import sys

    from hypolab.coordinator.config import CoordinatorSettings

    started = []

    def make(runner_instance=None, **overrides):
        settings = dict(
            db_path=tmp_path / "lab.sqlite", data_dir=tmp_path, runner="local", token=TOKEN,
            coordinator_url=f"http://127.0.0.1:{free_port()}", tick_interval_s=0.1,
            trainer_command=[sys.executable, str(FIXTURES / "fake_trainer.py"), "--spec", "{spec}",
                             "--experiment-id", "{experiment_id}", "--coordinator", "{coordinator}",
                             "--output-dir", "{output_dir}"],
            audit_command=[sys.executable, str(FIXTURES / "fake_audit.py"), "--env", "{env}", "--stack", "{stack}",
                           "--json", "{output_dir}/audit.json"],
        )
        settings.update(overrides)
        live = LiveCoordinator(CoordinatorSettings(**settings), runner_instance)
        started.append(live)
        return live

    yield make
    for live in started:
        live.close()


def start_coordinator_process(settings_file, env=None, compose_file=None):
    """A coordinator in its own process (tests/fixtures/coordinator_proc.py), so tests can SIGKILL it."""
    import json
    import os
    import subprocess
    import sys
    import time

    import httpx

    args = [sys.executable, str(FIXTURES / "coordinator_proc.py"), str(settings_file)]
    if compose_file:
        args.append(str(compose_file))
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = json.loads(settings_file.read_text())["coordinator_url"]
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("coordinator did not start")


@pytest.fixture(scope="session")
def tok():
    """The offline Qwen2.5 tokenizer (built once per session)."""
    from hypolab.audit.tokenizer import offline_qwen25

    return offline_qwen25()
