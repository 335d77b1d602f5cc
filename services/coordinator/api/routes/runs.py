"""`POST /api/runs`: queue hypotheses (and those they come after)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from ..deps import LabDep, Writer
from ...scheduler.intake import RunReceipt
from ..models import RunRequest

router = APIRouter(tags=["runs"])


@router.post("/api/runs", response_model=RunReceipt, dependencies=[Writer])
def submit_run(body: RunRequest, lab: LabDep,
               idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> RunReceipt:
    """Queue hypotheses (and those they come after). Same `request_key`, same run."""
    return lab.requests.submit(body.hypotheses, body.request_key or idempotency_key)
