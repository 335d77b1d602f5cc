"""Load on a coordinator at 127.0.0.1: concurrent metric reporters and API readers.

    python bench/coordinator_load.py [--seconds 10] [--reporters 8] [--readers 4] [--batch 50] [--rate 2500]

Starts a real coordinator (uvicorn, SQLite file) in a subprocess with one running training
experiment (its "trainer" just sleeps), then for a bounded time runs `--reporters`
clients that POST MetricEvent batches (disjoint steps, 4 metrics each) and `--readers`
clients that poll the metrics, the board and the health endpoint, as the CLI and the
dashboard do. It prints ingested events per second, p50/p99 latencies of writes and
reads, and checks that every event sent was stored exactly once. Traffic goes to
127.0.0.1 only, and everything stops by itself.
Target on 2 cores: >= 2,000 metric events/s with p99 read latency under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
HYPOTHESIS = """
id: H90
title: load bench
priority: 0
order: 90
criteria: {validated: n/a, invalidated: n/a}
experiments:
  - {id: load, spec: gsm8k, stall_timeout_s: 3600, early_stop: false}
verdict:
  validated: {rule: improves, experiment: load}
  invalidated: {rule: no_improvement, experiment: load}
"""
METRICS = ("loss", "kl", "grad_norm", "learning_rate")  # no reward: the verdict engine stays idle


def serve(settings_file: str) -> None:
    import uvicorn

    from hypolab.coordinator.app import create_app
    from hypolab.coordinator.config import CoordinatorSettings

    settings = CoordinatorSettings(**json.loads(Path(settings_file).read_text()))
    port = int(settings.coordinator_url.rsplit(":", 1)[1])
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def reporter(client: httpx.AsyncClient, idx: int, n: int, batch: int, stop: float, sent: list, lat: list,
                   rate: float):
    """Sends `rate` events/s (0: as fast as it can), in batches of `batch`."""
    step = idx
    url = "/api/experiments/H90.load/metrics"
    interval = batch / rate if rate else 0.0
    next_at = time.monotonic() + (idx / n) * interval
    while time.monotonic() < stop:
        if interval:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
        events = []
        for _ in range(batch):
            events.append({"experiment_id": "H90.load", "step": step, "time": time.time(),
                           "metrics": {m: step * 0.001 + i for i, m in enumerate(METRICS)}})
            step += n
        t0 = time.perf_counter()
        resp = await client.post(url, json=events)
        lat.append(time.perf_counter() - t0)
        if resp.status_code == 200:
            sent.extend(e["step"] for e in events)
        else:
            raise RuntimeError(f"POST metrics answered {resp.status_code}: {resp.text[:200]}")


async def reader(client: httpx.AsyncClient, stop: float, lat: list, by_route: dict):
    since = -1
    i = 0
    while time.monotonic() < stop:
        i += 1
        t0 = time.perf_counter()
        if i % 3 == 0:
            route, resp = "/api/hypotheses", await client.get("/api/hypotheses")
        elif i % 3 == 1:
            route = "/api/experiments/{id}/metrics?since="
            resp = await client.get("/api/experiments/H90.load/metrics", params={"since": since, "name": "loss"})
            rows = resp.json()
            if rows:
                since = max(r["step"] for r in rows)
        else:
            route, resp = "/api/health", await client.get("/api/health")
        lat.append(time.perf_counter() - t0)
        by_route.setdefault(route, []).append(lat[-1])
        resp.raise_for_status()
        await asyncio.sleep(0.01)


async def load(url: str, args) -> dict:
    limits = httpx.Limits(max_connections=args.reporters + args.readers + 4)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits,
                                 timeout=30) as client:
        stop = time.monotonic() + args.seconds
        sent: list[int] = []
        write_lat: list[float] = []
        read_lat: list[float] = []
        by_route: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        await asyncio.gather(*[reporter(client, i, args.reporters, args.batch, stop, sent, write_lat,
                                        args.rate / args.reporters) for i in range(args.reporters)],
                             *[reader(client, stop, read_lat, by_route) for _ in range(args.readers)])
        elapsed = time.perf_counter() - t0
        stored = (await client.get("/api/experiments/H90.load/metrics", timeout=120)).json()
    per_step: dict[int, int] = {}
    for row in stored:
        per_step[row["step"]] = per_step.get(row["step"], 0) + 1
    exactly_once = (sorted(per_step) == sorted(sent) and all(c == len(METRICS) for c in per_step.values())
                    and len(set(sent)) == len(sent))
    return {"events": len(sent), "elapsed": elapsed, "write_lat": write_lat, "read_lat": read_lat, "by_route": by_route,
            "stored_values": len(stored), "exactly_once": exactly_once}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reporters", type=int, default=8)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50, help="events per POST")
    parser.add_argument("--rate", type=float, default=2500, help="events/s offered in all (0: as fast as possible)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "hyps").mkdir()
        (tmpdir / "hyps" / "H90.yaml").write_text(HYPOTHESIS)
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        settings = {"db_path": str(tmpdir / "load.sqlite"), "data_dir": str(tmpdir), "token": TOKEN,
                    "coordinator_url": url, "hypotheses_dir": str(tmpdir / "hyps"),
                    "trainer_command": [sys.executable, "-c", "import time; time.sleep(3600)"]}
        (tmpdir / "settings.json").write_text(json.dumps(settings))
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(tmpdir / "settings.json")], cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
            for _ in range(300):
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            client.post("/api/runs", json={"hypotheses": ["H90"]}).raise_for_status()
            for _ in range(300):
                if client.get("/api/experiments/H90.load").json().get("status") == "running":
                    break
                time.sleep(0.05)
            result = asyncio.run(load(url, args))
            handle = client.post("/api/experiments/H90.load/cancel")  # stops the sleeping trainer
            handle.raise_for_status()
        finally:
            server.terminate()
            server.wait(timeout=30)
    rate = result["events"] / result["elapsed"]
    w50, w99 = percentile(result["write_lat"], 0.5) * 1e3, percentile(result["write_lat"], 0.99) * 1e3
    r50, r99 = percentile(result["read_lat"], 0.5) * 1e3, percentile(result["read_lat"], 0.99) * 1e3
    offered = f"{args.rate:,.0f} events/s offered" if args.rate else "closed loop"
    print(f"coordinator load: {args.reporters} reporters x {args.batch} events/POST ({offered}), {args.readers} readers, "
          f"{result['elapsed']:.1f} s on {os.cpu_count()} cores")
    print(f"  ingested {result['events']} events ({result['stored_values']} values) = {rate:,.0f} events/s "
          f"({'met' if rate >= 2000 else 'NOT met'}: target >= 2,000)")
    print(f"  write latency p50 {w50:.1f} ms, p99 {w99:.1f} ms ({len(result['write_lat'])} POSTs)")
    print(f"  read latency  p50 {r50:.1f} ms, p99 {r99:.1f} ms ({len(result['read_lat'])} GETs; "
          f"{'met' if r99 < 50 else 'NOT met'}: target p99 < 50 ms)")
    for route, values in sorted(result["by_route"].items()):
        print(f"    {route:40s} p50 {percentile(values, 0.5) * 1e3:6.1f} ms  p99 {percentile(values, 0.99) * 1e3:6.1f} ms")
    print(f"  every event stored exactly once: {'yes' if result['exactly_once'] else 'NO'}")
    return 0 if result["exactly_once"] else 1


if __name__ == "__main__":
    sys.exit(main())
