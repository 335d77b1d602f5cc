"""The coordinator's settings, in one place: what the CLI flags and the environment fill in.

`CoordinatorSettings` is read by the app (api/), the scheduler's assembly (app.py) and
`hypolab plan` (plan_view.py); `resolve_token` gives the API token they all check.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..endpoints import COORDINATOR_URL
from ..specs import EXPERIMENTS_DIR, HYPOTHESES_DIR


class CoordinatorSettings(BaseModel):
    """How one coordinator process runs (CLI flags and the environment fill these in)."""

    db_path: Path = Field(Path("hypolab.sqlite"), description="SQLite database file")
    data_dir: Path = Field(Path("."), description="outputs/<experiment>/ live here (specs, logs, reports)")
    runner: Literal["local", "docker", "ray"] = "local"
    ray_address: str | None = Field(None, description="the Ray dashboard (Jobs API), e.g. http://HEAD:8265")
    rehearsal: bool = Field(False, description="ray runner: each job runs `hypolab launch --rehearsal`")
    ray_stop_grace_s: float = Field(30.0, description="ray runner: SIGTERM to SIGKILL when a job is stopped")
    ray_runtime_env: dict[str, Any] = Field(
        default_factory=dict, description="ray runner: Ray's runtime_env for every job (pip, conda, working_dir, "
                                          "env_vars, ...); ours are added to its env_vars")
    token: str | None = Field(None, description="API token; generated and saved beside the db when unset")
    vllm_url: str | None = Field(None, description="base URL of the vLLM server, e.g. http://vllm:8000")
    vllm_timeout_s: float = 2.0
    hypotheses_dir: Path = HYPOTHESES_DIR
    experiments_dir: Path = EXPERIMENTS_DIR
    coordinator_url: str = Field(COORDINATOR_URL, description="how workloads reach this coordinator")
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
