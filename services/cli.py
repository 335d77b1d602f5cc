"""The `hypolab` command: a thin typer layer over plain functions in the packages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from . import __version__

app = typer.Typer(
    name="hypolab",
    help="Turn GRPO debugging hypotheses into controlled experiments and verdicts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def coordinator(
    host: str = typer.Option("127.0.0.1", help="interface to bind (the container binds 0.0.0.0 behind a 127.0.0.1 port)"),
    port: int = typer.Option(8080, min=1, max=65535),
    db: Path = typer.Option(Path("hypolab.sqlite"), help="SQLite database file"),
    runner: str = typer.Option("local", help="local (subprocesses) or docker (Docker SDK)"),
    vllm_url: Optional[str] = typer.Option(None, envvar="VLLM_URL", help="vLLM base URL for health checks"),
) -> None:
    """Run the coordinator (FastAPI) on HOST:PORT."""
    import uvicorn

    from .coordinator.app import CoordinatorSettings, create_app

    if runner not in ("local", "docker"):
        raise typer.BadParameter("choose local or docker", param_hint="--runner")
    settings = CoordinatorSettings(db_path=db, runner=runner, vllm_url=vllm_url)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command()
def preflight(as_json: bool = typer.Option(False, "--json", help="print the probe and plan as JSON")) -> None:
    """Check Docker, Compose v2, the NVIDIA runtime and `.env`; say what `make up` would start."""
    from .stack.preflight import decide, probe_host
    from .stack.settings import SettingError, load_settings

    try:
        settings = load_settings()
        probe = probe_host(settings.COMPOSE_PROJECT_NAME)
        plan = decide(settings, probe)
    except SettingError as exc:
        typer.echo(f"preflight: {exc}", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps({"probe": probe.model_dump(), "plan": plan.model_dump()}, indent=2))
        return
    typer.echo(f"docker: {probe.docker_detail}; compose: {probe.compose_version or 'missing'}; "
               f"nvidia runtime: {'yes' if probe.nvidia_runtime else 'no'}; GPUs: {probe.gpus}")
    typer.echo(f"plan: {plan.mode} -> {', '.join(plan.services)}")
    if plan.explanation:
        typer.echo(plan.explanation)


@app.command()
def up() -> None:
    """Preflight, then start the stack (or the embedded default) and wait until healthy."""
    from .stack.up import up as do_up

    raise typer.Exit(do_up())


@app.command()
def health(url: str = typer.Option("http://127.0.0.1:8080", envvar="HYPOLAB_URL")) -> None:
    """Ask a running coordinator for its health (`GET /api/health`)."""
    import httpx

    try:
        resp = httpx.get(url.rstrip("/") + "/api/health", timeout=5)
    except httpx.HTTPError as exc:
        typer.echo(f"coordinator at {url} unreachable: {type(exc).__name__}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(resp.json(), indent=2))
    raise typer.Exit(0 if resp.status_code == 200 else 1)


@app.command()
def version() -> None:
    """Print hypolab's version."""
    typer.echo(__version__)


def main() -> None:
    app()
