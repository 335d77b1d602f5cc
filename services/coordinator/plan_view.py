"""`hypolab plan H07`: the resolved plan, printed before anything runs.

Order of hypotheses (with what they come after), each experiment's full config, its
diff to its control (refused when a field differs that nobody declared), and the
workload the chosen runner would start: image, GPUs and command.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from ..specs import SpecError, load_hypotheses
from .config import CoordinatorSettings
from .planner import plan_hypothesis, run_order
from .runners import Launch, build_runner, fill_command


def build_plan(requested: list[str], runner_name: str = "local") -> list[dict]:
    hypotheses = load_hypotheses()
    settings = CoordinatorSettings(runner=runner_name, data_dir=Path("."))
    runner = build_runner(settings)
    trainer_cmd, audit_cmd = runner.default_commands()
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
                            gpus=runner.trainer_gpus() if role == "trainer" else [], log_path=Path("/dev/null"))
            experiments.append({
                "id": p.id, "kind": p.kind, "purpose": p.purpose, "control": p.control_id,
                "diff": [d.model_dump(mode="json") for d in p.diff], "refused_fields": p.undeclared,
                "config": config, "workload": runner.describe(launch).model_dump(mode="json"),
            })
        out.append({"order": position, "id": hid, "title": hyp.title, "priority": hyp.priority,
                    "after": hyp.after, "next": hyp.next.model_dump(), "experiments": experiments})
    return out


def render_plan(requested: list[str], runner_name: str, as_json: bool) -> int:
    console = Console(soft_wrap=True)
    try:
        plan = build_plan(requested, runner_name)
    except (SpecError, KeyError, RuntimeError) as exc:
        console.print(f"[red]plan: {exc.args[0] if isinstance(exc, KeyError) else exc}[/]", highlight=False)
        return 2
    if as_json:
        print(json.dumps(plan, indent=2))
        return 0
    for hyp in plan:
        console.rule(f"[bold]{hyp['order']}. {hyp['id']}[/] — {hyp['title']}")
        console.print(f"priority {hyp['priority']} · after: {', '.join(hyp['after']) or '—'} · "
                      f"next if validated: {', '.join(hyp['next']['validated']) or '—'} · "
                      f"if invalidated: {', '.join(hyp['next']['invalidated']) or '—'}", highlight=False)
        for exp in hyp["experiments"]:
            refused = " [red bold]REFUSED: undeclared " + ", ".join(exp["refused_fields"]) + "[/]" if exp["refused_fields"] else ""
            console.print(f"\n[bold cyan]{exp['id']}[/] ({exp['kind']}) {exp['purpose']}{refused}", highlight=False)
            if exp["control"]:
                table = Table("field", "control " + exp["control"], "this experiment", title=None, show_edge=False)
                for d in exp["diff"]:
                    table.add_row(d["path"], json.dumps(d["control"]), json.dumps(d["treatment"]))
                console.print(table if exp["diff"] else f"  identical to its control {exp['control']}")
            w = exp["workload"]
            console.print(f"  runs on: {w['runner']} · image {w['image'] or '—'} · GPUs {w['gpus'] or 'none'}",
                          highlight=False)
            console.print(f"  command: {' '.join(w['command'])}", highlight=False)
            console.print("  config:\n" + "\n".join("    " + l for l in yaml.safe_dump(exp["config"], sort_keys=False).splitlines()),
                          highlight=False)
    return 0
