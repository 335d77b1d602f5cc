"""Real `vf-eval` output, read as it is: every file in ../shared/realdata/rollouts/.

The expectations come from each raw file itself (its lines, whether a line has several
assistant turns or tools offered) and its metadata.json (num_examples = the groups),
never from the audit. The legacy stack runs in this interpreter (.venv); the current
stack in .venv-current, as tests/trainer/test_stacks_end_to_end.py does. Attention is
observed by replaying two rollouts of each file through the stack's real trainer.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hypolab.audits import AuditOptions, run_audit

ROOT = Path(__file__).resolve().parents[2]
REALDATA = ROOT.parent / "shared" / "realdata" / "rollouts"
CURRENT_PY = ROOT / ".venv-current" / "bin" / "python"
FILES = sorted(REALDATA.glob("*.results.jsonl"))
NAMES = [p.name.removesuffix(".results.jsonl") for p in FILES]
MULTI_TURN = {"MISSING_ASSISTANT_HEADER", "DROPPED_NEWLINE", "TOOL_TOKENS_TRAINED"}
LEGACY_DEFECTS = MULTI_TURN | {"TOOLS_BLOCK_MISSING", "CONTEXT_HIDDEN_FROM_ATTENTION"}


def raw(name):
    """What the raw file says: its non-blank lines, multi-turn or not, tools offered, its metadata."""
    lines = [json.loads(t) for t in (REALDATA / f"{name}.results.jsonl").read_text().splitlines() if t.strip()]
    meta = json.loads((REALDATA / f"{name}.metadata.json").read_text())
    multi = any(sum(m["role"] == "assistant" for m in d["completion"]) > 1 for d in lines)
    tools = any((d.get("info") or {}).get("oai_tools") for d in lines)
    tool_messages = any(m["role"] == "tool" for d in lines for m in d["completion"])
    return {"lines": len(lines), "multi": multi, "tools": tools, "tool_messages": tool_messages, "meta": meta}


def codes(report):
    return {f["code"] for f in report["findings"]}


@pytest.fixture(scope="module", autouse=True)
def realdata():
    if not FILES:
        if os.environ.get("CI"):
            pytest.fail(f"no rollouts files in {REALDATA}")
        pytest.skip(f"no rollouts files in {REALDATA}")


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    out = {}
    for path, name in zip(FILES, NAMES):
        report = run_audit(AuditOptions(rollouts_file=path, stack="legacy", replay_rollouts=2,
                                        work_dir=tmp_path_factory.mktemp("replay")))
        out[name] = report.model_dump(mode="json")
    return out


CURRENT_SCRIPT = r"""
import json, sys
from pathlib import Path
from hypolab.audits import AuditOptions, run_audit
out = {}
for path in sys.argv[2:]:
    report = run_audit(AuditOptions(rollouts_file=Path(path), stack="current", replay_rollouts=2, work_dir=Path(sys.argv[1])))
    out[Path(path).name.removesuffix(".results.jsonl")] = report.model_dump(mode="json")
