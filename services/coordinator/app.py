"""The coordinator's FastAPI app factory and its routes.

`create_app(settings)` is what tests call directly (with httpx) and what
`hypolab coordinator` serves with uvicorn. OpenAPI docs are at `/docs`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import httpx
from fastapi import FastAPI, Response
from pydantic import BaseModel, Field

from .. import __version__
from ..contracts import ComponentHealth, HealthReport
from .store import Store


class CoordinatorSettings(BaseModel):
    """How one coordinator process runs (CLI flags and the environment fill these in)."""

    db_path: Path = Field(Path("hypolab.sqlite"), description="SQLite database file")
    runner: Literal["local", "docker"] = "local"
    vllm_url: str | None = Field(None, description="base URL of the vLLM server, e.g. http://vllm:8000")
    vllm_timeout_s: float = 2.0


async def probe_vllm(url: str | None, timeout_s: float) -> ComponentHealth:
    """vLLM's own `/health` route answers 200 once the model is loaded."""
    if not url:
        return ComponentHealth(ok=False, detail="no vLLM configured (embedded default: CPU only)")
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            resp = await client.get(url.rstrip("/") + "/health")
        if resp.status_code == 200:
            return ComponentHealth(ok=True, detail=f"{url} healthy")
        return ComponentHealth(ok=False, detail=f"{url}/health answered {resp.status_code}")
    except httpx.HTTPError as exc:
        return ComponentHealth(ok=False, detail=f"{url} unreachable: {type(exc).__name__}")


def create_app(settings: CoordinatorSettings | None = None) -> FastAPI:
    """Build the coordinator app; the store opens on startup and closes on shutdown."""
    settings = settings or CoordinatorSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.store = Store(settings.db_path)
        try:
            yield
        finally:
            app.state.store.close()

    app = FastAPI(
        title="hypolab coordinator",
        version=__version__,
        description="Sequences hypotheses and experiments, ingests metrics, renders verdicts.",
        lifespan=lifespan,
    )
    app.state.settings = settings

    @app.get("/api/health", response_model=HealthReport, tags=["status"])
    async def health(response: Response) -> HealthReport:
        """Database, runner and vLLM health; 503 and `degraded` when the database is unusable.

        vLLM being down does not make the coordinator unhealthy (it can still serve
        status and run CPU audits); it is reported so the board can say why work waits.
        """
        ok, detail = app.state.store.ping()
        if not ok:
            response.status_code = 503
        vllm = await probe_vllm(settings.vllm_url, settings.vllm_timeout_s)
        return HealthReport(
            status="ok" if ok else "degraded",
            version=__version__,
            runner=settings.runner,
            db=ComponentHealth(ok=ok, detail=detail),
            vllm=vllm,
        )

    return app
