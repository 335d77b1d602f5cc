"""From a spec file and the command line to one resolved, checked run configuration.

The researcher's math-python script silently ignored its own flags; here every flag
is an override on the spec, recorded with where it came from in the run's resolved
config (`resolved_config.json` next to the outputs, and sent to the coordinator before
the first step). `check_run` turns the mistakes that would otherwise surface after
minutes of model loading on GPUs into one line each.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path
from types import UnionType
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError
from pydantic.fields import FieldInfo

from ..contracts import ExperimentSpec
from ..endpoints import vllm_health
from ..specs import SpecError, load_experiment
from .envs import ENVIRONMENTS


class RunError(ValueError):
    """A run that must not start; the message is one line saying what to change."""


#: The spec fields the researcher's command lines set as `hypolab train` flags: `--lora-r`
#: sets training.lora.r. Each flag's type and help are read from the spec model itself.
FLAG_FIELDS: tuple[str, ...] = (
    "model", "training.batch_size", "training.num_generations", "training.learning_rate", "training.num_epochs",
    "training.max_steps", "training.lora.r", "training.lora.alpha", "training.loss_type", "training.beta",
    "training.scale_rewards", "training.max_seq_len", "training.max_tokens", "training.gradient_accumulation_steps",
    "training.temperature",
)


class TrainFlag(NamedTuple):
    """One `hypolab train` flag, derived from the spec field it sets."""

    name: str  # the option's Python name: lora_r (--lora-r)
    path: str  # the spec path it overrides: training.lora.r
    type: type  # int, float, str or bool (a --x/--no-x switch)
    help: str


def _unwrap(annotation: Any) -> Any:
    """`int | None` -> int; `Literal[...] | None` -> the Literal."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if get_origin(annotation) in (Union, UnionType) and len(args) == 1 else annotation


def _spec_field(path: str) -> FieldInfo:
    model: type[BaseModel] = ExperimentSpec
    *sections, name = path.split(".")
    for section in sections:
        model = _unwrap(model.model_fields[section].annotation)
    return model.model_fields[name]


def _flag(path: str) -> TrainFlag:
    field = _spec_field(path)
    kind = _unwrap(field.annotation)
    words = [field.description or ""]
    if get_origin(kind) is Literal:
        words.append("one of " + ", ".join(get_args(kind)))
        kind = str
    for bound, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        words += [f"{sign} {getattr(m, bound)}" for m in field.metadata if hasattr(m, bound)]
    text = "; ".join(w for w in words if w)
    return TrainFlag(path.removeprefix("training.").replace(".", "_"), path, kind,
                     path + (f": {text}" if text else ""))


TRAIN_FLAGS: tuple[TrainFlag, ...] = tuple(_flag(path) for path in FLAG_FIELDS)
FLAG_PATHS: dict[str, str] = {flag.name: flag.path for flag in TRAIN_FLAGS}

#: The learning rehearsal's model (learning.py; smollm.py finds it on disk): a rehearsal of a
#: spec naming it keeps the spec's own training settings, never REHEARSAL_DEFAULTS.
LEARNING_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"

#: A CPU rehearsal keeps the spec but runs a few small steps in one process.
REHEARSAL_DEFAULTS: dict[str, Any] = {
    "training.batch_size": 4,
    "training.num_generations": 4,
    "training.max_steps": int(os.environ.get("HYPOLAB_REHEARSAL_MAX_STEPS", "2")),
    "training.num_epochs": None,
    "training.num_processes": 1,
    "training.gradient_accumulation_steps": 1,
}


def rehearsal_defaults(model: str) -> dict[str, Any]:
    """What a CPU rehearsal changes in a spec of this model: REHEARSAL_DEFAULTS, or nothing
    for the learning rehearsal's model (its own settings are what it learns with)."""
    return {} if model == LEARNING_MODEL else dict(REHEARSAL_DEFAULTS)


class Override(BaseModel):
    path: str
    value: Any
    source: str = Field(..., description="flag, set or rehearsal")


class RunConfig(BaseModel):
    """Everything a training run was started with (written as resolved_config.json)."""

    experiment_id: str
    spec_file: str
    spec: ExperimentSpec
    overrides: list[Override] = Field(default_factory=list)
    rehearsal: bool = False
    seed: int = Field(0, description="a rehearsal's scripted policy seed (same seed, same rollouts)")
    output_dir: str
    coordinator: str | None = None
    vllm_url: str = "http://vllm:8000"
    created: float = Field(default_factory=time.time)
    library: dict[str, str] = Field(default_factory=dict, description="installed versions")
    trainer_config: dict[str, Any] = Field(default_factory=dict, description="the stack's own config, as built")


