"""The stack's settings: `.env` (as Compose reads it) validated into one typed model.

Compose substitutes these variables into compose.yaml; hypolab reads the same file with
the same precedence (the shell environment wins over `.env`) so that `make up` can
refuse a bad value *before* anything starts, naming the setting and the reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..contracts import STACKS
from ..endpoints import COORDINATOR_PORT as DEFAULT_COORDINATOR_PORT

from ..paths import ROOT

STACKS_DIR = ROOT / "docker" / "stacks"

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


class SettingError(ValueError):
    """One bad setting: `str()` is the one line `make up` prints."""

    def __init__(self, name: str, value: object | None, reason: str):
        self.name, self.value, self.reason = name, value, reason
        super().__init__(f"{name}={value}: {reason}" if value is not None else f"{name}: {reason}")


def parse_env_file(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines like Compose does: comments, blank lines, quotes, `export`."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        match = _LINE.match(raw)
        if not match:
            raise SettingError(f"{path.name} line {lineno}", raw.strip(), "expected KEY=VALUE")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)  # trailing comment on an unquoted value
        values[key] = value
    return values


def known_stacks(stacks_dir: Path = STACKS_DIR) -> list[str]:
    return sorted(p.stem for p in stacks_dir.glob("*.txt"))


def stack_pins(stack: str, stacks_dir: Path = STACKS_DIR) -> dict[str, str]:
    """`{package: version}` for the `name==version` lines of docker/stacks/<stack>.txt."""
    pins: dict[str, str] = {}
    for line in (stacks_dir / f"{stack}.txt").read_text().splitlines():
        req = line.split("#", 1)[0].strip()
        if "==" in req:
            name, version = req.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


class StackSettings(BaseModel):
    """Every variable compose.yaml substitutes, with its default and its constraints."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    STACK: str = "legacy"
    MODEL: str = Field("Qwen/Qwen2.5-7B-Instruct", min_length=1)
    VLLM_GPU: int = Field(0, ge=0)
    TRAINER_GPU_1: int = Field(1, ge=0)
    TRAINER_GPU_2: int = Field(2, ge=0)
    TRAINER_GPU_3: int = Field(3, ge=0)
    VLLM_PORT: int = Field(8000, ge=1, le=65535)
    COORDINATOR_PORT: int = Field(DEFAULT_COORDINATOR_PORT, ge=1, le=65535)
    VLLM_GPU_MEMORY_UTILIZATION: float = Field(0.6, gt=0, le=1)
    VLLM_MAX_MODEL_LEN: int = Field(8192, gt=0)
    VLLM_TOOL_CALL_PARSER: str = "hermes"
    VLLM_EXTRA_ARGS: str = "--enforce-eager"
    COMPOSE_PROJECT_NAME: str = "hypolab"

    @field_validator("STACK")
    @classmethod
    def _known_stack(cls, value: str) -> str:
        stacks = known_stacks()
        if value not in stacks:
            raise ValueError(f"unknown stack; choose one of {', '.join(stacks)} (docker/stacks/*.txt)")
        if value not in STACKS:
            raise ValueError(f"stack file exists but services/contracts.py does not list {value!r}")
        return value

    @model_validator(mode="after")
    def _distinct_gpus(self) -> "StackSettings":
        trainer = [self.TRAINER_GPU_1, self.TRAINER_GPU_2, self.TRAINER_GPU_3]
        if len(set(trainer)) != 3:
            raise ValueError("TRAINER_GPU_1..3 must name three different GPUs")
        if self.VLLM_GPU in trainer:
            raise ValueError(f"VLLM_GPU={self.VLLM_GPU} is also a trainer GPU; vLLM needs its own")
        if self.VLLM_PORT == self.COORDINATOR_PORT:
            raise ValueError("VLLM_PORT and COORDINATOR_PORT must differ")
        return self

    @property
    def trainer_gpus(self) -> list[int]:
        return [self.TRAINER_GPU_1, self.TRAINER_GPU_2, self.TRAINER_GPU_3]

    @property
    def vllm_version(self) -> str:
        return stack_pins(self.STACK)["vllm"]


def env_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """The settings file: `$HYPOLAB_ENV_FILE` when set, else `.env` at the checkout root."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("HYPOLAB_ENV_FILE") or ROOT / ".env")


def load_settings(env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> StackSettings:
    """`.env` (or `$HYPOLAB_ENV_FILE`) overlaid by the environment; raises SettingError."""
    environ = os.environ if environ is None else environ
    env_file = env_file if env_file is not None else env_file_path(environ)
    values = parse_env_file(env_file)
    for name in StackSettings.model_fields:
        if name in environ:
            values[name] = environ[name]
    try:
        return StackSettings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        name = loc[0] if loc else "settings"
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:  # a cross-field rule: its message names the settings itself
            raise SettingError(env_file.name, None, msg) from None
        raise SettingError(name, values.get(name, ""), msg) from None
