"""`.env` parsing and validation: every bad value is one line naming the setting."""

import pytest

from hypolab.contracts import STACKS
from hypolab.stack.settings import SettingError, known_stacks, load_settings, parse_env_file, stack_pins


def settings_from(tmp_path, text, environ=None):
    env = tmp_path / ".env"
    env.write_text(text)
    return load_settings(env, environ or {})


def test_parse_env_file_like_compose(tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "# comment\n\nSTACK=current\nexport MODEL='Qwen/Qwen2.5-0.5B-Instruct'\n"
        'HF_TOKEN="abc # not a comment"\nVLLM_PORT=9000  # trailing comment\nVLLM_EXTRA_ARGS=\n'
    )
    assert parse_env_file(env) == {
        "STACK": "current",
        "MODEL": "Qwen/Qwen2.5-0.5B-Instruct",
        "HF_TOKEN": "abc # not a comment",
        "VLLM_PORT": "9000",
        "VLLM_EXTRA_ARGS": "",
    }


def test_defaults_match_the_design(tmp_path):
    s = settings_from(tmp_path, "")
    assert s.STACK == "legacy" and s.VLLM_GPU == 0 and s.trainer_gpus == [1, 2, 3]
    assert (s.VLLM_GPU_MEMORY_UTILIZATION, s.VLLM_MAX_MODEL_LEN, s.VLLM_EXTRA_ARGS) == (0.6, 8192, "--enforce-eager")
    assert s.vllm_version == "0.10.1.1"


def test_environment_wins_over_env_file(tmp_path):
    s = settings_from(tmp_path, "STACK=legacy\nCOORDINATOR_PORT=9001\n", {"STACK": "current"})
    assert s.STACK == "current" and s.COORDINATOR_PORT == 9001 and s.vllm_version == "0.10.2"


def test_unknown_stack_is_one_line_naming_the_setting(tmp_path):
    with pytest.raises(SettingError) as err:
        settings_from(tmp_path, "STACK=nightly\n")
    assert str(err.value) == (
        "STACK=nightly: unknown stack; choose one of current, legacy (docker/stacks/*.txt)"
    )


@pytest.mark.parametrize(
    "line, name",
    [
        ("VLLM_GPU=-1", "VLLM_GPU"),
        ("TRAINER_GPU_2=two", "TRAINER_GPU_2"),
        ("COORDINATOR_PORT=70000", "COORDINATOR_PORT"),
        ("VLLM_GPU_MEMORY_UTILIZATION=1.5", "VLLM_GPU_MEMORY_UTILIZATION"),
    ],
)
def test_bad_values_name_their_setting(tmp_path, line, name):
    with pytest.raises(SettingError) as err:
        settings_from(tmp_path, line + "\n")
    assert str(err.value).startswith(name + "=") and "\n" not in str(err.value)


def test_gpu_sets_must_not_overlap(tmp_path):
    with pytest.raises(SettingError, match="VLLM_GPU=1 is also a trainer GPU"):
        settings_from(tmp_path, "VLLM_GPU=1\n")
    with pytest.raises(SettingError, match="three different GPUs"):
        settings_from(tmp_path, "TRAINER_GPU_3=2\n")


def test_malformed_line(tmp_path):
    with pytest.raises(SettingError, match=r".env line 2=this is not: expected KEY=VALUE"):
        settings_from(tmp_path, "STACK=legacy\nthis is not\n")


def test_stack_files_and_contract_agree():
    assert known_stacks() == sorted(STACKS)


def test_stack_pins_are_designs():
    legacy, current = stack_pins("legacy"), stack_pins("current")
    assert {k: legacy[k] for k in ("verifiers", "vllm", "torch", "trl", "deepspeed", "accelerate",
                                   "transformers", "peft", "liger-kernel")} == {
        "verifiers": "0.1.3.post0", "vllm": "0.10.1.1", "torch": "2.7.1", "trl": "0.19.1",
        "deepspeed": "0.17.5", "accelerate": "1.10.1", "transformers": "4.56.1", "peft": "0.17.1",
        "liger-kernel": "0.6.2"}
    assert (current["verifiers"], current["vllm"], current["torch"]) == ("0.1.9.post3", "0.10.2", "2.8.0")
