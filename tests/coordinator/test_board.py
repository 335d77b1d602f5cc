"""The board (`hypolab status`, `hypolab run`, the demo's end) stays a table at 80 columns."""

from rich.console import Console

from hypolab.coordinator.client import board_table
from hypolab.specs import load_hypotheses

SENTENCE = "H06 validated: Clear reward improvement within 20–50 steps (reward +0.31 at step 40)."


def render(width: int) -> list[str]:
    hyps = [{"id": h.id, "title": h.title, "status": "validated" if h.id == "H06" else "untested",
             "queued": h.id == "H07", "verdict": {"sentence": SENTENCE} if h.id == "H06" else None}
            for h in load_hypotheses().values()]
    exps = [{"id": f"{h['id']}.{e}", "hypothesis_id": h["id"], "status": "succeeded"}
            for h in hyps for e in ("gsm8k", "audit-math-python")]
    console = Console(width=width, record=True, color_system=None)
    console.print(board_table(hyps, exps, {"H06.gsm8k": 41}))
    return console.export_text().splitlines()


def test_one_line_per_experiment_short_ids_and_the_verdict_below_at_80_columns():
    lines = render(80)
    assert max(len(line) for line in lines) <= 80
    rows = [line.split() for line in lines if "gsm8k" in line or "audit-math-python" in line]
    assert len(rows) == 2 * len(load_hypotheses())  # no experiment row wraps onto a second line
    first = next(line for line in lines if line.split()[:1] == ["H06"])
    assert "gsm8k" in first.split() and "H06.gsm8k" not in first and "succeeded" in first and first.rstrip().endswith("41")
    assert "…" in first  # the title is cut, not wrapped
    assert any("queued" in line.split() for line in lines if line.split()[:1] == ["H07"])
    verdict_at = next(i for i, line in enumerate(lines) if line.startswith("H06 validated:"))
    assert verdict_at > max(i for i, line in enumerate(lines) if "audit-math-python" in line)


def test_a_wide_terminal_shows_the_titles_longer():
    narrow = next(line for line in render(80) if line.split()[:1] == ["H07"])
    wide = next(line for line in render(160) if line.split()[:1] == ["H07"])
    assert len(wide.split("…")[0]) > len(narrow.split("…")[0])


def test_rehearsals_are_marked_and_explained():
    hyps = [{"id": "H06", "title": "Library sanity", "status": "testing", "queued": False, "verdict": None}]
    exps = [{"id": "H06.gsm8k", "hypothesis_id": "H06", "status": "running", "rehearsal": 1},
            {"id": "H06.audit", "hypothesis_id": "H06", "status": "running", "rehearsal": 0}]
    console = Console(width=80, record=True, color_system=None)
    console.print(board_table(hyps, exps))
    lines = console.export_text().splitlines()
    assert any("gsm8k*" in line.split() for line in lines) and any("audit" in line.split() for line in lines)
    assert "* a CPU rehearsal: a few small steps on one process, not the planned run" in lines
    console = Console(width=80, record=True, color_system=None)
    console.print(board_table(hyps, [{**exps[0], "rehearsal": 0}]))
    assert "rehearsal" not in console.export_text()
