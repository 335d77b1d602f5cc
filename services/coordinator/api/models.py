"""The API's request and response bodies (every route declares its `response_model`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ...contracts import ExperimentStatus, FieldDiff, HypothesisSpec, HypothesisStatus, NextHypotheses, Verdict
from ..store import ExperimentFields


class RunRequest(BaseModel):
    hypotheses: list[str] = Field(..., min_length=1, max_length=50)
    request_key: str | None = Field(None, max_length=200, description="same key, same run: safe to retry")


class IngestReceipt(BaseModel):
    experiment_id: str
    events: int
    values: int


class StoredReceipt(BaseModel):
    """What a POST attached to an experiment."""

    experiment_id: str
    stored: Literal["trainer_config", "report"]


class ExperimentView(ExperimentFields):
    """An experiment as stored, with its purpose; `log_tail` is live while it runs."""

    purpose: str = ""


class PendingExperiment(BaseModel):
    """An experiment of a hypothesis that has not been queued yet: its plan."""

    id: str
    status: Literal[ExperimentStatus.pending] = ExperimentStatus.pending
    kind: Literal["train", "audit"]
    config: dict[str, Any] = Field(description="the resolved ExperimentSpec")
    control_id: str | None
    diff: list[FieldDiff]
    undeclared: list[str]
    purpose: str


class HypothesisSummary(BaseModel):
    """One line of the board."""

    id: str
    title: str
    priority: int
    order: int
    after: list[str]
    next: NextHypotheses
    status: HypothesisStatus
    queued: bool
    verdict: Verdict | None


class HypothesisDetail(BaseModel):
    id: str
    status: HypothesisStatus
    queued: bool
    verdict: Verdict | None
    current_evidence: Verdict | None = Field(description="the rules' view now, while it is being tested")
    spec: HypothesisSpec
    experiments: list[ExperimentView | PendingExperiment]


class MetricPoint(BaseModel):
    step: int
    name: str
    value: float
    time: float
