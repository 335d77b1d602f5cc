"""`hypolab plan H07`: what will run, where, and what differs — printed before anything runs.

Per hypothesis: its order (and what it comes after), the verdict rule in words, and per
experiment the runner, its GPUs (or "CPU rehearsal"), the *effective* settings after the
rehearsal overrides, the diff to its control (refused when a field differs that nobody
declared) and the command. `--full` adds each experiment's full config; `--json` gives
everything as data.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

import yaml
from rich.console import Console
from rich.table import Table

from ..specs import SpecError, flatten, load_hypotheses
from .config import CoordinatorSettings
from .planner import plan_hypothesis, run_order
from .runners import Launch, build_runner, fill_command

#: The settings a researcher checks first, in this order (the rest: `--full`).
KEY_SETTINGS = ("model", "env", "stack", "training.max_steps", "training.batch_size", "training.num_generations",
                "training.gradient_accumulation_steps", "training.num_processes", "training.learning_rate",
                "training.lora.r", "training.max_seq_len", "training.max_tokens")


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        if not isinstance(data.get(key), dict):
            data[key] = {}
        data = data[key]
    data[last] = value


def effective_config(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The config with the rehearsal's overrides applied (a copy)."""
    out = json.loads(json.dumps(config))
    for path, value in overrides.items():
        _set(out, path, value)
    return out


def rule_in_words(rule: dict[str, Any]) -> str:
    """A verdict rule as a sentence: 'reward of math-python rises by at least 0.05 over training'."""
    kind = rule["rule"]
    by = f"by at least {_value(rule['min_effect'])}" if rule.get("min_effect") else "by a clear margin"
    if kind == "improves":
        return f"{rule['metric']} of {rule['experiment']} rises {by} over training"
    if kind == "no_improvement":
        return f"{rule['metric']} of {rule['experiment']} is shown to rise by less than " \
               f"{_value(rule['min_effect'])}" if rule.get("min_effect") else \
               f"{rule['metric']} of {rule['experiment']} is shown not to rise by a clear margin"
    if kind == "compare":
        return f"{rule['metric']} of {rule['treatment']} ends {rule['direction']} than {rule['control']}'s {by}"
    if kind == "audit":
        return f"audit {rule['experiment']} {'reports' if rule['present'] else 'does not report'} {rule['check']}"
    joined = (" and " if kind == "all" else " or ").join(rule_in_words(r) for r in rule["rules"])
    return f"({joined})"


def verdict_in_words(verdict: dict[str, Any]) -> list[str]:
    lines = [f"validated when {rule_in_words(verdict['validated'])}",
             f"invalidated when {rule_in_words(verdict['invalidated'])}"]
    after = verdict.get("futility_after")
    lines.append(f"a 'no' may be decided (and stop the run) from step {after}" if after
                 else "a 'no' is decided at the planned last step, not before")
    return lines


def build_plan(requested: list[str], runner_name: str = "local",
               rehearsal_overrides: Callable[[str], dict[str, Any]] | None = None) -> list[dict]:
    """The plan as data. `rehearsal_overrides(model)` is what a CPU rehearsal changes in a
    training config of that model; it applies when the runner's trainer command rehearses
    (the local runner)."""
    hypotheses = load_hypotheses()
    settings = CoordinatorSettings(runner=runner_name, data_dir=Path("."))
    runner = build_runner(settings)
    trainer_cmd, audit_cmd = runner.default_commands()
    rehearsal = "--rehearsal" in trainer_cmd
    out = []
    for position, hid in enumerate(run_order(requested, hypotheses), start=1):
        hyp = hypotheses[hid]
        experiments = []
        for p in plan_hypothesis(hyp, hypotheses):
            role = "trainer" if p.kind == "train" else "audit"
            config = p.spec.model_dump(mode="json")
            command = fill_command(trainer_cmd if role == "trainer" else audit_cmd, p.id, config,
                                   Path("outputs") / p.id, settings.coordinator_url)
            launch = Launch(experiment_id=p.id, role=role, command=command, stack=p.spec.stack,
                            gpus=runner.trainer_gpus() if role == "trainer" and not rehearsal else [],
                            log_path=Path("/dev/null"))
            overrides = (rehearsal_overrides(p.spec.model) if rehearsal_overrides and rehearsal
                         and role == "trainer" else {})
            experiments.append({
                "id": p.id, "kind": p.kind, "purpose": p.purpose, "control": p.control_id,
                "diff": [d.model_dump(mode="json") for d in p.diff], "refused_fields": p.undeclared,
                "rehearsal": rehearsal, "overrides": overrides, "config": config,
                "effective_config": effective_config(config, overrides),
                "workload": runner.describe(launch).model_dump(mode="json"),
            })
        out.append({"order": position, "id": hid, "title": hyp.title, "priority": hyp.priority,
                    "after": hyp.after, "next": hyp.next.model_dump(),
                    "verdict": verdict_in_words(hyp.verdict.model_dump(mode="json")), "experiments": experiments})
    return out


