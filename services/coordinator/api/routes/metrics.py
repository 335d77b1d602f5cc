"""An experiment's metrics: the trainer posts them, dashboards and followers poll them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse

from ....contracts import MetricEvent
from ..deps import LabDep, Reader, StoreDep, Writer
from ..models import IngestReceipt, MetricPoint

router = APIRouter(prefix="/api/experiments", tags=["experiments"])

MAX_SEQ = 2**62  # SQLite integers are 64-bit: larger query values are refused, not overflowed
MAX_BATCH = 1000


@router.post("/{eid}/metrics", response_model=IngestReceipt, dependencies=[Writer])
def post_metrics(eid: str, body: list[MetricEvent] | MetricEvent, lab: LabDep) -> IngestReceipt:
    """One MetricEvent or a batch (at most 1000) for a running experiment."""
    events = body if isinstance(body, list) else [body]
    if len(events) > MAX_BATCH:
        raise HTTPException(413, f"at most {MAX_BATCH} events per request")
    values = lab.requests.ingest(eid, events)
    return IngestReceipt(experiment_id=eid, events=len(events), values=values)


@router.get("/{eid}/metrics", response_model=list[MetricPoint], dependencies=[Reader])
async def get_metrics(eid: str, store: StoreDep, since: int = Query(-1, ge=-1, le=MAX_SEQ),
                      name: str | None = Query(None, max_length=128)) -> JSONResponse:
    """Metric values after step `since`, ordered by step: `[{step, name, value, time}]`."""
    if store.experiment_state(eid) is None:
        raise HTTPException(404, f"unknown experiment {eid!r}")
    # the store's MetricPoint rows straight to JSON, on the event loop (a short indexed read):
    # this is the route dashboards and followers poll
    return JSONResponse(store.metrics(eid, since=since, name=name))
