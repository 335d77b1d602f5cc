"""Experiment specs: loading, `spec:` + `vary:` resolution, and errors that say what to fix."""

from pathlib import Path

import pytest

from hypolab.contracts import ExperimentSpec
from hypolab.specs import SpecError, diff_configs, load_experiment


def write(dir: Path, name: str, text: str) -> Path:
    path = dir / f"{name}.yaml"
    path.write_text(text)
    return path


BASE = """
env: gsm8k
env_args: {use_think: false}
model: Qwen/Qwen2.5-7B-Instruct
training: {batch_size: 8, num_generations: 8, learning_rate: 1.0e-6, max_steps: 100, lora: {r: 8, alpha: 16}}
vllm: {max_model_len: 8192}
"""


def test_shipped_h07_treatment_differs_from_gsm8k_only_in_env():
    gsm8k = load_experiment("gsm8k")
    treatment = load_experiment("math-python")
    assert gsm8k.control is None and gsm8k.diff == []
    assert treatment.control == "gsm8k"
    assert treatment.spec.env == "math-python"
    assert treatment.spec.env_args == {"max_turns": 5}
    assert {d.path for d in treatment.diff} == {"env", "env_args"}
    # every training and vLLM parameter is the control's
    assert treatment.spec.training == gsm8k.spec.training
    assert treatment.spec.vllm == gsm8k.spec.vllm
    assert treatment.spec.model == gsm8k.spec.model == "Qwen/Qwen2.5-7B-Instruct"


def test_shipped_vllm_settings_are_the_researchers():
    vllm = load_experiment("gsm8k").spec.vllm
    assert (vllm.gpu_memory_utilization, vllm.max_model_len, vllm.tool_call_parser, vllm.enforce_eager) == (
        0.6, 8192, "hermes", True)


def test_vary_merges_sections_key_by_key_and_replaces_env_args(tmp_path):
    write(tmp_path, "base", BASE)
    write(tmp_path, "t", "spec: base\nvary:\n  training: {learning_rate: 2.0e-6}\n  env_args: {max_turns: 3}\n")
    resolved = load_experiment(tmp_path / "t.yaml")
    assert resolved.spec.training.learning_rate == 2e-6
    assert resolved.spec.training.batch_size == 8  # kept from the control
    assert resolved.spec.training.lora.r == 8
    assert resolved.spec.env_args == {"max_turns": 3}  # replaced whole, use_think gone
    assert {d.path for d in resolved.diff} == {"training.learning_rate", "env_args"}


def test_unknown_key_names_file_and_field(tmp_path):
    path = write(tmp_path, "bad", BASE + "training_typo: 1\n")
    with pytest.raises(SpecError) as err:
        load_experiment(path)
    assert err.value.file == str(path) and err.value.field == "training_typo"
    assert "Extra inputs are not permitted" in err.value.reason


def test_nested_unknown_key_and_bad_value(tmp_path):
    path = write(tmp_path, "bad", BASE.replace("max_steps: 100", "max_steps: 100, lerning_rate: 1"))
    with pytest.raises(SpecError) as err:
        load_experiment(path)
    assert err.value.field == "training.lerning_rate"
    path = write(tmp_path, "neg", BASE.replace("batch_size: 8", "batch_size: 0"))
    with pytest.raises(SpecError, match="training.batch_size"):
        load_experiment(path)


def test_missing_control_cycle_and_malformed_yaml(tmp_path):
    write(tmp_path, "orphan", "spec: nowhere\nvary: {env: x}\n")
    with pytest.raises(SpecError, match="control spec 'nowhere' not found"):
        load_experiment(tmp_path / "orphan.yaml")
    write(tmp_path, "a", "spec: b\n")
    write(tmp_path, "b", "spec: a\n")
    with pytest.raises(SpecError, match="cycle: a -> b -> a"):
        load_experiment(tmp_path / "a.yaml")
    write(tmp_path, "broken", "env: [gsm8k\nmodel: x\n")
    with pytest.raises(SpecError) as err:
        load_experiment(tmp_path / "broken.yaml")
    assert "malformed YAML" in err.value.reason and err.value.field.startswith("line ")


def test_derived_spec_may_not_set_fields_outside_vary(tmp_path):
    write(tmp_path, "base", BASE)
    write(tmp_path, "sneaky", "spec: base\nvary: {env: math-python}\nmodel: other\n")
    with pytest.raises(SpecError) as err:
        load_experiment(tmp_path / "sneaky.yaml")
    assert err.value.field == "model"


def test_max_tokens_must_leave_room_in_the_context(tmp_path):
    path = write(tmp_path, "long", BASE.replace("max_steps: 100", "max_steps: 100, max_tokens: 8192"))
    with pytest.raises(SpecError, match="leaves no room for the prompt"):
        load_experiment(path)


def test_diff_counts_defaults():
    a = ExperimentSpec(name="a", env="gsm8k", model="m")
    b = ExperimentSpec(name="b", env="gsm8k", model="m", training={"beta": 0.0})
    assert [(d.path, d.control, d.treatment) for d in diff_configs(a, b)] == [("training.beta", 0.001, 0.0)]


def test_a_hypothesis_file_with_several_problems_reports_them_all(tmp_path):
    from hypolab.specs import load_hypotheses

    hyps, exps = tmp_path / "hypotheses", tmp_path / "experiments"
    hyps.mkdir(), exps.mkdir()
    write(exps, "base", BASE)
    # three required fields missing: one message names all three
    (hyps / "H01.yaml").write_text("id: H01\npriority: 0\norder: 1\nexperiments: [{id: a, spec: base}]\n")
    with pytest.raises(SpecError) as err:
        load_hypotheses(hyps, exps)
    assert len(err.value.problems) == 3 and "H01.yaml: 3 problems:" in str(err.value)
    assert all(f in str(err.value) for f in ("title: Field required", "criteria: Field required", "verdict: Field required"))
    assert "\n" not in str(err.value)
    # valid alone, wrong against the specs and the other hypotheses: every problem at once
    (hyps / "H01.yaml").write_text(
        "id: H01\ntitle: t\npriority: 0\norder: 1\ncriteria: {validated: v, invalidated: i}\n"
        "experiments: [{id: a, spec: nosuch}]\nafter: [H42]\n"
        "verdict: {validated: {rule: improves, experiment: a}, invalidated: {rule: improves, experiment: b}}\n")
    with pytest.raises(SpecError) as err:
        load_hypotheses(hyps, exps)
    assert [f for f, _ in err.value.problems] == ["experiments.0.spec", "verdict.invalidated.experiment", "after"]
    assert "no experiment spec 'nosuch'; known: base" in str(err.value)


def test_unknown_spec_name_lists_the_known_ones(tmp_path):
    write(tmp_path, "base", BASE)
    write(tmp_path, "other", BASE)
    with pytest.raises(SpecError, match=r"unknown experiment spec 'nope'; known: base, other"):
        load_experiment("nope", tmp_path)
