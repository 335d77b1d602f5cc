"""Wire formats shared by every part of hypolab (docs/architecture.md, "Spec formats" and "Metrics").

Every boundary — YAML specs on disk, the coordinator's HTTP API, the trainer's
metric reports — speaks these pydantic models. Unknown keys are errors everywhere
(`extra="forbid"`), so a typo in a spec fails loudly instead of being ignored.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The pinned stacks (docker/stacks/<name>.txt). A unit test keeps this list and
#: the files in step.
Stack = Literal["legacy", "current"]
STACKS: tuple[str, ...] = ("legacy", "current")


class StrictModel(BaseModel):
    """Base for every contract: unknown keys are rejected, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class LoraSpec(StrictModel):
    """LoRA adapter settings; `lora: null` in a spec means full fine-tuning."""

    r: int = Field(8, gt=0, description="LoRA rank")
    alpha: int = Field(16, gt=0, description="LoRA alpha")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


class TrainingSpec(StrictModel):
    """GRPO training parameters, named as the researcher's command lines name them.

    Defaults follow verifiers 0.1.3.post0's `vf.grpo_defaults` where it has one.
    """

    batch_size: int = Field(8, gt=0, description="per-device train batch size")
    num_generations: int = Field(8, gt=0, description="completions per prompt (GRPO group size)")
    gradient_accumulation_steps: int = Field(4, gt=0)
    learning_rate: float = Field(1e-6, gt=0)
    num_epochs: int | None = Field(None, gt=0)
    max_steps: int | None = Field(500, gt=0)
    # Legacy-only knobs: None means "the stack's own behaviour". The current stack
    # (RLTrainer) has no KL term, one loss and no reward scaling switch, so a current-stack
    # spec sets them to null; any other value there is refused (trainer adapters).
    beta: float | None = Field(0.001, ge=0, description="KL coefficient (legacy stack)")
    loss_type: Literal["grpo", "bnpo", "dr_grpo"] | None = "grpo"
    scale_rewards: bool | None = True
    max_seq_len: int = Field(4096, gt=0, description="prompt + completion tokens per sample")
    max_tokens: int | None = Field(None, gt=0, description="sampling limit per assistant turn")
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(None, description="None: vLLM uses the model's generation config")
    lora: LoraSpec | None = Field(default_factory=LoraSpec)
    mask_env_responses: bool = True
    mask_truncated_completions: bool = False
    num_processes: int = Field(3, gt=0, description="training processes (one per trainer GPU)")

    @model_validator(mode="after")
    def _one_horizon(self) -> "TrainingSpec":
        if self.num_epochs is None and self.max_steps is None:
            raise ValueError("set num_epochs or max_steps")
        return self


class VllmSpec(StrictModel):
    """How the vLLM rollout server must be started for this experiment."""

    gpu_memory_utilization: float = Field(0.6, gt=0, le=1)
    max_model_len: int = Field(8192, gt=0)
    tool_call_parser: str = "hermes"
    enforce_eager: bool = True