def _value(v: Any) -> str:
    """As the spec writes it: 1e-6 (not 1e-06 or 0.000001), 0.05, 200, null."""
    if v is None:
        return "null"
    if isinstance(v, float):
        return re.sub(r"e([+-])0*(\d)", lambda m: "e" + m.group(1).replace("+", "") + m.group(2), repr(v))
    return str(v)


def _lines(parts: list[str], width: int = 68) -> list[str]:
    """`a · b · c` broken into lines of at most `width` characters (80 columns with the label)."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return lines


def _where(exp: dict[str, Any]) -> str:
    w = exp["workload"]
    if exp["kind"] == "audit":
        where = "CPU (no GPU)" if not w["gpus"] else f"GPUs {', '.join(map(str, w['gpus']))}"
    else:
        where = "CPU rehearsal (one process, no GPU, no vLLM)" if exp["rehearsal"] else \
            f"GPUs {', '.join(map(str, w['gpus'])) or 'none'}"
    return f"{w['runner']} runner · {where}" + (f" · image {w['image']}" if w["image"] else "")


def _settings(exp: dict[str, Any]) -> list[str]:
    flat, planned = flatten(exp["effective_config"]), flatten(exp["config"])
    keys = KEY_SETTINGS if exp["kind"] == "train" else KEY_SETTINGS[:3]
    parts = []
    for key in keys:
        if key not in flat and key not in exp["overrides"]:
            continue
        name = key.removeprefix("training.")
        shown = f"{name} {_value(flat.get(key))}"
        if key in exp["overrides"] and planned.get(key) != flat.get(key):
            shown += f" (spec {_value(planned.get(key))})"
        parts.append(shown)
    return _lines(parts)


def print_plan(plan: list[dict], full: bool, console: Console) -> None:
    for n, hyp in enumerate(plan):
        if n:
            console.print()
        console.rule(f"[bold]{hyp['order']}. {hyp['id']}[/] — {hyp['title']}", align="left")
        console.print(f"priority {hyp['priority']} · after: {', '.join(hyp['after']) or '—'} · "
                      f"next: {', '.join(hyp['next']['validated']) or '—'} if validated, "
                      f"{', '.join(hyp['next']['invalidated']) or '—'} if invalidated", highlight=False)
        for line in hyp["verdict"]:
            console.print(f"  verdict: {line}", highlight=False)
        for exp in hyp["experiments"]:
            refused = " [red bold]REFUSED: undeclared " + ", ".join(exp["refused_fields"]) + "[/]" \
                if exp["refused_fields"] else ""
            console.print(f"\n[bold cyan]{exp['id']}[/] ({exp['kind']}) {exp['purpose']}{refused}", highlight=False)
            console.print(f"  where:    {_where(exp)}", highlight=False)
            settings = _settings(exp) + (["(spec …): the spec's value, changed for the rehearsal"]
                                         if exp["overrides"] else [])
            for i, line in enumerate(settings):
                console.print(f"  {'settings:' if i == 0 else '':9} {line}", highlight=False)
            if exp["control"] and exp["diff"]:
                table = Table("  field", "control " + exp["control"], "this experiment", show_edge=False, box=None)
                for d in exp["diff"]:
                    table.add_row("  " + d["path"], json.dumps(d["control"]), json.dumps(d["treatment"]))
                console.print(table)
            elif exp["control"]:
                console.print(f"  identical to its control {exp['control']}", highlight=False)
            console.print(f"  command:  {' '.join(exp['workload']['command'])}", highlight=False)
            if full:
                console.print("  config as it will run:\n" + "\n".join(
                    "    " + line for line in yaml.safe_dump(exp["effective_config"], sort_keys=False).splitlines()),
                    highlight=False)


def render_plan(requested: list[str], runner_name: str, as_json: bool, full: bool = False,
                rehearsal_overrides: Callable[[str], dict[str, Any]] | None = None) -> int:
    console = Console(soft_wrap=True)
    try:
        plan = build_plan(requested, runner_name, rehearsal_overrides)
    except (SpecError, KeyError, RuntimeError) as exc:
        print(f"hypolab plan: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(plan, indent=2))
        return 0
    print_plan(plan, full, console)
    return 0
