"""The engine on the real public runs (../shared/realdata/curves), each with its own length as horizon."""

import json
from pathlib import Path

import pytest

from hypolab.verdicts.sequential import decide_improvement
from hypolab.verdicts.series import read_series

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "curves"
pytestmark = pytest.mark.skipif(not (REAL / "labels.json").exists(), reason="../shared/realdata not present")


def decisions() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for entry in json.loads((REAL / "labels.json").read_text()):
        points = read_series(REAL / Path(entry["file"]).name, "reward").points
        d = decide_improvement(points, horizon=points[-1][0])
        assert d.warnings == [] and d.horizon == entry["n_steps"]
        out.setdefault(entry["label"], []).append(d.decision)
    return out


def test_learned_runs_are_never_called_no_improvement_and_flat_runs_rarely_improve():
    by_label = decisions()
    learned, flat = by_label["learned"], by_label["did_not_learn"]
    assert "no_improvement" not in learned
    assert learned.count("improves") >= 0.8 * len(learned)
    assert flat.count("improves") <= 1
    assert set(by_label["too_short"]) <= {"inconclusive", "no_improvement"}
