"""The routes the trainer and the audits feed: the resolved config, the method-2 page."""


def test_trainer_config_is_stored_and_audit_reports_are_served_side_by_side(make_coordinator):
    live = make_coordinator()
    live.client.post("/api/runs", json={"hypotheses": ["H07"]}).raise_for_status()
    live.wait(lambda: live.client.get("/api/experiments/H06.gsm8k").status_code == 200, what="H06.gsm8k planned")
    body = {"experiment_id": "H06.gsm8k", "rehearsal": True, "spec": {"env": "gsm8k"}, "overrides": [
        {"path": "training.max_steps", "value": 1, "source": "flag"}], "trainer_config": {"beta": 0.001}}
    assert live.client.post("/api/experiments/H06.gsm8k/config", json=body).status_code == 200
    stored = live.client.get("/api/experiments/H06.gsm8k").json()["trainer_config"]
    assert stored["overrides"][0]["path"] == "training.max_steps" and stored["trainer_config"] == {"beta": 0.001}
    assert live.client.post("/api/experiments/nope/config", json={**body, "experiment_id": "nope"}).status_code == 404
    assert live.client.get("/api/hypotheses/H07/audit.html").status_code in (404, 200)
    live.wait(lambda: all(live.client.get(f"/api/experiments/H07.{e}").json().get("report")
                          for e in ("gsm8k", "audit-math-python", "audit-musique")), timeout=120, what="audit reports")
    page = live.client.get("/api/hypotheses/H07/audit.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "method 2" in page.text and "math-python" in page.text and "musique" in page.text