def parse_value(text: str) -> Any:
    """`--set key=value` values: YAML scalars (numbers, true/false, null, lists)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if child is None:
            child = {}
            node[key] = child
        if not isinstance(child, dict):
            raise RunError(f"--set {path}: {key} is not a section")
        node = child
    node[keys[-1]] = value


def _user_overrides(sets: list[str] | None, flags: dict[str, Any] | None) -> list[Override]:
    """`--set key=value` items, then the flags that were given (in that order of precedence)."""
    overrides: list[Override] = []
    for item in sets or []:
        if "=" not in item:
            raise RunError(f"--set {item!r}: write key=value, e.g. --set training.max_steps=50")
        key, raw = item.split("=", 1)
        overrides.append(Override(path=key.strip(), value=parse_value(raw), source="set"))
    for name, value in (flags or {}).items():
        if value is None:
            continue
        if name == "no_peft":
            if value:
                overrides.append(Override(path="training.lora", value=None, source="flag"))
            continue
        overrides.append(Override(path=FLAG_PATHS[name], value=value, source="flag"))
    return overrides


def resolve_run(
    spec_file: Path,
    sets: list[str] | None = None,
    flags: dict[str, Any] | None = None,
    experiment_id: str | None = None,
    output_dir: Path | None = None,
    coordinator: str | None = None,
    vllm_url: str | None = None,
    rehearsal: bool = False,
    seed: int = 0,
) -> RunConfig:
    """The spec with rehearsal defaults, `--set` and flag overrides applied and validated.

    A rehearsal of the learning rehearsal's model (LEARNING_MODEL, after `--set` and flags)
    gets no REHEARSAL_DEFAULTS: the tiny rehearsal's batch 4 x a few steps would teach nothing."""
    try:
        spec = load_experiment(spec_file).spec
    except SpecError as exc:
        raise RunError(str(exc)) from exc
    data = spec.model_dump(mode="json")
    overrides = _user_overrides(sets, flags)
    model = next((o.value for o in reversed(overrides) if o.path == "model"), spec.model)
    if rehearsal:
        overrides = [Override(path=path, value=value, source="rehearsal")
                     for path, value in rehearsal_defaults(model).items()] + overrides
    for override in overrides:
        if override.path == "training.lora" or not override.path.startswith("training.lora."):
            _set_path(data, override.path, override.value)
        elif data["training"].get("lora") is None:
            raise RunError(f"{override.path}: LoRA is off in this run (--no-peft or lora: null)")
        else:
            _set_path(data, override.path, override.value)
    try:
        resolved = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RunError(f"{where}: {first['msg']} (after overrides)") from exc
    run_id = experiment_id or resolved.name
    return RunConfig(
        experiment_id=run_id,
        spec_file=str(spec_file),
        spec=resolved,
        overrides=overrides,
        rehearsal=rehearsal,
        seed=seed,
        output_dir=str(output_dir or Path("outputs") / run_id),
        coordinator=coordinator,
        vllm_url=vllm_url or os.environ.get("VLLM_URL") or "http://vllm:8000",
    )


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or os.path.exists(model) or model.count("/") > 1


def check_run(run: RunConfig, probe_vllm: bool = True) -> None:
    """Refuse, in one line, what cannot work; called before any model or GPU work."""
    spec, t = run.spec, run.spec.training
    if spec.env not in ENVIRONMENTS and importlib.util.find_spec(spec.env.replace("-", "_")) is None:
        raise RunError(
            f"env {spec.env!r} is unknown: choose one of {', '.join(ENVIRONMENTS)} "
            "(or install a verifiers environment module of that name)")
    if _looks_like_path(spec.model) and not run.rehearsal:
        path = Path(spec.model).expanduser()
        if not path.exists():
            raise RunError(f"model path {spec.model} does not exist: fix `model` or pass --model with a Hugging Face name")
    global_batch = t.batch_size * t.num_processes
    if global_batch % t.num_generations:
        raise RunError(
            f"training.batch_size x training.num_processes = {t.batch_size} x {t.num_processes} = {global_batch} "
            f"is not divisible by training.num_generations ({t.num_generations}): change one of them")
    if t.max_seq_len > spec.vllm.max_model_len:
        raise RunError(
            f"training.max_seq_len ({t.max_seq_len}) exceeds vllm.max_model_len ({spec.vllm.max_model_len}): "
            "vLLM could never produce such a sequence; lower max_seq_len or raise max_model_len")
    if probe_vllm and not run.rehearsal:
        ok, _ = vllm_health(run.vllm_url, timeout_s=5)
        if not ok:
            raise RunError(
                f"vLLM is not reachable at {run.vllm_url} (GET /health): start it with `make up`, "
                "set VLLM_URL, or run a CPU rehearsal with --rehearsal")


def write_resolved(run: RunConfig) -> Path:
    out = Path(run.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "resolved_config.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(run.model_dump(mode="json"), indent=2, default=str))
    tmp.replace(path)
    return path
