"""`GET /metrics`: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from ..deps import StoreDep
from ..views import prometheus_text

router = APIRouter(tags=["status"])


@router.get("/metrics", response_model=str, response_class=PlainTextResponse)
def prometheus(store: StoreDep) -> str:
    """Prometheus text format: experiments and hypotheses by status, stored metric values."""
    return prometheus_text(store)