class ExperimentSpec(StrictModel):
    """One fully resolved experiment: what to train (or audit), on what, and how."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    kind: Literal["train", "audit"] = "train"
    env: str = Field(..., min_length=1)
    env_args: dict[str, Any] = Field(default_factory=dict)
    model: str = Field(..., min_length=1)
    stack: Stack = "legacy"
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    vllm: VllmSpec = Field(default_factory=VllmSpec)

    @model_validator(mode="after")
    def _fits_context(self) -> "ExperimentSpec":
        t = self.training
        if t.max_tokens is not None and t.max_tokens >= self.vllm.max_model_len:
            raise ValueError(
                f"training.max_tokens={t.max_tokens} leaves no room for the prompt in "
                f"vllm.max_model_len={self.vllm.max_model_len}"
            )
        return self


class FieldDiff(StrictModel):
    """One field where a treatment's resolved config differs from its control's."""

    path: str
    control: Any
    treatment: Any


class ComponentHealth(StrictModel):
    """Health of one thing the coordinator depends on."""

    ok: bool
    detail: str = ""


class HealthReport(StrictModel):
    """`GET /api/health`: is the coordinator able to do its job right now?"""

    status: Literal["ok", "degraded"]
    version: str
    runner: Literal["local", "docker", "ray"]
    db: ComponentHealth
    vllm: ComponentHealth
    queue: ComponentHealth = ComponentHealth(ok=True, detail="")
    cluster: ComponentHealth | None = Field(None, description="a cluster runner's state (Ray: nodes, free GPUs)")


# --- Hypotheses (configs/hypotheses/*.yaml) -------------------------------------------

IDENT = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
METRIC_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_./:-]{0,127}$"
_METRIC_NAME_RE = re.compile(METRIC_NAME)


class ExperimentRef(StrictModel):
    """One experiment of a hypothesis: a spec file, optionally varied, optionally controlled.

    `spec` names configs/experiments/<spec>.yaml; `vary` changes fields of it. With
    `control` (another experiment of the same hypothesis) the coordinator resolves both
    and refuses to queue this one if they differ anywhere not declared — in this `vary`
    or in the spec file's own `vary` against its control.
    """

    id: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    spec: str = Field(..., pattern=IDENT)
    vary: dict[str, Any] = Field(default_factory=dict)
    control: str | None = Field(
        None, pattern=r"^(H[0-9]{2}\.)?[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="an experiment of this hypothesis, or `H06.gsm8k` of one it comes after",
    )
    kind: Literal["train", "audit"] | None = Field(None, description="default: the spec's kind")
    purpose: str = ""
    early_stop: bool = Field(True, description="stop training once the hypothesis has its verdict")
    retries: int = Field(0, ge=0, le=10, description="automatic retries after a crash or a stall")
    stall_timeout_s: float = Field(1800, gt=0, description="no metric for this long: stalled (NCCL hangs)")


MIN_EFFECT_HELP = "in the metric's units; default: half the baseline's step-to-step standard deviation"


class ImprovesRule(StrictModel):
    """The experiment's metric rises by at least `min_effect` over training."""

    rule: Literal["improves"]
    experiment: str
    metric: str = Field("reward", pattern=METRIC_NAME)
    min_effect: float | None = Field(None, gt=0, description=MIN_EFFECT_HELP)


class NoImprovementRule(StrictModel):
    """The experiment's metric confidently rises by less than `min_effect` (or falls)."""

    rule: Literal["no_improvement"]
    experiment: str
    metric: str = Field("reward", pattern=METRIC_NAME)
    min_effect: float | None = Field(None, gt=0, description=MIN_EFFECT_HELP)


class CompareRule(StrictModel):
    """The treatment's late-training metric is better (or worse) than the control's."""

    rule: Literal["compare"]
    treatment: str
    control: str
    metric: str = Field("reward", pattern=METRIC_NAME)
    direction: Literal["better", "worse"] = "better"
    min_effect: float | None = Field(None, gt=0, description=MIN_EFFECT_HELP)


class AuditRule(StrictModel):
    """An audit experiment reports (or does not report) a finding code."""

    rule: Literal["audit"]
    experiment: str
    check: str = Field(..., pattern=r"^[A-Z][A-Z0-9_]*$")
    present: bool = True


class AllRule(StrictModel):
    rule: Literal["all"]
    rules: list["Rule"] = Field(..., min_length=1)


class AnyRule(StrictModel):
    rule: Literal["any"]
    rules: list["Rule"] = Field(..., min_length=1)


Rule = Annotated[
    Union[ImprovesRule, NoImprovementRule, CompareRule, AuditRule, AllRule, AnyRule],
    Field(discriminator="rule"),
]
AllRule.model_rebuild()
AnyRule.model_rebuild()


class VerdictRule(StrictModel):
    """When the evidence validates the hypothesis, and when it invalidates it."""

    validated: Rule
    invalidated: Rule
    futility_after: int | None = Field(
        None, gt=0, description="from this step on, `no_improvement` may be decided (and stop the run "
                                "early) before the horizon; without it, only at the planned last step")


