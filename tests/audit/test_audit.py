"""Audits of real rollouts through verifiers 0.1.3.post0's own processing code."""

import json

import pytest

from hypolab.audit.findings import FINDING_CODES, MaskedSequence, TrainerMasks, audit_samples
from hypolab.audit.processing import build_samples
from hypolab.audit.rollouts import read_rollouts, to_jsonable
from hypolab.audit.compare_page import html_page
from hypolab.audits import AuditOptions, generate_rollouts


@pytest.fixture(scope="module")
def scripted(tok):
    def make(env):
        return generate_rollouts(AuditOptions(env=env, scripted=True, num_examples=3, num_generations=4), tok)
    return {env: make(env) for env in ("gsm8k", "math-python")}


def audit(tok, env, rollouts, masks=None, max_seq_len=4096, mask_env=True, skipped=None):
    samples = build_samples("legacy", rollouts, tok, max_seq_len, mask_env_responses=mask_env)
    return audit_samples(env=env, stack="legacy", rollouts=rollouts, samples=samples, tokenizer=tok,
                         max_seq_len=max_seq_len, max_model_len=8192, masks=masks, skipped=skipped)


def codes(report):
    return {f.code for f in report.findings}


def test_multi_turn_legacy_defects_are_found(tok, scripted):
    report = audit(tok, "math-python", scripted["math-python"])
    assert {"MISSING_ASSISTANT_HEADER", "DROPPED_NEWLINE", "TOOLS_BLOCK_MISSING"} <= codes(report)
    assert "TOOL_TOKENS_TRAINED" not in codes(report)  # mask_env_responses=True
    assert "CONTEXT_HIDDEN_FROM_ATTENTION" not in codes(report)  # no trainer masks: no claim
    assert report.trained_tokens_by_role["tool"] == 0 and report.tokens_by_role["tool"] > 0
    assert report.turns["min"] == 2 and report.tool_calls["max"] >= 1
    assert report.template_diff.first_position > 0
    changes = report.template_diff.changes
    assert any(c.op in ("insert", "replace") and "<|im_start|>assistant" in c.template for c in changes)  # missing header
    assert any("# Tools" in c.template for c in changes)  # the tools block vLLM saw
    assert set(codes(report)) <= set(FINDING_CODES)


def test_single_turn_has_none_of_the_multi_turn_defects(tok, scripted):
    report = audit(tok, "gsm8k", scripted["gsm8k"])
    assert not {"MISSING_ASSISTANT_HEADER", "DROPPED_NEWLINE", "TOOLS_BLOCK_MISSING", "TOOL_TOKENS_TRAINED"} & codes(report)
    assert report.turns == {"min": 1, "mean": 1.0, "max": 1}


def test_tool_tokens_trained_when_env_responses_are_not_masked(tok, scripted):
    report = audit(tok, "math-python", scripted["math-python"], mask_env=False)
    assert "TOOL_TOKENS_TRAINED" in codes(report)
    assert report.trained_tokens_by_role["tool"] == report.tokens_by_role["tool"]


def test_truncation_and_zero_variance_groups(tok, scripted):
    rollouts = scripted["math-python"]
    for r in rollouts:
        r.reward = 1.0  # every group identical
    report = audit(tok, "math-python", rollouts, max_seq_len=200)
    assert "TRUNCATED" in codes(report) and report.truncated_share > 0
    assert "ZERO_VARIANCE_GROUPS" in codes(report) and report.groups.zero_variance_share == 1.0


def test_hidden_context_comes_from_trainer_masks(tok, scripted):
    rollouts = scripted["math-python"][:2]
    samples = build_samples("legacy", rollouts, tok, 4096)
    # the legacy trainer feeds prompt_mask + completion_mask as the attention mask
    hidden = TrainerMasks("legacy", [MaskedSequence(s.ids, [0] * len(s.prompt_ids) + s.loss_mask, [0] * len(s.prompt_ids) + s.loss_mask) for s in samples])
    shown = TrainerMasks("current", [MaskedSequence(s.ids, [1] * len(s.ids), [0] * len(s.prompt_ids) + s.loss_mask) for s in samples])
    bad = audit(tok, "math-python", rollouts, masks=hidden)
    good = audit(tok, "math-python", rollouts, masks=shown)
    assert "CONTEXT_HIDDEN_FROM_ATTENTION" in codes(bad) and bad.attention.visible_share["user"] == 0.0
    assert "CONTEXT_HIDDEN_FROM_ATTENTION" not in codes(good) and good.attention.visible_share["tool"] == 1.0
    assert "hid" in html_page([bad])


def test_bad_lines_are_reported_and_skipped(tok, scripted, tmp_path):
    good = json.dumps(to_jsonable(scripted["math-python"][0]))
    bad_role = json.dumps({"prompt": [{"role": "narrator", "content": "x"}], "completion": [{"role": "assistant", "content": "y"}]})
    bad_args = json.loads(good)
    bad_args["completion"][0]["tool_calls"][0]["function"]["arguments"] = "{not json"
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join([good, "{oops", bad_role, json.dumps(bad_args), good]) + "\n")
    rollouts, skipped = read_rollouts(path)
    assert len(rollouts) == 2
    assert [(s.line, s.problem.split(" ")[0]) for s in skipped] == [(2, "not"), (3, "prompt[0]"), (4, "completion[0].tool_calls[0]")]
    assert "unknown role" in skipped[1].problem and "not JSON" in skipped[2].problem
    report = audit(tok, "math-python", rollouts, skipped=skipped)
    assert report.rollouts == 2
    assert next(f for f in report.findings if f.code == "SKIPPED_LINES").count == 3


