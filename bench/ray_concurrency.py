"""Ray runner: 4 experiments on 2 nodes, one at a time vs as many as fit; submit-to-running latency.

Starts a real local Ray cluster (a head and a second node, 4 logical GPUs each, no CUDA
needed), then runs the same four trainings (the fake trainer of tests/fixtures, each
asking for 4 GPUs: vLLM + 3 trainer processes) twice through a live coordinator:
`serial` (one training at a time, as on one GPU set) and `concurrent` (the ray runner's
capacity: one per node). Prints the wall time of each, the speed-up, and the latency
from the coordinator's submission to Ray's RUNNING, per experiment. Stops the cluster.

    .venv/bin/python bench/ray_concurrency.py [--steps 60] [--step-sleep 0.1]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).parent / "ray"
FAKE = ROOT / "tests" / "fixtures" / "fake_trainer.py"
HYPOTHESIS = """
id: {hid}
title: bench {hid}
priority: 0
order: {order}
criteria: {{validated: it learns, invalidated: it does not}}
experiments:
  - {{id: run, spec: gsm8k}}
verdict:
  validated: {{rule: improves, experiment: run}}
  invalidated: {{rule: no_improvement, experiment: run}}
"""
HIDS = ["H81", "H82", "H83", "H84"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray(*args: str, env: dict[str, str]) -> None:
    subprocess.run([str(RAY), *args], env=env, check=True, capture_output=True, timeout=180)


def start_cluster(env: dict[str, str]) -> str:
    gcs, dash = free_port(), free_port()
    common = ["--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--num-gpus", "4"]
    ray("start", "--head", "--num-cpus", "2", "--port", str(gcs), "--dashboard-host", "127.0.0.1",
        "--dashboard-port", str(dash), "--ray-client-server-port", str(free_port()),
        "--dashboard-agent-listen-port", str(free_port()), "--metrics-export-port", str(free_port()),
        "--runtime-env-agent-port", str(free_port()), *common, env=env)
    ray("start", "--address", f"127.0.0.1:{gcs}", "--num-cpus", "1", "--dashboard-agent-listen-port",
        str(free_port()), "--metrics-export-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
        *common, env=env)
    return f"http://127.0.0.1:{dash}"


def run_mode(address: str, serial: bool, work: Path) -> tuple[float, list[float], int]:
    """Wall time of the four trainings, each one's submit-to-RUNNING latency (s), and how many the verdict stopped early."""
    import httpx
    import uvicorn

    from hypolab.coordinator.app import create_app
    from hypolab.coordinator.config import CoordinatorSettings
    from hypolab.coordinator.ray_runner import RayRunner

    class OneAtATime(RayRunner):
        def training_slots(self, gpus: int, running: int) -> int:
            return min(0 if running else 1, super().training_slots(gpus, running))

    hyps = work / "hyps"
    hyps.mkdir(parents=True)
    for order, hid in enumerate(HIDS, start=1):
        (hyps / f"{hid}.yaml").write_text(HYPOTHESIS.format(hid=hid, order=order))
    port = free_port()
    settings = CoordinatorSettings(
        db_path=work / "lab.sqlite", data_dir=work, runner="ray", ray_address=address, token="bench",
        coordinator_url=f"http://127.0.0.1:{port}", tick_interval_s=0.1, hypotheses_dir=hyps,
        trainer_command=[sys.executable, str(FAKE), "--spec", "{spec}", "--experiment-id", "{experiment_id}",
                         "--coordinator", "{coordinator}", "--output-dir", "{output_dir}"])
    runner = (OneAtATime if serial else RayRunner)(address, workdir=work)
    deadline = time.monotonic() + 60  # the dashboard shows a finished job's GPUs as used for a few seconds
    while any(used for used, _ in runner.nodes().values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, runner=runner), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    client = httpx.Client(base_url=settings.coordinator_url, headers={"Authorization": "Bearer bench"}, timeout=20)
    running_at: dict[str, float] = {}
    start = time.monotonic()
    client.post("/api/runs", json={"hypotheses": HIDS})
    eids = [f"{h}.run" for h in HIDS]
    while True:
        for job in runner.client.list_jobs():
            meta = job.metadata or {}
            eid = meta.get("hypolab_experiment")
            if meta.get("hypolab_lab") == runner.lab_id and eid in eids and eid not in running_at and str(job.status.value) in ("RUNNING", "SUCCEEDED", "STOPPED"):
                running_at[eid] = time.time()
        rows = {e: client.get(f"/api/experiments/{e}").json() for e in eids}
        if all(r.get("status") in ("succeeded", "failed", "cancelled") for r in rows.values()):
            break
        time.sleep(0.1)
    wall = time.monotonic() - start
    latencies = [running_at[e] - rows[e]["started_at"] for e in eids if e in running_at]
    bad = [f"{e}: {r['status']} {r['reason']}" for e, r in rows.items() if r["status"] != "succeeded"]
    if bad:
        print("bench: not all succeeded: " + "; ".join(bad), file=sys.stderr)
    early = sum(1 for r in rows.values() if r["reason"].startswith("stopped early"))
    client.close()
    server.should_exit = True
    return wall, latencies, early


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="fake trainer steps per experiment")
    parser.add_argument("--step-sleep", type=float, default=0.1, help="seconds per step")
    args = parser.parse_args()
    if not RAY.exists():
        print(f"bench: no `ray` beside {sys.executable}: make install (the [ray] extra)", file=sys.stderr)
        return 2
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "FAKE_STEPS": str(args.steps),
           "FAKE_STEP_SLEEP": str(args.step_sleep), "FAKE_FLAT": "1"}
    os.environ.update({k: env[k] for k in ("FAKE_STEPS", "FAKE_STEP_SLEEP", "FAKE_FLAT")})
    address = start_cluster(env)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = {mode: run_mode(address, mode == "serial", Path(tmp) / mode) for mode in ("serial", "concurrent")}
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120)
    print(f"ray_concurrency: 4 experiments x 4 GPUs on 2 nodes x 4 GPUs ({args.steps} steps x {args.step_sleep} s)")
    for mode, (wall, lat, early) in results.items():
        shown = f"median {statistics.median(lat):.2f} s, max {max(lat):.2f} s" if lat else "n/a"
        print(f"  {mode:<10} wall {wall:6.1f} s   submit-to-running {shown} (n={len(lat)}); "
              f"{early}/4 stopped early by their verdict")
    serial, concurrent = results["serial"][0], results["concurrent"][0]
    print(f"  speed-up   {serial / concurrent:.2f}x (ideal 2.00x: one experiment per node)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
