"""Wire formats shared by every part of hypolab (DESIGN.md, "Specs" and "Metrics").

Every boundary — YAML specs on disk, the coordinator's HTTP API, the trainer's
metric reports — speaks these pydantic models. Unknown keys are errors everywhere
(`extra="forbid"`), so a typo in a spec fails loudly instead of being ignored.
"""

from __future__ import annotations

from typing import Any, Literal

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
    beta: float = Field(0.001, ge=0, description="KL coefficient")
    loss_type: Literal["grpo", "bnpo", "dr_grpo"] = "grpo"
    scale_rewards: bool = True
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
    runner: Literal["local", "docker"]
    db: ComponentHealth
    vllm: ComponentHealth