def test_segment_cache_gives_exactly_the_tokenizers_ids(tok, scripted):
    from hypolab.audit.processing import SegmentCachedTokenizer

    cached = SegmentCachedTokenizer(tok)
    texts = ["<|im_start|>user\nnaïve café 12345<|im_end|>\n<tool_call>\n{\"a\": 1}\n</tool_call>", "  \n\n x<|im_end|>"]
    for r in scripted["math-python"] + scripted["gsm8k"]:
        texts.append(tok.apply_chat_template(r.messages, tools=r.tools, tokenize=False))
    for text in texts + texts:  # the second pass is served from the cache
        assert cached.encode(text) == tok.encode(text, add_special_tokens=False)


def test_context_longer_than_the_model_is_skipped_with_its_line(tok, scripted, tmp_path):
    from hypolab.audits import run_audit

    short = to_jsonable(scripted["gsm8k"][0])
    long = json.loads(json.dumps(short))
    long["completion"][0]["content"] = "word " * 3000
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(short) + "\n" + json.dumps(long) + "\n")
    report = run_audit(AuditOptions(env="gsm8k", rollouts_file=path, max_model_len=2048, max_seq_len=2048))
    assert report.rollouts == 1
    assert report.skipped[0].line == 2 and "longer than max_model_len 2048" in report.skipped[0].problem


def test_near_limit_and_untrained_assistant_tokens_exactly_when_they_hold(tok, scripted):
    from hypolab.audit.processing import Sample, reference_ids

    rollouts = scripted["gsm8k"][:4]
    longest = max(len(reference_ids(r, tok)) for r in rollouts)
    near = audit(tok, "gsm8k", rollouts, max_seq_len=longest + 5)
    far = audit(tok, "gsm8k", rollouts, max_seq_len=longest + 50)
    assert "NEAR_LIMIT" in codes(near) and "NEAR_LIMIT" not in codes(far)
    assert "TRUNCATED" not in codes(near)
    samples = build_samples("legacy", rollouts, tok, 4096)
    assert "ASSISTANT_TOKENS_UNTRAINED" not in codes(audit_samples(
        env="gsm8k", stack="legacy", rollouts=rollouts, samples=samples, tokenizer=tok, max_seq_len=4096, max_model_len=8192))
    broken = [Sample(s.rollout, s.prompt_ids, s.completion_ids, [0] * len(s.loss_mask)) if s.rollout == 0 else s for s in samples]
    report = audit_samples(env="gsm8k", stack="legacy", rollouts=rollouts, samples=broken, tokenizer=tok,
                           max_seq_len=4096, max_model_len=8192)
    assert next(f for f in report.findings if f.code == "ASSISTANT_TOKENS_UNTRAINED").count == 1


def test_live_source_audits_what_a_served_model_returns(tok):
    """--base-url: the environment's rollouts against an OpenAI-compatible server (here the
    scripted policy standing in for vLLM), then the same processing and report."""
    import verifiers as vf

    from hypolab.audits import run_audit
    from hypolab.trainer.envs.common import sample_path
    from hypolab.trainer.scripted_policy import ScriptedPolicy, ScriptedServer, examples_from_dataset

    path = str(sample_path("math-python"))
    env = vf.load_environment("math-python", dataset_path=path)
    with ScriptedServer(tok, ScriptedPolicy(examples_from_dataset(env.dataset), seed=3)) as server:
        report = run_audit(AuditOptions(env="math-python", base_url=server.base_url, model="served",
                                        env_args={"dataset_path": path}, num_examples=2, num_generations=2))
        assert server.requests >= 8  # two turns for each of 4 rollouts
    assert report.rollouts == 4 and report.source.startswith("live ")
    assert {"MISSING_ASSISTANT_HEADER", "TOOLS_BLOCK_MISSING"} <= codes(report)


def test_scripted_rollouts_and_their_report_are_the_same_on_the_same_input(tok):
    """The scripted policy's draws depend on the seed and the conversation, not on the order in
    which concurrent requests arrive: two runs give the same rollouts and the same report."""
    opts = AuditOptions(env="math-python", scripted=True, num_examples=3, num_generations=4)
    first, again = generate_rollouts(opts, tok), generate_rollouts(opts, tok)
    key = lambda r: json.dumps(to_jsonable(r), sort_keys=True)  # noqa: E731
    assert [key(r) for r in again] == [key(r) for r in first]  # the same rollouts, in the same order
    assert [r.reward for r in again] == [r.reward for r in first]
    a, b = audit(tok, "math-python", first), audit(tok, "math-python", again)
    da, db = a.model_dump(), b.model_dump()
    assert {k for k in da if da[k] != db[k]} == set()


def test_the_seed_chooses_the_scripted_draws(tok):
    def rewards(seed):
        opts = AuditOptions(env="gsm8k", scripted=True, num_examples=3, num_generations=4, seed=seed)
        return [r.reward for r in generate_rollouts(opts, tok)]
    assert rewards(0) == rewards(0)
    assert any(rewards(seed) != rewards(0) for seed in (1, 2, 3))


def test_a_scripted_audits_rehearsal_step_posts_nothing_to_the_coordinator(tmp_path, monkeypatch):
    """A coordinator's audit workload has HYPOLAB_COORDINATOR set; the audit's own rehearsal
    step is not one of its experiments, so it must not post its config or metrics there."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from hypolab.audits import rehearsal_masks

    seen = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HYPOLAB_COORDINATOR", f"http://127.0.0.1:{server.server_port}")
    try:
        masks = rehearsal_masks(AuditOptions(env="gsm8k", scripted=True, work_dir=tmp_path))
    finally:
        server.shutdown()
    assert masks is not None and masks.sequences  # the step ran and its hook recorded the trainer's tensors
    assert seen == []
