"""`GET /api/health`: database, runner, vLLM and queue; open to everyone (Docker's healthcheck)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from .... import __version__
from ....contracts import ComponentHealth, HealthReport
from ....endpoints import vllm_health
from ..deps import LabDep, SettingsDep, StoreDep

router = APIRouter(tags=["status"])


async def vllm_component(url: str | None, timeout_s: float) -> ComponentHealth:
    if not url:
        return ComponentHealth(ok=False, detail="no vLLM configured (embedded default: CPU only)")
    ok, detail = await asyncio.to_thread(vllm_health, url, timeout_s)
    return ComponentHealth(ok=ok, detail=detail)


@router.get("/api/health", response_model=HealthReport)
async def health(response: Response, settings: SettingsDep, store: StoreDep, lab: LabDep) -> HealthReport:
    """Database, runner and vLLM health; 503 and `degraded` when the database is unusable.

    vLLM being down does not make the coordinator unhealthy (it can still serve
    status and run CPU audits); it is reported so the board can say why work waits.
    """
    ok, detail = store.ping()
    if not ok:
        response.status_code = 503
    paused = lab.queue_paused
    cluster = await asyncio.to_thread(lab.ws.runner.cluster_health)
    return HealthReport(status="ok" if ok else "degraded", version=__version__, runner=settings.runner,
                        db=ComponentHealth(ok=ok, detail=detail),
                        vllm=await vllm_component(settings.vllm_url, settings.vllm_timeout_s),
                        queue=ComponentHealth(ok=not paused, detail=paused or "running"),
                        cluster=None if cluster is None else ComponentHealth(ok=cluster[0], detail=cluster[1]))
