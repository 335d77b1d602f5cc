"""One findings catalogue: both producers word and count a defect the same way, docs/audit.md lists it."""

from pathlib import Path

import pytest

from hypolab.audit.catalogue import CATALOGUE, CODES, finding
from hypolab.audit.findings import MaskedSequence, TrainerMasks, audit_samples
from hypolab.audit.processing import build_samples
from hypolab.audit.rollouts import read_file
from hypolab.trainer.audit_hook import AuditHook

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "realdata" / "rollouts" / "math-python--gpt-4.1-mini__49a7458f.results.jsonl"


def test_every_code_is_documented_with_its_severity_and_unit():
    doc = (ROOT / "docs" / "audit.md").read_text()
    for c in CODES:
        section = doc.split(f"### {c.code}\n", 1)
        assert len(section) == 2, f"{c.code} missing from docs/audit.md"
        text = section[1].split("###", 1)[0]
        assert f"severity **{c.severity}**, counted in **{c.unit}**" in text
        assert c.meaning in text and c.template.replace("{", "‹").replace("}", "›") in text  # the catalogue's own words
    assert len(CATALOGUE) == len(CODES) and {c.unit for c in CODES} <= {"rollouts", "turns", "tokens"}


def test_a_finding_takes_severity_unit_and_wording_from_the_catalogue():
    f = finding("MISSING_ASSISTANT_HEADER", 12, {"rollout": 0}, rollouts=10, total=15)
    assert (f.severity, f.unit, f.count) == ("error", "turns", 12)
    assert f.message.startswith("12 assistant turns after the first, in 10 of 15 rollouts")


@pytest.fixture(scope="module")
def real(tok):
    if not REAL.exists():
        pytest.skip(f"{REAL} not here")
    rollouts = [r for r in read_file(REAL).rollouts if any(m["role"] == "tool" for m in r.completion)][:3]
    return rollouts


def both(tok, rollouts, samples, masks):
    """(file audit's findings, in-training hook's findings) over the same fed sequences, by code."""
    file_report = audit_samples(env="math-python", stack="legacy", rollouts=rollouts, samples=samples, tokenizer=tok,
                                max_seq_len=4096, max_model_len=8192, masks=masks)
    hook = AuditHook("legacy", tok)
    hook.masks = masks
    hook_report = hook.report("math-python", rehearsal=False)
    return ({f.code: f for f in file_report.findings}, {f.code: f for f in hook_report.findings})


def test_both_producers_report_hidden_context_and_trained_tool_tokens_identically(tok, real):
    samples = build_samples("legacy", real, tok, 4096, mask_env_responses=False)  # tool tokens carry loss
    # as the legacy trainer feeds them: attention mask = prompt_mask + completion_mask, loss on the latter
    masks = TrainerMasks("legacy", [MaskedSequence(s.ids, [0] * len(s.prompt_ids) + s.loss_mask,
                                                   [0] * len(s.prompt_ids) + s.loss_mask) for s in samples])
    from_file, from_hook = both(tok, real, samples, masks)
    for code in ("CONTEXT_HIDDEN_FROM_ATTENTION", "TOOL_TOKENS_TRAINED"):
        a, b = from_file[code], from_hook[code]
        assert (a.severity, a.unit, a.count, a.message) == (b.severity, b.unit, b.count, b.message), code
    hidden = from_file["CONTEXT_HIDDEN_FROM_ATTENTION"]
    assert hidden.unit == "tokens" and "see 0% of system, 0% of user" in hidden.message
    assert from_file["TOOL_TOKENS_TRAINED"].unit == "tokens"


def test_every_finding_carries_its_meaning_to_the_page():
    """The researcher reads what a finding means for training wherever it is shown."""
    from hypolab.audit.compare_page import html_page
    from hypolab.contracts import AuditReport

    for c in CODES:
        assert len(c.meaning) > 80, c.code
    hidden = CATALOGUE["CONTEXT_HIDDEN_FROM_ATTENTION"]
    assert "single-turn" in hidden.meaning or "single turn" in hidden.meaning
    f = finding("CONTEXT_HIDDEN_FROM_ATTENTION", 560, total=600, system="0%", user="0%", tool="0%",
                sequences=4, of_sequences=4)
    assert f.meaning == hidden.meaning and f.unit == "tokens"
    report = AuditReport(env="math-python", stack="legacy", rollouts=4, findings=[f])
    page = html_page([report])
    assert "What this means for training:</strong> The trainer&#x27;s attention mask hides the prompt" in page


def test_the_html_page_prints_nothing(capsys):
    """--html writes the page; the comparison table it records is not printed again (at 160 columns)."""
    from hypolab.audit.compare_page import html_page
    from hypolab.contracts import AuditReport

    page = html_page([AuditReport(env="gsm8k", stack="legacy", rollouts=2),
                      AuditReport(env="math-python", stack="legacy", rollouts=2)])
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert "math-python" in page and "<pre" in page
