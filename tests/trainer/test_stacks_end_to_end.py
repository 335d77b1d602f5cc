"""Both stacks, each in its own venv, through their own trainers and processing code.

The legacy stack lives in .venv (the suite's own interpreter), the current one in
.venv-current (`make test` builds both). The scripted audits run one rehearsal step of
the real trainer, so `CONTEXT_HIDDEN_FROM_ATTENTION` comes from its attention masks.
"""

import json
import os
import subprocess
import sys

import pytest

from hypolab.paths import ROOT

CURRENT_PY = ROOT / ".venv-current" / "bin" / "python"


def current_python():
    if not CURRENT_PY.exists():
        if os.environ.get("CI"):
            pytest.fail(".venv-current is missing: `make test` builds it (docker/stacks/cpu/current.txt)")
        pytest.skip(".venv-current not built (make install)")
    return str(CURRENT_PY)


def run_audit(python, stack, out, tmp_path):
    env = {**os.environ, "HYPOLAB_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([python, "-m", "hypolab", "audit", "--env", "math-python", "--stack", stack, "--scripted",
                           "--num-examples", "2", "--json", str(out)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def codes(report):
    return {f["code"] for f in report["findings"]}


LEGACY_DEFECTS = {"MISSING_ASSISTANT_HEADER", "DROPPED_NEWLINE", "TOOLS_BLOCK_MISSING", "CONTEXT_HIDDEN_FROM_ATTENTION"}


def test_legacy_audit_reports_the_legacy_defects(tmp_path):
    report = run_audit(sys.executable, "legacy", tmp_path / "legacy.json", tmp_path)
    assert LEGACY_DEFECTS <= codes(report)
    assert report["attention"]["visible_share"]["user"] == 0.0 and report["attention"]["visible_share"]["tool"] == 0.0
    assert report["rehearsal"] is True


def test_current_audit_has_none_of_them(tmp_path):
    report = run_audit(current_python(), "current", tmp_path / "current.json", tmp_path)
    assert not (LEGACY_DEFECTS | {"TOOL_TOKENS_TRAINED"}) & codes(report)
    assert report["attention"]["visible_share"]["user"] == 1.0 and report["attention"]["visible_share"]["tool"] == 1.0
    assert report["trained_tokens_by_role"]["tool"] == 0 and report["trained_tokens_by_role"]["assistant"] > 0


CURRENT_CONFIG = r"""
import json, sys
from hypolab.trainer.rehearsal import install_no_sync
install_no_sync()  # verifiers.rl imports vllm's NCCL client at load time; CPU hosts have no vllm
from hypolab.trainer.config import resolve_run
from hypolab.trainer.adapters import adapter_for
run = resolve_run(sys.argv[1], sys.argv[2:], {})
args, lora = adapter_for("current").build(run.spec, "/tmp/x", "run", "vllm", 8000, cpu=True)
print(json.dumps({"args": {k: getattr(args, k) for k in ("rollouts_per_example", "batch_size", "micro_batch_size",
    "learning_rate", "max_steps", "max_seq_len", "max_tokens", "temperature", "top_p", "top_k", "mask_env_responses",
    "mask_truncated_completions", "use_lora", "lora_rank", "lora_alpha", "lora_dropout", "gradient_accumulation_steps",
    "vllm_server_host", "vllm_server_port")},
    "lora": {"r": lora.r, "alpha": lora.lora_alpha, "dropout": lora.lora_dropout, "targets": sorted(lora.target_modules)},
    "config_lora_dropout": args.lora_config.lora_dropout}))
"""


def current_config(*sets):
    spec = str(ROOT / "configs" / "experiments" / "math-python.yaml")
    return subprocess.run([current_python(), "-c", CURRENT_CONFIG, spec, "stack=current", *sets],
                          capture_output=True, text=True, timeout=300)


def test_current_config_maps_every_field_with_the_real_rlconfig():
    done = current_config("training.beta=null", "training.loss_type=null", "training.scale_rewards=null",
                          "training.lora.dropout=0.05", "training.top_k=20")
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["args"] == {
        "rollouts_per_example": 8, "batch_size": 8 * 4 * 3, "micro_batch_size": 8, "learning_rate": 1e-6,
        "max_steps": 200, "max_seq_len": 4096, "max_tokens": 1024, "temperature": 1.0, "top_p": 1.0, "top_k": 20,
        "mask_env_responses": True, "mask_truncated_completions": False, "use_lora": True, "lora_rank": 8,
        "lora_alpha": 16, "lora_dropout": 0.05, "gradient_accumulation_steps": 1,
        "vllm_server_host": "vllm", "vllm_server_port": 8000}
    assert got["lora"] == {"r": 8, "alpha": 16, "dropout": 0.05, "targets": ["k_proj", "o_proj", "q_proj", "v_proj"]}
    assert got["config_lora_dropout"] == 0.05  # RLConfig's own LoraConfig would have dropped it


def test_current_refuses_legacy_only_settings():
    done = current_config()  # the GSM8K control's beta=0.001 etc.
    assert done.returncode != 0
    assert "training.beta=0.001 on the current stack: RLTrainer has no KL term" in done.stderr
