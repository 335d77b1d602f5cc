"""The coordinator app's health endpoint against a real SQLite file and a real HTTP peer."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from fastapi.testclient import TestClient

from hypolab.coordinator.app import create_app
from hypolab.coordinator.config import CoordinatorSettings
from hypolab.coordinator.store import SCHEMA_VERSION, Store


class FakeVllm(BaseHTTPRequestHandler):
    """Answers /health like vLLM: 200 when loaded, 503 while `loading` is set."""

    loading = False

    def do_GET(self):
        code = 503 if (self.path != "/health" or FakeVllm.loading) else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def vllm_url():
    server = HTTPServer(("127.0.0.1", 0), FakeVllm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_health_reports_db_runner_and_vllm(tmp_path, vllm_url):
    db = tmp_path / "lab" / "hypolab.sqlite"
    with TestClient(create_app(CoordinatorSettings(db_path=db, data_dir=tmp_path, runner="local", vllm_url=vllm_url, token="t"))) as client:
        body = client.get("/api/health").json()
        assert body["status"] == "ok" and body["runner"] == "local" and body["cluster"] is None  # no cluster here
        assert body["db"]["ok"] and str(db) in body["db"]["detail"]
        assert body["vllm"] == {"ok": True, "detail": f"{vllm_url} healthy"}
        FakeVllm.loading = True
        try:
            vllm = client.get("/api/health").json()["vllm"]
        finally:
            FakeVllm.loading = False
        assert vllm == {"ok": False, "detail": f"{vllm_url}/health answered 503"}
    assert db.exists() and Store(db).schema_version() == SCHEMA_VERSION


def test_unreachable_vllm_does_not_make_the_coordinator_unhealthy(tmp_path):
    url = "http://127.0.0.1:9"  # discard port: nothing listens
    with TestClient(create_app(CoordinatorSettings(data_dir=tmp_path, token="t", db_path=tmp_path / "h.sqlite", vllm_url=url))) as client:
        resp = client.get("/api/health")
    assert resp.status_code == 200
    assert resp.json()["vllm"]["ok"] is False and "unreachable" in resp.json()["vllm"]["detail"]


def test_broken_database_is_503_degraded(tmp_path):
    settings = CoordinatorSettings(data_dir=tmp_path, token="t", db_path=tmp_path / "h.sqlite", schedule=False)
    with TestClient(create_app(settings)) as client:
        client.app.state.store.close()  # the connection is gone: every query fails
        resp = client.get("/api/health")
    assert resp.status_code == 503 and resp.json()["status"] == "degraded"
    assert resp.json()["db"]["ok"] is False


def test_openapi_docs_are_served(tmp_path):
    with TestClient(create_app(CoordinatorSettings(data_dir=tmp_path, token="t", db_path=tmp_path / "h.sqlite"))) as client:
        assert client.get("/docs").status_code == 200
        assert "/api/health" in client.get("/openapi.json").json()["paths"]


def test_store_survives_reopen(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    store = Store(path)
    assert store.ping()[0] and store.schema_version() == SCHEMA_VERSION
    store.close()
