"""Experiments: list, one in full, its log, cancel and retry, the trainer's config and reports."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from ....contracts import FINISHED, AuditReport, ExperimentStatus, TrainerConfigReport
from ..deps import LabDep, Reader, StoreDep, Writer
from ..models import ExperimentView, StoredReceipt
from ..views import experiment, experiment_view

router = APIRouter(prefix="/api/experiments", tags=["experiments"])


@router.get("", response_model=list[ExperimentView], dependencies=[Reader])
def list_experiments(lab: LabDep, status: ExperimentStatus | None = Query(None)) -> list[ExperimentView]:
    return [experiment_view(lab, r) for r in lab.store.experiments(status=status)]


@router.get("/{eid}", response_model=ExperimentView, dependencies=[Reader])
def get_experiment(eid: str, lab: LabDep) -> ExperimentView:
    """Config, diff to control, status, timestamps, exit code, log tail."""
    return experiment(lab, eid)


@router.post("/{eid}/cancel", response_model=ExperimentView, dependencies=[Writer])
def cancel(eid: str, lab: LabDep) -> ExperimentView:
    return experiment_view(lab, lab.requests.cancel(eid))


@router.post("/{eid}/retry", response_model=ExperimentView, dependencies=[Writer])
def retry(eid: str, lab: LabDep) -> ExperimentView:
    return experiment_view(lab, lab.requests.retry(eid))


@router.post("/{eid}/config", response_model=StoredReceipt, dependencies=[Writer])
def post_trainer_config(eid: str, config: TrainerConfigReport, lab: LabDep) -> StoredReceipt:
    """The trainer's resolved config, sent before its first step (shown with the experiment)."""
    lab.requests.attach(eid, "trainer_config", config.model_dump(mode="json"))
    return StoredReceipt(experiment_id=eid, stored="trainer_config")


@router.post("/{eid}/report", response_model=StoredReceipt, dependencies=[Writer])
def post_report(eid: str, report: AuditReport, lab: LabDep) -> StoredReceipt:
    """Attach an audit report to an experiment."""
    lab.requests.attach(eid, "report", report.model_dump(mode="json"))
    return StoredReceipt(experiment_id=eid, stored="report")


@router.get("/{eid}/logs", response_model=str, response_class=PlainTextResponse, dependencies=[Reader])
async def get_logs(eid: str, request: Request, lab: LabDep, store: StoreDep, follow: bool = False) -> StreamingResponse:
    """The workload's log; with `follow=true` it streams until the experiment finishes."""
    lab.requests.experiment_or_404(eid)
    path = lab.log_path(eid)

    async def stream():
        offset = 0
        while True:
            if path.exists():
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                offset += len(chunk)
                if chunk:
                    yield chunk
            state = store.experiment_state(eid)
            if not follow or state is None or state.status in FINISHED or await request.is_disconnected():
                return
            await asyncio.sleep(0.5)

    return StreamingResponse(stream(), media_type="text/plain")
