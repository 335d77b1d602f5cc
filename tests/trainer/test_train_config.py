"""`hypolab train`: flags recorded as overrides, the legacy mapping, one-line refusals."""

import dataclasses
import socket

import pytest
from typer.testing import CliRunner

from hypolab.cli import app
from hypolab.contracts import TrainingSpec
from hypolab.paths import ROOT
from hypolab.trainer.adapters import legacy
from hypolab.specs import load_experiment
from hypolab.trainer.config import LEARNING_MODEL, REHEARSAL_DEFAULTS, RunError, check_run, resolve_run
from hypolab.trainer.learning import is_learning

SPEC = ROOT / "configs" / "experiments" / "math-python.yaml"


def test_flags_override_the_spec_and_are_recorded():
    run = resolve_run(SPEC, ["training.top_k=20"], {"batch_size": 6, "num_generations": 6, "lora_r": 16, "max_tokens": 512,
                                                    "learning_rate": 2e-6, "beta": 0.0, "loss_type": "dr_grpo"})
    t = run.spec.training
    assert (t.batch_size, t.num_generations, t.lora.r, t.max_tokens, t.learning_rate, t.beta, t.loss_type, t.top_k) == \
        (6, 6, 16, 512, 2e-6, 0.0, "dr_grpo", 20)
    recorded = {(o.path, o.source) for o in run.overrides}
    assert ("training.lora.r", "flag") in recorded and ("training.top_k", "set") in recorded
    assert resolve_run(SPEC, [], {"no_peft": True}).spec.training.lora is None


def test_legacy_config_maps_every_field():
    run = resolve_run(SPEC, ["training.top_k=20", "training.max_steps=7"], {})
    args, lora = legacy.build(run.spec, "/tmp/x", "run", "vllm", 8000, cpu=True)
    for path, name in legacy.FIELDS.items():
        value = run.spec
        for key in path.split("."):
            value = getattr(value, key)
        if value is not None:
            assert getattr(args, name) == value, path
    assert (lora.r, lora.lora_alpha, lora.lora_dropout, set(lora.target_modules)) == (8, 16, 0.0, {"q_proj", "k_proj", "v_proj", "o_proj"})
    assert args.vllm_server_host == "vllm" and args.generation_batch_size == 8 * 4
    covered = {p.split(".")[1] for p in [*legacy.FIELDS, *legacy.NOT_A_CONFIG_FIELD]}
    assert covered == set(TrainingSpec.model_fields)
    names = {f.name for f in dataclasses.fields(args)}
    assert set(legacy.FIELDS.values()) <= names


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sets,flags,vllm,needle", [
    (["env=mathpython"], {}, None, "env 'mathpython' is unknown"),
    ([], {"model": "/nonexistent/Qwen"}, None, "model path /nonexistent/Qwen does not exist"),
    ([], {"num_generations": 5}, None, "not divisible by training.num_generations (5)"),
    (["vllm.max_model_len=1024"], {"max_tokens": 1024, "max_seq_len": 1000}, None, "leaves no room for the prompt"),
    (["vllm.max_model_len=2048"], {"max_tokens": 1024}, None, "exceeds vllm.max_model_len (2048)"),
    ([], {}, "unreachable", "vLLM is not reachable"),
])
def test_bad_input_stops_with_one_line(sets, flags, vllm, needle):
    url = f"http://127.0.0.1:{free_port()}" if vllm else None
    with pytest.raises(RunError) as err:  # refused while resolving (spec rules) or by check_run
        check_run(resolve_run(SPEC, sets, flags, vllm_url=url), probe_vllm=vllm is not None)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_cli_refusal_is_one_line_and_exit_2():
    result = CliRunner().invoke(app, ["train", "--spec", str(SPEC), "--num-generations", "5", "--check"])
    assert result.exit_code == 2
    assert "not divisible" in result.output and result.output.count("\n") == 1


def test_cli_check_prints_the_resolved_config():
    result = CliRunner().invoke(app, ["train", "--spec", str(SPEC), "--rehearsal", "--check", "--max-steps", "3"])
    assert result.exit_code == 0, result.output
    assert '"rehearsal": true' in result.output and '"max_steps": 3' in result.output


def test_a_rehearsal_records_its_seed():
    assert resolve_run(SPEC, [], {}, rehearsal=True, seed=7).seed == 7
    assert resolve_run(SPEC, [], {}, rehearsal=True).seed == 0


def test_a_learning_rehearsal_keeps_its_spec_settings_and_its_overrides():
    """The learning rehearsal's model gets no tiny-rehearsal defaults; `--set` and flags still apply."""
    written = load_experiment("short-sums").spec.training
    assert written.batch_size != REHEARSAL_DEFAULTS["training.batch_size"]  # else this test proves nothing
    run = resolve_run("short-sums", rehearsal=True)
    assert is_learning(run) and run.spec.model == LEARNING_MODEL and run.overrides == []
    assert run.spec.training == written  # batch size, generations, max_steps: as written
    run = resolve_run("short-sums", ["training.max_steps=3"], {"learning_rate": 1e-4}, rehearsal=True)
    t = run.spec.training
    assert (t.max_steps, t.learning_rate, t.batch_size, t.num_generations) == \
        (3, 1e-4, written.batch_size, written.num_generations)
    assert [o.source for o in run.overrides] == ["set", "flag"]


def test_other_rehearsals_get_the_rehearsal_defaults_under_their_overrides():
    run = resolve_run(SPEC, ["training.max_steps=5"], {}, rehearsal=True)
    t = run.spec.training
    assert (t.batch_size, t.num_generations, t.num_processes, t.max_steps) == \
        (REHEARSAL_DEFAULTS["training.batch_size"], REHEARSAL_DEFAULTS["training.num_generations"], 1, 5)
    assert [o.source for o in run.overrides] == ["rehearsal"] * len(REHEARSAL_DEFAULTS) + ["set"]
    assert not is_learning(run)
    # the model decides, after the overrides: the SmolLM2 spec with another model is a tiny rehearsal
    other = resolve_run("short-sums", [], {"model": "Qwen/Qwen2.5-0.5B-Instruct"}, rehearsal=True)
    assert other.spec.training.batch_size == REHEARSAL_DEFAULTS["training.batch_size"] and not is_learning(other)
    learning = resolve_run(SPEC, [f"model={LEARNING_MODEL}"], {}, rehearsal=True)
    assert learning.spec.training.batch_size == load_experiment(SPEC).spec.training.batch_size


def test_cli_check_of_the_learning_rehearsal_shows_the_spec_settings():
    result = CliRunner().invoke(app, ["train", "--spec", "short-sums", "--rehearsal", "--check"])
    assert result.exit_code == 0, result.output
    assert '"batch_size": 8' in result.output and '"max_steps": 60' in result.output