print("REPORTS " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def current(tmp_path_factory):
    if not CURRENT_PY.exists():
        if os.environ.get("CI"):
            pytest.fail(".venv-current is missing: `make test` builds it")
        pytest.skip(".venv-current not built (make install)")
    work = tmp_path_factory.mktemp("current")
    done = subprocess.run([str(CURRENT_PY), "-c", CURRENT_SCRIPT, str(work), *map(str, FILES)], cwd=work,
                          env={**os.environ, "HYPOLAB_CACHE_DIR": os.environ.get("HYPOLAB_CACHE_DIR", str(work / "cache"))},
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(t for t in done.stdout.splitlines() if t.startswith("REPORTS "))
    return json.loads(line.removeprefix("REPORTS "))


def check_read_as_it_is(report, name):
    """Every line read and audited, the groups those of metadata.json, and how they were formed said."""
    facts = raw(name)
    assert report["lines"] == facts["lines"] and report["rollouts"] == facts["lines"] and report["skipped"] == []
    assert report["groups"]["count"] == facts["meta"]["num_examples"]
    assert report["env"] == facts["meta"]["env"]  # --env defaults to metadata.json's
    if report["groups"]["by"] == "prompt":
        assert "grouped by prompt" in report["groups"]["note"]


@pytest.mark.parametrize("name", NAMES)
def test_legacy_shows_the_legacy_defects_where_the_shape_has_them(legacy, name):
    report, facts = legacy[name], raw(name)
    check_read_as_it_is(report, name)
    found = codes(report)
    assert ("TOOLS_BLOCK_MISSING" in found) == facts["tools"]
    if facts["multi"]:
        assert {"MISSING_ASSISTANT_HEADER", "DROPPED_NEWLINE"} <= found
    else:  # single turn (tool-test): none of the multi-turn defects
        assert not MULTI_TURN & found
    # attention, observed by replaying the file's own rollouts through GRPOTrainer
    assert report["replay"]["observed"] and report["replay"]["sequences"] >= 2 and report["replay"]["seconds"] > 0
    assert "CONTEXT_HIDDEN_FROM_ATTENTION" in found
    hidden = next(f for f in report["findings"] if f["code"] == "CONTEXT_HIDDEN_FROM_ATTENTION")
    assert hidden["unit"] == "tokens" and 0 < hidden["count"] <= report["attention"]["loss_tokens"]
    share = report["attention"]["visible_share"]
    assert share["user"] == 0.0 and hidden["example"]["visible_share"] == share
    if name.startswith("math-python") and facts["tool_messages"]:
        assert share["tool"] == 0.0  # the tool responses are hidden from the loss tokens


@pytest.mark.parametrize("name", NAMES)
def test_current_shows_none_of_them(current, name):
    report = current[name]
    check_read_as_it_is(report, name)
    assert not LEGACY_DEFECTS & codes(report)
    assert report["replay"]["observed"] and report["replay"]["sequences"] >= 2
    share = report["attention"]["visible_share"]
    assert all(v == 1.0 for v in share.values() if v is not None) and share["user"] == 1.0


def test_no_replay_says_attention_was_not_observed(tmp_path):
    path = FILES[0]
    report = run_audit(AuditOptions(rollouts_file=path, replay=False, work_dir=tmp_path))
    assert report.attention is None and report.replay is not None and not report.replay.observed
    assert "CONTEXT_HIDDEN_FROM_ATTENTION" not in {f.code for f in report.findings}
    assert not (tmp_path / "replay-legacy").exists()  # no trainer was built


def test_run_directory_and_name_pairing_find_the_metadata(tmp_path):
    name = next(n for n in NAMES if n.startswith("wordle"))
    run = tmp_path / "outputs" / "evals" / "wordle--m" / "abc"
    run.mkdir(parents=True)
    (run / "results.jsonl").write_text((REALDATA / f"{name}.results.jsonl").read_text())
    (run / "metadata.json").write_text((REALDATA / f"{name}.metadata.json").read_text())
    by_dir = run_audit(AuditOptions(rollouts_file=run, replay=False))
    by_pair = run_audit(AuditOptions(rollouts_file=REALDATA / f"{name}.results.jsonl", replay=False))
    assert by_dir.env == by_pair.env == "wordle" and "metadata.json" in by_dir.source
    assert by_dir.rollouts == by_pair.rollouts == raw(name)["lines"]


def test_bad_lines_are_skipped_with_their_reason_and_the_rest_audited(tmp_path):
    good = [t for t in FILES[0].read_text().splitlines() if t.strip()]
    first = json.loads(good[0])
    repeats = dict(first, completion=first["prompt"] + first["completion"])
    user_first = dict(first, completion=[{"role": "user", "content": "hi"}] + first["completion"])
    orphan = dict(first, prompt=[*first["prompt"], {"role": "tool", "content": "42"}])
    orphan_mid = dict(first, completion=[{"role": "assistant", "content": "thinking"}, {"role": "tool", "content": "42"},
                                         {"role": "assistant", "content": "done"}])
    lines = [good[0], '{"note": "not a rollout"}', "{oops", json.dumps(repeats), json.dumps(user_first),
             json.dumps(orphan), json.dumps(orphan_mid), "", good[1]]
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = run_audit(AuditOptions(rollouts_file=path, replay=False))
    problems = {s.line: s.problem for s in report.skipped}
    assert report.rollouts == 2 and sorted(problems) == [2, 3, 4, 5, 6, 7]
    assert "not a rollout" in problems[2] and "not JSON" in problems[3]
    assert "repeats the prompt" in problems[4] and "does not start after the prompt" in problems[5]
    assert "without a preceding tool call" in problems[6] and "without a preceding tool call" in problems[7]
    skipped = next(f for f in report.findings if f.code == "SKIPPED_LINES")
    assert skipped.count == 6 and skipped.unit == "rollouts" and "6 of 8 lines" in skipped.message


def hypolab(*args, cwd):
    return subprocess.run([sys.executable, "-m", "hypolab", "audit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_a_file_with_no_auditable_line_is_one_clear_error(tmp_path):
    empty = tmp_path / "empty.results.jsonl"
    empty.write_text("\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "text only", "completion": "x"}\n[1, 2]\n')
    for path, first in ((empty, "the file is empty"), (bad, "line 1: prompt is text")):
        done = hypolab("--rollouts", str(path), "--no-replay", cwd=tmp_path)
        lines = [t for t in done.stderr.splitlines() if t.strip()]
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert str(path) in lines[0] and "vf-eval results.jsonl" in lines[0] and first in lines[0]


def test_the_stack_must_be_installed_before_any_input_is_read(tmp_path):
    done = hypolab("--rollouts", str(tmp_path / "missing.jsonl"), "--stack", "current", cwd=tmp_path)
    lines = [t for t in done.stderr.splitlines() if t.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "current stack" in lines[0] and "make install" in lines[0] and "missing.jsonl" not in lines[0]
