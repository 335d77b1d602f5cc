"""The dashboard's files: the page, and plotly.js served from the installed `plotly` package."""

from fastapi.testclient import TestClient

from hypolab.coordinator.api.routes.dashboard import plotly_js
from hypolab.coordinator.app import create_app
from hypolab.coordinator.config import CoordinatorSettings


def test_the_page_loads_plotly_from_the_coordinator_not_the_internet(tmp_path):
    settings = CoordinatorSettings(data_dir=tmp_path, token="t", db_path=tmp_path / "d.sqlite", schedule=False)
    with TestClient(create_app(settings)) as client:
        page = client.get("/").text
        assert '<script src="/vendor/plotly.min.js"></script>' in page and "http" not in page.split("<body>")[1]
        js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    path = plotly_js()
    assert path is not None and js.content == path.read_bytes()  # the installed package's own file
    assert "plotly.js v" in js.text[:200]  # the library's own banner
