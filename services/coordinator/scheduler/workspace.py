"""What every part of the lab shares: the store, the runner, the plans, and where outputs go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...contracts import HypothesisSpec
from ..planner import PlannedExperiment
from ..runners import Runner
from ..store import Store

EARLY_STOP = "stopped early"
LOG_TAIL_LINES = 40


class LabError(Exception):
    """A request the lab refuses; `status` is the HTTP status the route answers with."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 64_000) -> str:
    """The last lines of a workload's log ('' when there is none yet)."""
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        data = f.read().decode("utf-8", "replace")
    return "\n".join(data.splitlines()[-lines:])


@dataclass
class Workspace:
    store: Store
    runner: Runner
    hypotheses: dict[str, HypothesisSpec]  # in test order: priority, then order
    plans: dict[str, list[PlannedExperiment]]
    data_dir: Path
    lab_id: str = ""  # names this lab's jobs on a shared cluster (the store's meta)
    #: how far each workload's log has been read for metric lines (a new attempt starts at its end)
    log_offsets: dict[str, int] = field(default_factory=dict)

    def output_dir(self, eid: str) -> Path:
        return self.data_dir / "outputs" / eid

    def log_path(self, eid: str) -> Path:
        """The workload's output, beside everything else it produced (on the outputs volume)."""
        return self.output_dir(eid) / "coordinator.log"

    def planned(self, eid: str) -> PlannedExperiment | None:
        hid = eid.split(".", 1)[0]
        return next((p for p in self.plans.get(hid, []) if p.id == eid), None)
