"""The dashboard: `/`, its static files, and the charting library it draws curves with.

The curves are drawn by plotly.js, served from the installed `plotly` Python package
(the coordinator extra ships it as package data): nothing is fetched from the internet
at run time and no third-party code lives in this repository.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(__file__).resolve().parents[2] / "static"

router = APIRouter()


def plotly_js() -> Path | None:
    """plotly.min.js inside the installed `plotly` package, or None when it is not installed."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


@router.get("/", response_model=str, response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    """The dashboard page; app.py mounts STATIC at /static."""
    return HTMLResponse((STATIC / "index.html").read_text())


@router.get("/vendor/plotly.min.js", include_in_schema=False)
def charting_library() -> FileResponse:
    """plotly.js from the installed package (cached by the browser for a day)."""
    path = plotly_js()
    if path is None:
        raise HTTPException(404, "plotly is not installed: pip install 'hypolab[coordinator]'")
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})