class NextHypotheses(StrictModel):
    validated: list[str] = Field(default_factory=list)
    invalidated: list[str] = Field(default_factory=list)


class Criteria(StrictModel):
    """The researcher's written criteria, kept verbatim next to the rules that encode them."""

    validated: str
    invalidated: str


class HypothesisSpec(StrictModel):
    id: str = Field(..., pattern=r"^H[0-9]{2}$")
    title: str = Field(..., min_length=1)
    question: str = ""
    priority: int = Field(..., ge=0, description="0 is the most urgent")
    order: int = Field(..., ge=0)
    after: list[str] = Field(default_factory=list)
    method: list[str] = Field(default_factory=list)
    criteria: Criteria
    experiments: list[ExperimentRef] = Field(..., min_length=1)
    verdict: VerdictRule
    next: NextHypotheses = Field(default_factory=NextHypotheses)
    lab_rehearsal: bool = Field(False, description=(
        "a hypothesis about the lab itself (e.g. H90: the pipeline learns and decides): its "
        "rehearsal runs are its evidence, and its verdict is never evidence about GRPO"))


# --- Coordinator state ------------------------------------------------------------------

class HypothesisStatus(StrEnum):
    """A hypothesis' state: untested -> testing -> validated | invalidated | inconclusive.

    The values are the API's and the database's strings (a `str`: compares equal to them).
    """

    untested = "untested"
    testing = "testing"
    validated = "validated"
    invalidated = "invalidated"
    inconclusive = "inconclusive"


class ExperimentStatus(StrEnum):
    """An experiment's state (docs/coordinator.md draws the machine); `pending`: not created yet."""

    pending = "pending"
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    stalled = "stalled"


FINISHED: frozenset[ExperimentStatus] = frozenset(
    {ExperimentStatus.succeeded, ExperimentStatus.failed, ExperimentStatus.cancelled, ExperimentStatus.stalled})
RETRYABLE: frozenset[ExperimentStatus] = FINISHED - {ExperimentStatus.succeeded}
DECIDED: frozenset[HypothesisStatus] = frozenset(
    {HypothesisStatus.validated, HypothesisStatus.invalidated, HypothesisStatus.inconclusive})


class MetricEvent(StrictModel):
    """One training step's metrics, as the trainer reports them (docs/architecture.md, Metrics)."""

    experiment_id: str = Field(..., max_length=200)
    step: int = Field(..., ge=0, le=10_000_000)
    time: float = Field(..., ge=0)
    metrics: dict[str, float] = Field(..., max_length=256)
    rehearsal: bool = False

    @model_validator(mode="after")
    def _names_and_values(self) -> "MetricEvent":
        for name, value in self.metrics.items():
            if not _METRIC_NAME_RE.match(name):
                raise ValueError(f"metric name {name!r} is not allowed (letters, digits, _ . / : -)")
            if not math.isfinite(value):
                raise ValueError(f"metric {name!r} is {value}: only finite numbers are stored")
            if abs(value) > 1e15:
                raise ValueError(f"metric {name!r} is {value}: magnitude above 1e15 is not a metric")
        return self


class Evidence(StrictModel):
    """What one rule saw: the numbers a verdict was made from."""

    rule: str
    holds: bool | None  # None: not decidable yet (missing or insufficient data)
    detail: str
    numbers: dict[str, Any] = Field(default_factory=dict)


class Verdict(StrictModel):
    hypothesis_id: str
    status: HypothesisStatus
    sentence: str
    evidence: list[Evidence] = Field(default_factory=list)
    decided_at: float | None = None
    queued_next: list[str] = Field(default_factory=list)


class TrainerConfigReport(BaseModel):
    """What `hypolab train` resolved and built, sent to the coordinator before the first step."""

    model_config = ConfigDict(extra="allow")

    experiment_id: str = Field(..., max_length=200)
    rehearsal: bool = False
    spec: dict[str, Any]
    overrides: list[dict[str, Any]] = Field(default_factory=list)
    library: dict[str, str] = Field(default_factory=dict)
    trainer_config: dict[str, Any] = Field(default_factory=dict)


