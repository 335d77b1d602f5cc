"""End to end: a real coordinator launches `hypolab train --rehearsal`, which runs verifiers
0.1.3.post0's own GRPOTrainer on CPU (tiny Qwen2, scripted policy, no-op weight sync) and
reports loss, reward, kl, grad_norm and the in-training audit back to the coordinator."""

import json
import time

import httpx

from ..conftest import TOKEN, free_port, start_coordinator_process


def test_rehearsal_reports_to_a_real_coordinator_and_shows_the_attention_defect(tmp_path):
    settings = {"db_path": str(tmp_path / "lab.sqlite"), "data_dir": str(tmp_path), "runner": "local",
                "token": TOKEN, "coordinator_url": f"http://127.0.0.1:{free_port()}", "tick_interval_s": 0.2}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    client = httpx.Client(base_url=settings["coordinator_url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    proc = start_coordinator_process(tmp_path / "settings.json", {"HYPOLAB_CACHE_DIR": str(tmp_path / "cache")})
    try:
        client.post("/api/runs", json={"hypotheses": ["H06"]}).raise_for_status()
        deadline = time.monotonic() + 1500
        exp = {}
        while time.monotonic() < deadline:
            resp = client.get("/api/experiments/H06.gsm8k")
            exp = resp.json() if resp.status_code == 200 else {"status": "planning"}
            if exp["status"] in ("succeeded", "failed", "cancelled", "stalled"):
                break
            time.sleep(2)
        assert exp["status"] == "succeeded", exp.get("log_tail")
        names = {m["name"] for m in client.get("/api/experiments/H06.gsm8k/metrics").json()}
        assert {"loss", "reward", "kl", "grad_norm", "audit/attended_share/user"} <= names
        attended = client.get("/api/experiments/H06.gsm8k/metrics", params={"name": "audit/attended_share/user"}).json()
        values = [m["value"] for m in attended]
        assert values and all(v == 0.0 for v in values)  # legacy: loss tokens cannot attend to the prompt
        assert exp["rehearsal"] in (1, True)
        assert exp["trainer_config"]["rehearsal"] is True
        assert exp["trainer_config"]["trainer_config"]["per_device_train_batch_size"] == 4
        report = exp["report"]  # the in-training hook's AuditReport, attached to the training experiment
        assert report["rehearsal"] is True and report["stack"] == "legacy"
        assert "CONTEXT_HIDDEN_FROM_ATTENTION" in {f["code"] for f in report["findings"]}
        outputs = tmp_path / "outputs" / "H06.gsm8k"
        assert (outputs / "resolved_config.json").exists() and (outputs / "metrics.jsonl").exists()
        hyp = client.get("/api/hypotheses/H06").json()
        assert hyp["status"] not in ("validated", "invalidated")  # rehearsals are never evidence
    finally:
        proc.kill()
        proc.wait()
