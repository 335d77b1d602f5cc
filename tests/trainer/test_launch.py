"""`hypolab launch`: the vLLM/trainer pair of one experiment as plain processes on one node.

The pair runs with the stand-in vLLM of tests/fixtures (a real HTTP server with
`/health`) and a small trainer that asks it for its health; the rehearsal runs the real
`hypolab train --rehearsal` through the CLI.
"""

import io
import os
import signal
import subprocess
import sys

from hypolab.trainer.launch import LaunchPlan, Workload, plan_launch, run_workloads

from ..conftest import FIXTURES, ROOT, free_port

GSM8K = ROOT / "configs" / "experiments" / "gsm8k.yaml"

TRAINER = """
import os, sys, httpx
print("healthy", httpx.get(sys.argv[1] + "/health").status_code, "gpus", os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
sys.exit(int(sys.argv[2]))
"""


def pair(tmp_path, trainer_code=0, vllm_argv=None):
    port = free_port()
    vllm = vllm_argv or [sys.executable, str(FIXTURES / "fake_vllm.py"), str(port), str(tmp_path / "starts")]
    url = f"http://127.0.0.1:{port}"
    return LaunchPlan(vllm=Workload(name="vllm", command=vllm, env={"CUDA_VISIBLE_DEVICES": "0"}),
                      trainer=Workload(name="trainer", command=[sys.executable, "-c", TRAINER, url, str(trainer_code)],
                                       env={"CUDA_VISIBLE_DEVICES": "1,2,3"}),
                      health_url=url)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def vllm_pids():
    out = subprocess.run(["pgrep", "-f", "fake_vllm.py"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_trainer_starts_once_vllm_is_healthy_and_vllm_stops_last(tmp_path):
    out = io.StringIO()
    before = vllm_pids()
    assert run_workloads(pair(tmp_path), out=out, grace_s=5) == 0
    lines = out.getvalue().splitlines()
    healthy = next(i for i, line in enumerate(lines) if line.startswith("[launch] vLLM healthy"))
    assert lines[healthy + 1:].count("[trainer] healthy 200 gpus 1,2,3") == 1
    assert not (vllm_pids() - before)  # vLLM stopped when the trainer ended


def test_a_failed_trainer_fails_the_launch_and_stops_vllm(tmp_path):
    before = vllm_pids()
    assert run_workloads(pair(tmp_path, trainer_code=3), out=io.StringIO(), grace_s=5) == 3
    assert not (vllm_pids() - before)


def test_vllm_that_dies_before_health_never_starts_the_trainer(tmp_path):
    out = io.StringIO()
    plan = pair(tmp_path, vllm_argv=[sys.executable, "-c", "print('CUDA out of memory'); raise SystemExit(1)"])
    assert run_workloads(plan, out=out, grace_s=5) == 1
    text = out.getvalue()
    assert "[vllm] CUDA out of memory" in text and "before it was healthy" in text and "[trainer]" not in text


def test_sigterm_stops_both(tmp_path):
    port = free_port()
    script = f"""
import sys
from hypolab.trainer.launch import LaunchPlan, Workload, run_workloads
plan = LaunchPlan(vllm=Workload(name="vllm", command=[sys.executable, {str(FIXTURES / 'fake_vllm.py')!r}, "{port}",
                                                      {str(tmp_path / 'starts')!r}]),
                  trainer=Workload(name="trainer", command=[sys.executable, "-c",
                                   "import os, time; print('pid', os.getpid(), flush=True); time.sleep(600)"]),
                  health_url="http://127.0.0.1:{port}")
sys.exit(run_workloads(plan, grace_s=5))
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("[trainer] pid"):
            trainer_pid = int(line.split()[-1])
            break
    vllm = vllm_pids()
    assert vllm and alive(trainer_pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert not alive(trainer_pid) and not any(alive(p) for p in vllm & vllm_pids())


def test_too_few_gpus_is_refused_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "hypolab", "launch", "--spec", str(GSM8K)], capture_output=True,
                          text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": "0,1"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"hypolab launch: {GSM8K}: needs 4 GPUs (1 vLLM + 3 trainer), 2 visible (CUDA_VISIBLE_DEVICES=0,1)"]


def test_an_empty_cuda_visible_devices_is_no_gpu_not_a_node_of_our_own():
    proc = subprocess.run([sys.executable, "-m", "hypolab", "launch", "--spec", str(GSM8K), "--check"],
                          capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"hypolab launch: {GSM8K}: needs 4 GPUs (1 vLLM + 3 trainer), 0 visible (CUDA_VISIBLE_DEVICES=)"]
    unset = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    mine = subprocess.run([sys.executable, "-m", "hypolab", "launch", "--spec", str(GSM8K), "--check"],
                          capture_output=True, text=True, env=unset)
    assert mine.returncode == 0 and '"CUDA_VISIBLE_DEVICES": "1,2,3"' in mine.stdout, mine.stdout + mine.stderr


def test_the_pair_runs_the_stack_s_server_and_accelerate_on_the_visible_gpus():
    plan = plan_launch(GSM8K, gpus=["4", "5", "6", "7"], vllm_port=8123)
    assert plan.vllm.command[0].endswith("vf-vllm") and plan.vllm.env == {"CUDA_VISIBLE_DEVICES": "4"}
    assert plan.vllm.command[plan.vllm.command.index("--max-model-len") + 1] == "8192"
    assert plan.trainer.env == {"CUDA_VISIBLE_DEVICES": "5,6,7"}
    assert plan.trainer.command[plan.trainer.command.index("--num-processes") + 1] == "3"
    assert plan.trainer.command[-2:] == ["--vllm-url", "http://127.0.0.1:8123"]


def test_rehearsal_runs_the_real_trainer_with_prefixed_output(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hypolab", "launch", "--rehearsal", "--spec", str(GSM8K),
                           "--experiment-id", "L.rehearsal", "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith("[trainer] ") for line in lines)
    assert (tmp_path / "out" / "summary.json").exists()
    assert any(line.startswith("[trainer]") and "\"experiment_id\": \"L.rehearsal\"" in line for line in lines)
