"""Load ExperimentSpecs from configs/experiments/*.yaml and resolve controlled variants.

A spec file is either complete, or derived from a control:

    spec: gsm8k            # the control, another file in the same folder
    vary:                  # the only fields allowed to differ from it
      env: math-python
      env_args: {max_turns: 5}

`vary` merges into the control's raw YAML: nested sections (`training`, `vllm`,
`training.lora`) merge key by key, every other value (including `env_args`) is replaced
whole. The result is validated as an ExperimentSpec like any complete file, and the
diff to the control is computed from the two *resolved* configs, so defaults count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .contracts import ExperimentSpec, FieldDiff, HypothesisSpec, StrictModel

from .paths import ROOT

CONFIGS_DIR = ROOT / "configs"
EXPERIMENTS_DIR = CONFIGS_DIR / "experiments"

_DERIVED_KEYS = {"spec", "vary", "name", "description"}


class SpecError(ValueError):
    """A spec that cannot be used; names the file, the field and the reason.

    `more` carries the file's other problems, so that one message names them all:
    `H90.yaml: 3 problems: title: Field required; criteria: Field required; ...`.
    """

    def __init__(self, file: Path | str, field: str, reason: str, more: list[tuple[str, str]] | None = None):
        self.file, self.field, self.reason = str(file), field, reason
        self.problems = [(field, reason), *(more or [])]
        said = [r if f == "-" else f"{f}: {r}" for f, r in self.problems]  # "-": the file as a whole
        if len(said) == 1:
            super().__init__(f"{file}: {said[0]}")
        else:
            listed = "; ".join(said)
            super().__init__(f"{file}: {len(self.problems)} problems: {listed}")

    @classmethod
    def of(cls, file: Path | str, problems: list[tuple[str, str]]) -> "SpecError":
        return cls(file, *problems[0], more=problems[1:])


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Every (field, reason) pydantic found, in order."""
    return [(".".join(str(p) for p in err["loc"]) or "-", err["msg"]) for err in exc.errors()]


