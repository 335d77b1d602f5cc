"""Hypotheses: the board, one hypothesis in full, its audit reports side by side."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

from ....contracts import AuditReport
from ..deps import LabDep, Reader, StoreDep
from ..models import HypothesisDetail, HypothesisSummary
from ..views import hypothesis_detail, hypothesis_summaries

router = APIRouter(prefix="/api/hypotheses", tags=["hypotheses"], dependencies=[Reader])


@router.get("", response_model=list[HypothesisSummary])
async def list_hypotheses(lab: LabDep) -> list[HypothesisSummary]:
    """Every hypothesis in test order, with its status and verdict."""
    return hypothesis_summaries(lab)


@router.get("/{hid}", response_model=HypothesisDetail)
def get_hypothesis(hid: str, lab: LabDep) -> HypothesisDetail:
    """Status, verdict with its evidence, the spec and its experiments."""
    return hypothesis_detail(lab, hid)


@router.get("/{hid}/audit.html", response_model=str, response_class=HTMLResponse)
def hypothesis_audits(hid: str, store: StoreDep) -> HTMLResponse:
    """The hypothesis' audit reports side by side (H07 method 2), as one HTML page."""
    from ....audit.compare_page import html_page

    reports = [AuditReport.model_validate(r.report) for r in store.experiments(hypothesis_id=hid) if r.report]
    if not reports:
        raise HTTPException(404, f"{hid} has no audit reports yet")
    return HTMLResponse(html_page(reports))
