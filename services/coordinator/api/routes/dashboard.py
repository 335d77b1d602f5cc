"""The dashboard: `/` and its static files (board, experiment pages with live curves, audits)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

STATIC = Path(__file__).resolve().parents[2] / "static"

router = APIRouter()


@router.get("/", response_model=str, response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    """The dashboard page; app.py mounts STATIC at /static."""
    return HTMLResponse((STATIC / "index.html").read_text())
