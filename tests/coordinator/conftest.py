"""A real local Ray cluster for the ray runner's tests (marker `ray`): a head and a worker node.

Both raylets run on this host with logical GPUs (no CUDA needed): the head with 4 GPUs
and 2 CPUs, a second node with 4 GPUs and 1 CPU. They are started with the venv's own
`ray` (absolute path) on free ports, and stopped with `ray stop --force` afterwards.
Jobs inherit the raylets' environment: the fake trainer's knobs are set here.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import free_port

RAY = Path(sys.executable).parent / "ray"


@dataclass
class RayCluster:
    address: str  # the dashboard: Jobs API
    gcs: str
    env: dict[str, str]

    def start_worker(self) -> None:
        _ray("start", "--address", self.gcs, "--num-gpus", "4", "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
             "--dashboard-agent-listen-port", str(free_port()), "--metrics-export-port", str(free_port()),
             "--runtime-env-agent-port", str(free_port()), "--disable-usage-stats", env=self.env)

    def restart(self) -> None:
        """Every raylet stopped and started again on the same ports: Ray's job table is gone."""
        _ray("stop", "--force", env=self.env, check=False)
        start_head(self.env, int(self.gcs.rsplit(":", 1)[1]), int(self.address.rsplit(":", 1)[1]))
        self.start_worker()
        wait_nodes(self, 2)

    def client(self):
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.address)

    def node_count(self) -> int:
        import httpx

        return len(httpx.get(f"{self.address}/nodes", params={"view": "summary"}, timeout=10)
                   .json()["data"]["nodeLogicalResources"])


def _ray(*args: str, env: dict[str, str], check: bool = True) -> None:
    proc = subprocess.run([str(RAY), *args], env=env, capture_output=True, text=True, timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"ray {args[0]} failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")


def start_head(env: dict[str, str], gcs_port: int, dashboard_port: int) -> None:
    _ray("start", "--head", "--num-gpus", "4", "--num-cpus", "2", "--node-ip-address", "127.0.0.1",
         "--port", str(gcs_port), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
         "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
         "--metrics-export-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
         "--disable-usage-stats", env=env)


def wait_nodes(cluster: RayCluster, n: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cluster.node_count() >= n:
                return
        except Exception:  # the dashboard is still starting
            pass
        time.sleep(0.5)
    raise AssertionError(f"the Ray cluster did not reach {n} nodes")


@pytest.fixture(scope="session")
def ray_cluster():
    if importlib.util.find_spec("ray") is None or not RAY.exists():
        if os.environ.get("CI"):
            pytest.fail("CI needs ray[default] (make install installs the [ray] extra)")
        pytest.skip("ray[default] is not installed in this venv")
    gcs_port, dashboard_port = free_port(), free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "FAKE_STEPS": "40", "FAKE_STEP_SLEEP": "0.1"}
    cluster = RayCluster(address=f"http://127.0.0.1:{dashboard_port}", gcs=f"127.0.0.1:{gcs_port}", env=env)
    try:
        start_head(env, gcs_port, dashboard_port)
        cluster.start_worker()
        wait_nodes(cluster, 2)
        yield cluster
    finally:
        _ray("stop", "--force", env=env, check=False)
