"""The ray runner on a real local Ray cluster (two nodes, logical GPUs): one Ray job per experiment.

What these show: a real `hypolab launch --rehearsal` experiment runs to `succeeded` as a
Ray job; trainings of different hypotheses run at once on the two nodes while a third
waits for room; cancel stops the Ray job; a training no node can hold is refused up
front; a runtime env that fails on the node fails the experiment with Ray's reason
before our entrypoint runs; an unreachable address or a runtime env Ray rejects is one
line, exit 2.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from hypolab.coordinator.runners import submission_id

from ..conftest import TOKEN

pytestmark = pytest.mark.ray

HYPOTHESIS = """
id: {hid}
title: ray drill {hid}
priority: 0
order: {order}
criteria: {{validated: it learns, invalidated: it does not}}
experiments:
  - {{id: run, spec: gsm8k{vary}}}
verdict:
  validated: {{rule: improves, experiment: run}}
  invalidated: {{rule: no_improvement, experiment: run}}
"""


def hypotheses(tmp_path, *hids, vary=""):
    folder = tmp_path / "hyps"
    folder.mkdir(exist_ok=True)
    for order, hid in enumerate(hids, start=1):
        (folder / f"{hid}.yaml").write_text(HYPOTHESIS.format(hid=hid, order=order, vary=vary))
    return folder


def ray_jobs(cluster, eid):
    return [j for j in cluster.client().list_jobs() if (j.metadata or {}).get("hypolab_experiment") == eid]


def experiment(live, eid):
    return live.client.get(f"/api/experiments/{eid}").json()


def status(live, eid):
    return experiment(live, eid).get("status")  # none until its hypothesis starts


def test_a_rehearsal_experiment_runs_to_succeeded_as_one_ray_job(ray_cluster, make_coordinator, tmp_path):
    live = make_coordinator(runner="ray", ray_address=ray_cluster.address, rehearsal=True, trainer_command=None,
                            hypotheses_dir=hypotheses(tmp_path, "H41"))
    assert live.client.post("/api/runs", json={"hypotheses": ["H41"]}).status_code in (200, 201)
    live.wait(lambda: status(live, "H41.run") in ("succeeded", "failed"), timeout=300,
              what="the rehearsal's Ray job")
    exp = experiment(live, "H41.run")
    assert exp["status"] == "succeeded", exp["reason"] + exp["log_tail"]
    [job] = ray_jobs(ray_cluster, "H41.run")
    lab = live.lab.ws.lab_id
    assert job.submission_id == submission_id(lab, "H41.run", 1) and str(job.status.value) == "SUCCEEDED"
    assert job.entrypoint.split(" && ", 1)[1].startswith(f"{sys.executable} -m hypolab launch --spec ")
    assert job.entrypoint.endswith("--rehearsal") and job.metadata["hypolab_lab"] == lab
    log = live.lab.log_path("H41.run").read_text()
    assert "[trainer] " in log and '"experiment_id": "H41.run"' in log  # hypolab launch's prefixed output
    assert [s.submission_id for s in live.lab.store.submissions("H41.run")] == [job.submission_id]
    env = job.runtime_env["env_vars"]  # the token is not in what Ray shows of the job, but in a private file
    assert "HYPOLAB_TOKEN" not in env and TOKEN not in str(job.runtime_env)
    token_file = Path(env["HYPOLAB_TOKEN_FILE"])
    assert token_file.read_text() == TOKEN and token_file.stat().st_mode & 0o077 == 0
    assert live.client.get("/api/experiments/H41.run/metrics").json()  # the rehearsal reported its steps


def test_two_trainings_run_at_once_on_two_nodes_while_a_third_waits(ray_cluster, make_coordinator, tmp_path):
    live = make_coordinator(runner="ray", ray_address=ray_cluster.address,
                            hypotheses_dir=hypotheses(tmp_path, "H42", "H43", "H44"))
    cluster = live.client.get("/api/health").json()["cluster"]
    assert cluster["ok"] and cluster["detail"].startswith(f"Ray at {ray_cluster.address}: 2 nodes, ")
    assert cluster["detail"].endswith(" of 8 GPUs free")
    live.client.post("/api/runs", json={"hypotheses": ["H42", "H43", "H44"]})

    # (the dashboard reports a finished job's GPUs as used for a few seconds: room may show up late)
    full = "training waits for GPUs: 4 needed, none free (2 running)"
    live.wait(lambda: live.lab.queue_paused == full, timeout=120, what="two running, the queue waiting for room")
    states = [status(live, f"{h}.run") for h in ("H42", "H43", "H44")]
    assert states == ["running", "running", "queued"]  # in order; the third has no node with 4 free GPUs
    def placed():
        jobs = [ray_jobs(ray_cluster, f"{h}.run") for h in ("H42", "H43")]
        nodes = [j[0].driver_node_id for j in jobs if len(j) == 1 and j[0].driver_node_id]
        return nodes if len(nodes) == 2 else None

    placed = live.wait(placed, timeout=60, what="both Ray jobs placed")
    assert len(placed) == len(set(placed)) == 2  # one per node: 4 GPUs each
    live.wait(lambda: all(status(live, f"{h}.run") == "succeeded" for h in ("H42", "H43", "H44")),
              timeout=240, what="all three succeeded")
    assert all(len(ray_jobs(ray_cluster, f"{h}.run")) == 1 for h in ("H42", "H43", "H44"))


def test_cancel_stops_the_running_ray_job(ray_cluster, make_coordinator, tmp_path):
    live = make_coordinator(runner="ray", ray_address=ray_cluster.address, ray_stop_grace_s=3,
                            hypotheses_dir=hypotheses(tmp_path, "H45", vary=", vary: {env_args: {fake_hang_after: 3}}"))
    live.client.post("/api/runs", json={"hypotheses": ["H45"]})
    live.wait(lambda: "hanging in a weight sync" in live.lab.log_path("H45.run").read_text()
              if live.lab.log_path("H45.run").exists() else False, timeout=120, what="the job's log in ours")
    resp = live.client.post("/api/experiments/H45.run/cancel")
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    [job] = ray_jobs(ray_cluster, "H45.run")  # it ignored SIGTERM (hung): Ray killed it after the grace
    assert str(job.status.value) == "STOPPED"


def test_a_training_no_node_can_hold_is_refused_up_front(ray_cluster, make_coordinator, tmp_path):
    live = make_coordinator(runner="ray", ray_address=ray_cluster.address,
                            hypotheses_dir=hypotheses(tmp_path, "H46", vary=", vary: {training: {num_processes: 4}}"))
    resp = live.client.post("/api/runs", json={"hypotheses": ["H46"]}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 422
    assert resp.json()["detail"] == (f"refused: H46.run needs 5 GPUs on one node (1 vLLM + 4 trainer); the largest "
                                     f"node of the Ray cluster at {ray_cluster.address} has 4")
    assert not ray_jobs(ray_cluster, "H46.run")


def test_a_runtime_env_that_fails_on_the_node_fails_the_experiment_with_rays_reason(ray_cluster, make_coordinator,
                                                                                     tmp_path):
    missing = tmp_path / "no-such-archive.zip"  # Ray fetches it on the node, before our entrypoint
    live = make_coordinator(runner="ray", ray_address=ray_cluster.address, hypotheses_dir=hypotheses(tmp_path, "H48"),
                            ray_runtime_env={"working_dir": f"file://{missing}", "env_vars": {"LAB_NOTE": "kept"}})
    live.client.post("/api/runs", json={"hypotheses": ["H48"]})
    live.wait(lambda: status(live, "H48.run") in ("succeeded", "failed"), timeout=120, what="the job's failure")
    exp = experiment(live, "H48.run")
    assert exp["status"] == "failed"
    reason = exp["reason"]  # Ray's first line and its exception, in one line
    assert "Ray: runtime_env setup failed" in reason and "\n" not in reason
    assert f"No such file or directory: '{missing}'" in reason
    [job] = ray_jobs(ray_cluster, "H48.run")
    assert str(job.status.value) == "FAILED" and job.driver_exit_code is None  # our entrypoint never ran
    assert job.runtime_env["env_vars"]["LAB_NOTE"] == "kept" and job.runtime_env["env_vars"]["PYTHONUNBUFFERED"] == "1"


def coordinator_cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "hypolab", "coordinator", "--runner", "ray", "--db",
                           str(tmp_path / "db.sqlite"), "--data-dir", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("text, said", [
    ("env_vars: {A: 1}\n", "runtime_env['env_vars'] must be of type Dict[str, str], but the value 1 is of type "
                            "<class 'int'>"),
    ("env_var: {A: '1'}\n", "unknown field 'env_var'; Ray's are: "),  # then the Ray version's list
    ("pip: [bcrypt]\n", "pip would not reach hypolab: its jobs run the checkout's .venv interpreter on each node "
                        "(install packages there)"),
])
def test_a_runtime_env_that_would_not_work_is_one_line_exit_2_before_any_cluster_is_asked(tmp_path, text, said):
    pytest.importorskip("ray")
    given = tmp_path / "env.yaml"
    given.write_text(text)
    proc = coordinator_cli(tmp_path, "--ray-address", "http://127.0.0.1:9", "--ray-runtime-env", str(given))
    [line] = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and line.startswith(f"hypolab coordinator: --ray-runtime-env: {said}")
    assert line.endswith(said) or ("env_vars" in line and "working_dir" in line and "pip" not in line)
    gone = coordinator_cli(tmp_path, "--ray-address", "http://127.0.0.1:9", "--ray-runtime-env", str(tmp_path / "x.yaml"))
    assert (gone.returncode, gone.stderr.strip().splitlines()) == (
        2, [f"hypolab coordinator: --ray-runtime-env {tmp_path / 'x.yaml'}: file not found"])


@pytest.mark.parametrize("address", ["127.0.0.1:6379", "ray://127.0.0.1:10001", "auto"])
def test_an_address_that_is_not_the_dashboards_url_is_one_line_exit_2(tmp_path, address):
    pytest.importorskip("ray")
    proc = coordinator_cli(tmp_path, "--ray-address", address)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"hypolab coordinator: --ray-address {address}: not the Ray dashboard's URL; give http://HEAD:8265 (the Jobs "
        "API), not the GCS address HEAD:6379, ray:// or auto"]


def test_an_unreachable_ray_address_is_one_line_exit_2(tmp_path):
    pytest.importorskip("ray")
    proc = subprocess.run([sys.executable, "-m", "hypolab", "coordinator", "--runner", "ray", "--ray-address",
                           "http://127.0.0.1:9", "--db", str(tmp_path / "db.sqlite"), "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "hypolab coordinator: no Ray cluster answers at http://127.0.0.1:9 (ConnectionError)"]


def test_an_audit_runs_as_a_ray_job_without_gpus(ray_cluster, make_coordinator, tmp_path):
    folder = hypotheses(tmp_path, "H47")
    text = (folder / "H47.yaml").read_text()
    (folder / "H47.yaml").write_text(text.replace("  - {id: run, spec: gsm8k}",
                                                  "  - {id: audit, spec: gsm8k, kind: audit}\n"
                                                  "  - {id: run, spec: gsm8k}"))
    live = make_coordinator(runner="ray", ray_address=ray_cluster.address, hypotheses_dir=folder)
    live.client.post("/api/runs", json={"hypotheses": ["H47"]})
    live.wait(lambda: status(live, "H47.audit") in ("succeeded", "failed"), timeout=120, what="the audit job")
    exp = experiment(live, "H47.audit")
    assert exp["status"] == "succeeded" and exp["report"]["env"] == "gsm8k"  # read from its output folder
    [job] = ray_jobs(ray_cluster, "H47.audit")
    assert job.metadata["hypolab_role"] == "audit" and job.metadata["hypolab_gpus"] == "0"
