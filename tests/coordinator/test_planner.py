"""Hypothesis files: the shipped ones load and say what the researcher wrote; bad ones name file, field, reason."""

import shutil
from pathlib import Path

import pytest

from hypolab.coordinator.planner import plan_hypothesis, run_order
from hypolab.specs import EXPERIMENTS_DIR, HYPOTHESES_DIR, SpecError, load_hypotheses


def test_shipped_hypotheses_load_in_test_order():
    hyps = load_hypotheses()
    assert list(hyps) == ["H06", "H07", "H02", "H04", "H05", "H90"]
    h07 = hyps["H07"]
    assert h07.after == ["H06"]
    assert h07.next.validated == ["H02"] and h07.next.invalidated == ["H04", "H05"]
    assert h07.verdict.validated.rule == "no_improvement" and h07.verdict.validated.experiment == "math-python"
    assert h07.verdict.invalidated.rule == "improves"
    kinds = {e.id: (e.kind or "train") for e in h07.experiments}
    assert kinds == {"gsm8k": "audit", "math-python": "train", "audit-math-python": "audit", "audit-musique": "audit"}


def test_h07_treatment_is_gsm8k_parameters_on_math_python():
    hyps = load_hypotheses()
    plans = {p.name: p for p in plan_hypothesis(hyps["H07"], hyps)}
    treatment = plans["math-python"]
    assert treatment.control_id == "H06.gsm8k" and treatment.controlled
    assert [d.path for d in treatment.diff] == ["env", "env_args"]
    assert {p.spec.env for p in plans.values() if p.kind == "audit"} == {"gsm8k", "math-python", "musique"}


def test_run_order_pulls_in_dependencies():
    hyps = load_hypotheses()
    assert run_order(["H02"], hyps) == ["H06", "H07", "H02"]
    assert run_order(["H05", "H04"], hyps) == ["H06", "H07", "H04", "H05"]
    with pytest.raises(KeyError, match="unknown hypothesis 'H99'"):
        run_order(["H99"], hyps)


@pytest.fixture
def hypdir(tmp_path):
    d = tmp_path / "hypotheses"
    shutil.copytree(HYPOTHESES_DIR, d)
    return d


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("file, old, new, field, reason", [
    ("H06.yaml", "priority: 0", "priority: 0\npriorty: 1", "priorty", "Extra inputs are not permitted"),
    ("H06.yaml", "spec: gsm8k", "spec: gsm9k", "experiments.0.spec", "no experiment spec 'gsm9k'"),
    ("H06.yaml", "invalidated: {rule: no_improvement, experiment: gsm8k",
     "invalidated: {rule: no_improvement, experiment: gsm8", "verdict.invalidated.experiment",
     "names unknown experiment 'gsm8'"),
    ("H06.yaml", "next:\n  validated: [H07]", "next:\n  validated: [H08]", "next.validated", "unknown hypothesis 'H08'"),
    ("H06.yaml", "order: 6", "order: 6\nafter: [H07]", "after", "cycle: H07 -> H06 -> H07"),
    ("H07.yaml", "control: H06.gsm8k", "control: H05.musique", "experiments.1.control", "H05 is not a hypothesis in `after`"),
    ("H06.yaml", "rule: improves", "rule: improvez", "verdict.validated", "does not match any of the expected tags"),
])
def test_bad_hypothesis_files_name_file_field_and_reason(hypdir, file, old, new, field, reason):
    edit(hypdir / file, old, new)
    with pytest.raises(SpecError) as err:
        load_hypotheses(hypdir, EXPERIMENTS_DIR)
    assert err.value.field == field
    assert reason in err.value.reason
    assert err.value.file.endswith(".yaml")


def test_malformed_yaml(hypdir):
    (hypdir / "H06.yaml").write_text("id: H06\ntitle: [unclosed\n")
    with pytest.raises(SpecError) as err:
        load_hypotheses(hypdir, EXPERIMENTS_DIR)
    assert err.value.file.endswith("H06.yaml") and "malformed YAML" in err.value.reason