# --- Audits (filled by `hypolab audit`; the dashboard and the verdict rules read these) ---


class Finding(StrictModel):
    """One diagnosed condition, e.g. CONTEXT_HIDDEN_FROM_ATTENTION, with an example.

    Codes, severities, units and messages come from one catalogue (hypolab.audit.catalogue;
    docs/audit.md). `count` is in `unit` (None: a report from before units were recorded)."""

    code: str
    severity: Literal["info", "warning", "error"] = "warning"
    count: int = 1
    unit: Literal["rollouts", "turns", "tokens"] | None = None
    message: str = ""
    meaning: str = ""  # what this means for training, written for the researcher (the catalogue's paragraph)
    example: Any = None


class GroupStats(StrictModel):
    """Reward spread per group (the rollouts of one example), and how the groups were formed."""

    count: int = 0
    zero_variance_share: float = 0.0
    reward_std: dict[str, float] = Field(default_factory=dict)
    by: str = ""  # example_id | id | group | prompt
    note: str = ""


class TokenChange(StrictModel):
    op: str
    training_position: int
    template_position: int
    training: str
    template: str


class TemplateDiff(StrictModel):
    """The first difference of a training sequence from the chat template's rendering."""

    rollouts_differing: int
    rollout: int
    first_position: int
    training: str
    template: str
    training_length: int
    template_length: int
    changes: list[TokenChange] = Field(default_factory=list)


class Attention(StrictModel):
    """What the loss tokens could attend to, per role, in the sequences a trainer fed its model."""

    sequences: int = 0
    loss_tokens: int = 0
    hidden_loss_tokens: int = 0
    hidden_sequences: int = 0
    visible_share: dict[str, float | None] = Field(default_factory=dict)
    mean_visible: dict[str, float] = Field(default_factory=dict)
    mean_present: dict[str, float] = Field(default_factory=dict)


class Replay(StrictModel):
    """How attention was observed for a rollouts file: a bounded replay through the stack's trainer."""

    observed: bool
    note: str = ""
    trainer: str = ""
    rollouts: int = 0
    lines: list[int] = Field(default_factory=list)
    sequences: int = 0
    seconds: float = 0.0
    cpus: int = 0


class SkippedLine(StrictModel):
    line: int
    problem: str


class ExampleToken(StrictModel):
    text: str
    role: str
    trained: bool
    attended: bool | None = None


class ExampleRollout(StrictModel):
    tokens: list[ExampleToken] = Field(default_factory=list)


class AuditReport(StrictModel):
    """What an audit reports about training sequences.

    The coordinator stores reports as given; rules read `findings`, the dashboard shows
    `tokens_by_role`, `trained_tokens_by_role`, `turns`/`tool_calls` ({min, mean, max}),
    `context_length` ({p50, p90, p95, max}), `truncated_share` and `example_rollout.tokens`.
    """

    env: str
    stack: str
    rollouts: int = 0
    rehearsal: bool = False
    seed: int | None = Field(None, description="the scripted policy's seed (scripted audits): same seed, same report")
    findings: list[Finding] = Field(default_factory=list)
    tokens_by_role: dict[str, int] = Field(default_factory=dict)
    trained_tokens_by_role: dict[str, int] = Field(default_factory=dict)
    trained_share_by_role: dict[str, float] = Field(default_factory=dict)
    turns: dict[str, int | float] = Field(default_factory=dict)
    tool_calls: dict[str, int | float] = Field(default_factory=dict)
    context_length: dict[str, int | float] = Field(default_factory=dict)
    max_seq_len: int | None = None
    max_model_len: int | None = None
    truncated_share: float | None = None
    near_limit_share: float | None = None
    groups: GroupStats | None = None
    reward_columns: dict[str, float] = Field(default_factory=dict, description="mean of each per-function column")
    template_diff: TemplateDiff | None = None
    attention: Attention | None = None
    replay: Replay | None = None
    samples: int = 0
    lines: int = 0
    skipped: list[SkippedLine] = Field(default_factory=list)
    source: str = ""
    example_rollout: ExampleRollout | None = None
