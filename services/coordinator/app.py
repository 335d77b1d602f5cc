"""The coordinator's FastAPI app: routes over the `Lab` (scheduler.py).

`create_app(settings)` is what tests call directly (with httpx) and what `hypolab
coordinator` serves with uvicorn. OpenAPI docs are at `/docs`. Every mutating route
needs `Authorization: Bearer $HYPOLAB_TOKEN`; bodies over `max_body_bytes` are refused
before they are read.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from .. import __version__
from ..contracts import FINISHED, AuditReport, ComponentHealth, HealthReport, MetricEvent, TrainerConfigReport
from ..specs import EXPERIMENTS_DIR, HYPOTHESES_DIR, load_hypotheses
from .runners import LocalRunner, Runner
from .scheduler import Lab, LabError, tail
from .store import Store

from ..paths import ROOT


MAX_SEQ = 2**62  # SQLite integers are 64-bit: larger query values are refused, not overflowed


class CoordinatorSettings(BaseModel):
    """How one coordinator process runs (CLI flags and the environment fill these in)."""

    db_path: Path = Field(Path("hypolab.sqlite"), description="SQLite database file")
    data_dir: Path = Field(Path("."), description="outputs/<experiment>/ live here (specs, logs, reports)")
    runner: Literal["local", "docker"] = "local"
    token: str | None = Field(None, description="API token; generated and saved beside the db when unset")
    vllm_url: str | None = Field(None, description="base URL of the vLLM server, e.g. http://vllm:8000")
    vllm_timeout_s: float = 2.0
    hypotheses_dir: Path = HYPOTHESES_DIR
    experiments_dir: Path = EXPERIMENTS_DIR
    coordinator_url: str = Field("http://127.0.0.1:8080", description="how workloads reach this coordinator")
    trainer_command: list[str] | None = None  # template; default depends on the runner
    audit_command: list[str] | None = None
    vllm_command: list[str] | None = None
    compose_files: list[str] = ["compose.yaml"]
    compose_project: str = "hypolab"
    trainer_gpus: list[int] = [1, 2, 3]
    schedule: bool = True
    tick_interval_s: float = 0.5
    max_body_bytes: int = 1_000_000
    private_reads: bool = False


class ErrorBody(BaseModel):
    """Every 4xx answer: what is wrong and what to fix."""

    detail: str


ERRORS = {code: {"model": ErrorBody, "description": text, "content": {"application/json": {}}} for code, text in (
    (400, "malformed body (not JSON)"), (401, "missing or wrong token"), (404, "unknown hypothesis or experiment"),
    (409, "not possible in the experiment's current state"), (413, "body too large"),
    (422, "invalid request: the detail says which field and why"))}


class RunRequest(BaseModel):
    hypotheses: list[str] = Field(..., min_length=1, max_length=50)
    request_key: str | None = Field(None, max_length=200, description="same key, same run: safe to retry")


class RunReceipt(BaseModel):
    run_id: int
    hypotheses: list[str]
    created: bool


class IngestReceipt(BaseModel):
    experiment_id: str
    events: int
    values: int


def resolve_token(settings: CoordinatorSettings) -> str:
    """The API token: from settings, else saved beside the database, else new (printed once)."""
    if settings.token:
        return settings.token
    path = settings.db_path.with_name(settings.db_path.name + ".token")
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token)
    print(f"hypolab: generated API token (saved in {path}); use it as HYPOLAB_TOKEN:\n{token}", file=sys.stderr)
    return token


def default_commands(settings: CoordinatorSettings, runner: Runner) -> tuple[list[str], list[str]]:
    """Trainer and audit command templates ({placeholders} filled per experiment)."""
    train_args = ["train", "--spec", "{spec}", "--experiment-id", "{experiment_id}",
                  "--coordinator", "{coordinator}", "--output-dir", "{output_dir}"]
    audit_args = ["audit", "--env", "{env}", "--stack", "{stack}", "--scripted", "--json", "{output_dir}/audit.json"]
    if runner.name == "docker":
        # compose.yaml's trainer command up to `-m hypolab`: accelerate launch with ZeRO-3
        base = runner.service("trainer")["command"]
        prefix = base[: base.index("hypolab") + 1]
        return [*prefix, *train_args], ["python3", "-m", "hypolab", *audit_args]
    local = ["{python}", "-m", "hypolab"]
    return [*local, *train_args, "--rehearsal"], [*local, *audit_args]


def build_runner(settings: CoordinatorSettings) -> Runner:
    if settings.runner == "docker":
        from .docker_runner import DockerRunner, load_compose_config

        config = load_compose_config(ROOT, settings.compose_files, settings.compose_project)
        return DockerRunner(config, settings.compose_project)
    return LocalRunner(settings.data_dir, settings.trainer_gpus, outputs=settings.data_dir / "outputs")


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


def experiment_view(lab: Lab, row: dict[str, Any]) -> dict[str, Any]:
    planned = lab.planned(row["id"])
    view = {k: v for k, v in row.items() if k not in ("handle",)}
    view["purpose"] = planned.purpose if planned else ""
    if row["status"] not in FINISHED:
        view["log_tail"] = tail(lab.log_path(row["id"]))
    return view


def create_app(settings: CoordinatorSettings | None = None, runner: Runner | None = None) -> FastAPI:
    """Build the coordinator app; the store, runner and scheduler start with it."""
    settings = settings or CoordinatorSettings()
    token = resolve_token(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Request threads validate and write batches while the event loop serves reads: a
        # shorter GIL switch interval (default 5 ms) keeps reads from queueing behind them.
        sys.setswitchinterval(0.0005)
        store = Store(settings.db_path)
        hypotheses = load_hypotheses(settings.hypotheses_dir, settings.experiments_dir)
        the_runner = runner or build_runner(settings)
        trainer_cmd, audit_cmd = default_commands(settings, the_runner)
        lab = Lab(store, the_runner, hypotheses, data_dir=settings.data_dir,
                  trainer_command=settings.trainer_command or trainer_cmd,
                  audit_command=settings.audit_command or audit_cmd,
                  coordinator_url=settings.coordinator_url, token=token,
                  vllm_command=settings.vllm_command or (
                      the_runner.vllm_command() if the_runner.name == "docker" else None),
                  vllm_url=settings.vllm_url,
                  experiments_dir=settings.experiments_dir,
                  rehearsal=settings.runner == "local" and settings.trainer_command is None)
        app.state.store, app.state.lab = store, lab
        if settings.schedule:
            lab.start_background(settings.tick_interval_s)
        try:
            yield
        finally:
            lab.stop_background()
            store.close()

    app = FastAPI(
        title="hypolab coordinator",
        version=__version__,
        description="Sequences hypotheses and experiments, ingests metrics, renders verdicts.",
        lifespan=lifespan,
        responses=ERRORS,
    )
    app.state.settings = settings

    too_big = {"detail": f"body over {settings.max_body_bytes} bytes; send smaller batches"}

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        """Refuse oversized bodies before reading them: by Content-Length, or while streaming."""
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return JSONResponse(too_big, status_code=413)
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > settings.max_body_bytes:
                    return JSONResponse(too_big, status_code=413)

            async def replay():
                return {"type": "http.request", "body": body, "more_body": False}

            request = Request(request.scope, replay)
        return await call_next(request)

    def check_token(authorization: str | None) -> None:
        expected = f"Bearer {token}"
        if authorization is None or not secrets.compare_digest(authorization.encode(), expected.encode()):
            raise HTTPException(401, "missing or wrong token: send `Authorization: Bearer $HYPOLAB_TOKEN`",
                                headers={"WWW-Authenticate": "Bearer"})

    def writer(authorization: str | None = Header(None)) -> None:
        check_token(authorization)

    def reader(authorization: str | None = Header(None)) -> None:
        if settings.private_reads:
            check_token(authorization)

    def lab_of(request: Request) -> Lab:
        return request.app.state.lab

    @app.exception_handler(LabError)
    async def lab_error(_: Request, exc: LabError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError):
        """422 that says what to fix, without echoing the input (it may hold NaN or worse)."""
        problems = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "invalid"))[:300]}
            for err in exc.errors()[:20]
        ]
        summary = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems)
        return JSONResponse({"detail": summary[:2000], "errors": problems}, status_code=422)

    @app.get("/api/health", response_model=HealthReport, tags=["status"])
    async def health(request: Request, response: Response) -> HealthReport:
        """Database, runner and vLLM health; 503 and `degraded` when the database is unusable.

        vLLM being down does not make the coordinator unhealthy (it can still serve
        status and run CPU audits); it is reported so the board can say why work waits.
        """
        ok, detail = request.app.state.store.ping()
        if not ok:
            response.status_code = 503
        vllm = await probe_vllm(settings.vllm_url, settings.vllm_timeout_s)
        paused = request.app.state.lab.queue_paused
        queue = ComponentHealth(ok=not paused, detail=paused or "running")
        return HealthReport(status="ok" if ok else "degraded", version=__version__, runner=settings.runner,
                            db=ComponentHealth(ok=ok, detail=detail), vllm=vllm, queue=queue)

    @app.get("/api/hypotheses", tags=["hypotheses"], dependencies=[Depends(reader)])
    async def list_hypotheses(request: Request) -> JSONResponse:
        """Every hypothesis in test order, with its status and verdict."""
        lab, rows = lab_of(request), request.app.state.store.hypotheses()
        return JSONResponse([{"id": hid, "title": h.title, "priority": h.priority, "order": h.order, "after": h.after,
                 "next": h.next.model_dump(), "status": rows[hid]["status"], "queued": bool(rows[hid]["queued"]),
                 "verdict": rows[hid]["verdict"]} for hid, h in lab.hypotheses.items()])

    @app.get("/api/hypotheses/{hid}", tags=["hypotheses"], dependencies=[Depends(reader)])
    def get_hypothesis(hid: str, request: Request) -> dict[str, Any]:
        """Status, verdict with its evidence, the spec and its experiments."""
        lab = lab_of(request)
        if hid not in lab.hypotheses:
            raise HTTPException(404, f"unknown hypothesis {hid!r}; known: {', '.join(lab.hypotheses)}")
        row = request.app.state.store.hypothesis(hid)
        current = lab.verdict_of(hid) if row["status"] == "testing" else None
        experiments = []
        for p in lab.plans[hid]:
            stored = request.app.state.store.experiment(p.id)
            experiments.append(experiment_view(lab, stored) if stored else
                               {"id": p.id, "status": "pending", "kind": p.kind, "config": p.spec.model_dump(mode="json"),
                                "control_id": p.control_id, "diff": [d.model_dump(mode="json") for d in p.diff],
                                "undeclared": p.undeclared, "purpose": p.purpose})
        return {"id": hid, "status": row["status"], "queued": bool(row["queued"]), "verdict": row["verdict"],
                "current_evidence": current.model_dump(mode="json") if current else None,
                "spec": lab.hypotheses[hid].model_dump(mode="json"), "experiments": experiments}

    @app.post("/api/runs", response_model=RunReceipt, tags=["runs"], dependencies=[Depends(writer)])
    def submit_run(body: RunRequest, request: Request,
                   idempotency_key: str | None = Header(None, max_length=200)) -> RunReceipt:
        """Queue hypotheses (and those they come after). Same `request_key`, same run."""
        return RunReceipt(**lab_of(request).submit(body.hypotheses, body.request_key or idempotency_key))

    @app.get("/api/experiments", tags=["experiments"], dependencies=[Depends(reader)])
    def list_experiments(request: Request, status: str | None = Query(None, max_length=20)) -> list[dict[str, Any]]:
        lab = lab_of(request)
        return [experiment_view(lab, r) for r in request.app.state.store.experiments(status=status)]

    def experiment_or_404(request: Request, eid: str) -> dict[str, Any]:
        row = request.app.state.store.experiment(eid)
        if row is None:
            raise HTTPException(404, f"unknown experiment {eid!r}")
        return row

    @app.get("/api/experiments/{eid}", tags=["experiments"], dependencies=[Depends(reader)])
    def get_experiment(eid: str, request: Request) -> dict[str, Any]:
        """Config, diff to control, status, timestamps, exit code, log tail."""
        row = experiment_or_404(request, eid)
        view = experiment_view(lab_of(request), row)
        view["log_tail"] = tail(lab_of(request).log_path(eid))
        return view

    @app.post("/api/experiments/{eid}/metrics", response_model=IngestReceipt, tags=["experiments"],
              dependencies=[Depends(writer)])
    def post_metrics(eid: str, body: list[MetricEvent] | MetricEvent, request: Request) -> IngestReceipt:
        """One MetricEvent or a batch (at most 1000) for a running experiment."""
        events = body if isinstance(body, list) else [body]
        if len(events) > 1000:
            raise HTTPException(413, "at most 1000 events per request")
        values = lab_of(request).ingest(eid, events)
        return IngestReceipt(experiment_id=eid, events=len(events), values=values)

    @app.post("/api/experiments/{eid}/config", tags=["experiments"], dependencies=[Depends(writer)])
    def post_trainer_config(eid: str, config: TrainerConfigReport, request: Request) -> dict[str, str]:
        """The trainer's resolved config, sent before its first step (shown with the experiment)."""
        lab_of(request).store_trainer_config(eid, config.model_dump(mode="json"))
        return {"experiment_id": eid, "stored": "trainer_config"}

    @app.post("/api/experiments/{eid}/report", tags=["experiments"], dependencies=[Depends(writer)])
    def post_report(eid: str, report: AuditReport, request: Request) -> dict[str, str]:
        """Attach an audit report to an experiment."""
        lab_of(request).store_report(eid, report.model_dump(mode="json"))
        return {"experiment_id": eid, "stored": "report"}

    @app.get("/api/hypotheses/{hid}/audit.html", tags=["hypotheses"], dependencies=[Depends(reader)],
             response_class=HTMLResponse)
    def hypothesis_audits(hid: str, request: Request) -> HTMLResponse:
        """The hypothesis' audit reports side by side (H07 method 2), as one HTML page."""
        from ..audit.compare_page import html_page

        rows = request.app.state.store.experiments(hypothesis_id=hid)
        reports = [AuditReport.model_validate(r["report"]) for r in rows if r.get("report")]
        if not reports:
            raise HTTPException(404, f"{hid} has no audit reports yet")
        return HTMLResponse(html_page(reports))

    @app.get("/api/experiments/{eid}/metrics", tags=["experiments"], dependencies=[Depends(reader)])
    async def get_metrics(eid: str, request: Request, since: int = Query(-1, ge=-1, le=MAX_SEQ),
                    name: str | None = Query(None, max_length=128)) -> JSONResponse:
        """Metric values after step `since`, ordered by step: `[{step, name, value, time}]`."""
        if request.app.state.store.experiment_state(eid) is None:
            raise HTTPException(404, f"unknown experiment {eid!r}")
        # plain rows straight to JSON, on the event loop (a short indexed read): this is the
        # route dashboards and followers poll
        return JSONResponse(request.app.state.store.metrics(eid, since=since, name=name))

    @app.get("/api/experiments/{eid}/logs", tags=["experiments"], dependencies=[Depends(reader)],
             response_class=PlainTextResponse)
    async def get_logs(eid: str, request: Request, follow: bool = False) -> StreamingResponse:
        """The workload's log; with `follow=true` it streams until the experiment finishes."""
        experiment_or_404(request, eid)
        path = lab_of(request).log_path(eid)

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
                status = request.app.state.store.experiment(eid)["status"]
                if not follow or status in FINISHED or await request.is_disconnected():
                    return
                await asyncio.sleep(0.5)

        return StreamingResponse(stream(), media_type="text/plain")

    @app.post("/api/experiments/{eid}/cancel", tags=["experiments"], dependencies=[Depends(writer)])
    def cancel(eid: str, request: Request) -> dict[str, Any]:
        return experiment_view(lab_of(request), lab_of(request).cancel(eid))

    @app.post("/api/experiments/{eid}/retry", tags=["experiments"], dependencies=[Depends(writer)])
    def retry(eid: str, request: Request) -> dict[str, Any]:
        return experiment_view(lab_of(request), lab_of(request).retry(eid))

    @app.get("/api/events", tags=["status"], dependencies=[Depends(reader)],
             responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                              "description": "server-sent events"}})
    async def events(request: Request, last_event_id: int | None = Header(None, ge=0, le=MAX_SEQ),
                     since: int | None = Query(None, ge=0, le=MAX_SEQ), once: bool = False) -> StreamingResponse:
        """Server-sent events for every state change; resume with `Last-Event-ID`."""
        store = request.app.state.store
        cursor = last_event_id if last_event_id is not None else since if since is not None else store.last_event_seq()

        async def stream():
            nonlocal cursor
            idle = 0.0
            while True:
                batch = await asyncio.to_thread(store.events_since, cursor)
                for ev in batch:
                    cursor = ev["seq"]
                    data = json.dumps({"type": ev["type"], "time": ev["time"], **ev["payload"]})
                    yield f"id: {ev['seq']}\nevent: {ev['type']}\ndata: {data}\n\n"
                if once or await request.is_disconnected():
                    return
                if not batch:
                    idle += 0.25
                    if idle >= 15:
                        idle = 0.0
                        yield ": keep-alive\n\n"
                await asyncio.sleep(0.25)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/metrics", response_class=PlainTextResponse, tags=["status"])
    def prometheus(request: Request) -> str:
        """Prometheus text format: experiments and hypotheses by status, stored metric values."""
        counts = request.app.state.store.counts()
        lines = ["# HELP hypolab_experiments Experiments by status.", "# TYPE hypolab_experiments gauge"]
        for status in ("pending", "queued", "running", "succeeded", "failed", "cancelled", "stalled"):
            lines.append(f'hypolab_experiments{{status="{status}"}} {counts["experiments"].get(status, 0)}')
        lines += ["# HELP hypolab_hypotheses Hypotheses by status.", "# TYPE hypolab_hypotheses gauge"]
        for status in ("untested", "testing", "validated", "invalidated", "inconclusive"):
            lines.append(f'hypolab_hypotheses{{status="{status}"}} {counts["hypotheses"].get(status, 0)}')
        lines += ["# HELP hypolab_metric_values Metric values stored.", "# TYPE hypolab_metric_values gauge",
                  f"hypolab_metric_values {counts['metric_values']}"]
        return "\n".join(lines) + "\n"

    static = Path(__file__).resolve().parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        """The dashboard: board, experiment pages with live curves, audit reports."""
        return HTMLResponse((static / "index.html").read_text())

    return app