class ResolvedExperiment(StrictModel):
    """An experiment's full config, and how it differs from its control (if any)."""

    spec: ExperimentSpec
    file: str
    control: str | None = None
    vary: dict[str, Any] = {}
    diff: list[FieldDiff] = []


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse one YAML mapping, turning every failure into a SpecError."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(path, "-", "file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "-"
        raise SpecError(path, where, f"malformed YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise SpecError(path, "-", "expected a mapping at the top level")
    return data


def merge(model: type[BaseModel], base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply `changes` onto `base`, descending only into fields that are sub-models."""
    out = dict(base)
    for key, value in changes.items():
        field = model.model_fields.get(key)
        sub = _submodel(field.annotation) if field is not None else None
        if sub is not None and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(sub, out[key], value)
        else:
            out[key] = value
    return out


def _submodel(annotation: Any) -> type[BaseModel] | None:
    candidates = getattr(annotation, "__args__", None) or (annotation,)
    for cand in candidates:
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return cand
    return None


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """`{"training": {"lr": 1}}` -> `{"training.lr": 1}`; `env_args` stays one value."""
    if isinstance(data, dict) and prefix != "env_args":
        out: dict[str, Any] = {}
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(value, path))
        return out
    return {prefix: data}


def diff_configs(control: ExperimentSpec, treatment: ExperimentSpec) -> list[FieldDiff]:
    """Every field (dotted path) whose resolved value differs, names excluded."""
    ignore = {"name", "description"}
    a, b = flatten(control.model_dump(mode="json")), flatten(treatment.model_dump(mode="json"))
    return [
        FieldDiff(path=p, control=a.get(p), treatment=b.get(p))
        for p in sorted(set(a) | set(b))
        if p not in ignore and a.get(p) != b.get(p)
    ]


def _validate(path: Path, data: dict[str, Any]) -> ExperimentSpec:
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError.of(path, validation_problems(exc)) from None


def _raw_resolved(path: Path, seen: tuple[str, ...]) -> tuple[dict[str, Any], str | None, dict]:
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    if "spec" not in data:
        return data, None, {}
    extra = set(data) - _DERIVED_KEYS
    if extra:
        raise SpecError(path, sorted(extra)[0], "a derived spec may only set spec, vary, name, description")
    control = str(data["spec"])
    if control in seen:
        raise SpecError(path, "spec", f"cycle: {' -> '.join((*seen, control))}")
    control_path = path.parent / f"{control}.yaml"
    if not control_path.exists():
        raise SpecError(path, "spec", f"control spec {control!r} not found ({control_path})")
    vary = data.get("vary") or {}
    if not isinstance(vary, dict):
        raise SpecError(path, "vary", "expected a mapping of fields to change")
    base, _, _ = _raw_resolved(control_path, (*seen, control))
    merged = merge(ExperimentSpec, base, vary)
    merged["name"] = data["name"]
    merged["description"] = data.get("description", "")
    return merged, control, vary


def load_experiment(name_or_path: str | Path, directory: Path = EXPERIMENTS_DIR) -> ResolvedExperiment:
    """Load and resolve one experiment by name (`gsm8k`) or by file path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = directory / f"{name_or_path}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
            raise SpecError(path, "-", f"unknown experiment spec {str(name_or_path)!r}; known: {known}")
    raw, control, vary = _raw_resolved(path, (path.stem,))
    spec = _validate(path, raw)
    result = ResolvedExperiment(spec=spec, file=str(path), control=control, vary=vary)
    if control is not None:
        control_spec = load_experiment(path.parent / f"{control}.yaml").spec
        result.diff = diff_configs(control_spec, spec)
    return result


# --- Hypotheses -------------------------------------------------------------------------

HYPOTHESES_DIR = CONFIGS_DIR / "hypotheses"


def _rule_experiments(rule: Any) -> list[tuple[str, str]]:
    """(field, experiment id) for every experiment a verdict rule names."""
    if rule.rule in ("all", "any"):
        return [(f"rules.{i}.{f}", e) for i, r in enumerate(rule.rules) for f, e in _rule_experiments(r)]
    if rule.rule == "compare":
        return [("treatment", rule.treatment), ("control", rule.control)]
    return [("experiment", rule.experiment)]


def _cross_problems(hyp: HypothesisSpec, found: dict[str, tuple[Path, HypothesisSpec]],
                    experiments_dir: Path) -> list[tuple[str, str]]:
    """Every (field, reason) where a valid hypothesis disagrees with the specs or the others."""
    problems: list[tuple[str, str]] = []
    ids = [e.id for e in hyp.experiments]
    for dupe in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(("experiments", f"duplicate experiment id {dupe!r}"))
    for i, exp in enumerate(hyp.experiments):
        if not (experiments_dir / f"{exp.spec}.yaml").exists():
            known = ", ".join(sorted(p.stem for p in experiments_dir.glob("*.yaml")))
            problems.append((f"experiments.{i}.spec", f"no experiment spec {exp.spec!r}; known: {known}"))
        if exp.control is not None:
            owner, _, cid = exp.control.rpartition(".")
            if owner and (owner not in hyp.after or owner not in found):
                problems.append((f"experiments.{i}.control", f"{owner} is not a hypothesis in `after`"))
                continue
            pool = [e.id for e in found[owner][1].experiments] if owner else [x for x in ids if x != exp.id]
            if cid not in pool:
                problems.append((f"experiments.{i}.control", f"unknown control experiment {exp.control!r}"))
    for outcome in ("validated", "invalidated"):
        for field, eid in _rule_experiments(getattr(hyp.verdict, outcome)):
            if eid not in ids:
                problems.append((f"verdict.{outcome}.{field}", f"names unknown experiment {eid!r}"))
    for field, targets in (("after", hyp.after), ("next.validated", hyp.next.validated),
                           ("next.invalidated", hyp.next.invalidated)):
        problems += [(field, f"unknown hypothesis {t!r}") for t in targets if t not in found]
    return problems


def load_hypotheses(
    directory: Path = HYPOTHESES_DIR, experiments_dir: Path | None = None
) -> dict[str, HypothesisSpec]:
    """Every hypothesis file, validated alone and against each other; raises SpecError."""
    experiments_dir = experiments_dir or directory.parent / "experiments"
    found: dict[str, tuple[Path, HypothesisSpec]] = {}
    for path in sorted(directory.glob("*.yaml")):
        data = read_yaml(path)
        try:
            hyp = HypothesisSpec.model_validate(data)
        except ValidationError as exc:
            raise SpecError.of(path, validation_problems(exc)) from None
        if hyp.id in found:
            raise SpecError(path, "id", f"{hyp.id} is also defined in {found[hyp.id][0]}")
        found[hyp.id] = (path, hyp)

    for path, hyp in found.values():
        problems = _cross_problems(hyp, found, experiments_dir)
        if problems:
            raise SpecError.of(path, problems)

    # `after` must be acyclic (depth-first search with colours)
    state: dict[str, int] = {}

    def visit(hid: str, trail: tuple[str, ...]) -> None:
        if state.get(hid) == 2:
            return
        if state.get(hid) == 1:
            cycle = " -> ".join((*trail[trail.index(hid):], hid))
            raise SpecError(found[hid][0], "after", f"cycle: {cycle}")
        state[hid] = 1
        for dep in found[hid][1].after:
            visit(dep, (*trail, hid))
        state[hid] = 2

    for hid in found:
        visit(hid, ())
    return {hid: hyp for hid, (_, hyp) in sorted(found.items(), key=lambda kv: (kv[1][1].priority, kv[1][1].order))}
