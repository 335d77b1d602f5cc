"""The coordinator's FastAPI app, assembled: the lab in its lifespan, middleware, routers.

`create_app(settings)` is what tests call directly (with httpx) and what `hypolab
coordinator` serves with uvicorn. OpenAPI docs are at `/docs`. Every mutating route
needs `Authorization: Bearer $HYPOLAB_TOKEN`; bodies over `max_body_bytes` are refused
before they are read. The routes themselves live in api/routes/.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..specs import load_hypotheses
from .api import errors
from .api.routes import ROUTERS
from .api.routes.dashboard import STATIC
from .config import CoordinatorSettings, resolve_token
from .runners import Runner, build_runner
from .scheduler import Lab
from .store import Store


def open_lab(settings: CoordinatorSettings, token: str, runner: Runner | None = None) -> Lab:
    """The store, the runner and the scheduler the settings describe."""
    store = Store(settings.db_path)
    runner = runner or build_runner(settings)
    trainer_cmd, audit_cmd = runner.default_commands()
    return Lab(store, runner, load_hypotheses(settings.hypotheses_dir, settings.experiments_dir),
               data_dir=settings.data_dir,
               trainer_command=settings.trainer_command or trainer_cmd,
               audit_command=settings.audit_command or audit_cmd,
               coordinator_url=settings.coordinator_url, token=token,
               vllm_command=settings.vllm_command or runner.vllm_command(),
               vllm_url=settings.vllm_url, experiments_dir=settings.experiments_dir,
               rehearsal=settings.rehearsal or (settings.runner == "local" and settings.trainer_command is None))


def create_app(settings: CoordinatorSettings | None = None, runner: Runner | None = None) -> FastAPI:
    """Build the coordinator app; the store, runner and scheduler start with it."""
    settings = settings or CoordinatorSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Request threads validate and write batches while the event loop serves reads: a
        # shorter GIL switch interval (default 5 ms) keeps reads from queueing behind them.
        sys.setswitchinterval(0.0005)
        lab = open_lab(settings, app.state.token, runner)
        app.state.store, app.state.lab = lab.store, lab
        if settings.schedule:
            lab.start_background(settings.tick_interval_s)
        try:
            yield
        finally:
            lab.stop_background()
            lab.store.close()

    app = FastAPI(title="hypolab coordinator", version=__version__, lifespan=lifespan, responses=errors.ERRORS,
                  description="Sequences hypotheses and experiments, ingests metrics, renders verdicts.")
    app.state.settings, app.state.token = settings, resolve_token(settings)
    errors.install(app, settings.max_body_bytes)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
