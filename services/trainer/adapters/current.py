"""Stack `current`: verifiers 0.1.9.post3 (`RLConfig` / `RLTrainer`).

RLConfig counts rollouts, not per-device batches: `batch_size` is the rollouts per
optimizer step (our per-device batch x gradient accumulation x processes),
`micro_batch_size` the per-device batch, `rollouts_per_example` the group size; it
forces gradient accumulation to 1. RLTrainer has no KL term, a single loss and no
reward-scaling switch, so a spec for this stack sets `beta`, `loss_type` and
`scale_rewards` to null; any value there is refused rather than dropped. RLConfig
builds its LoraConfig without `lora_dropout`; we pass a complete `lora_config`.
"""

from __future__ import annotations

from typing import Any

from ...contracts import ExperimentSpec
from . import spec_value as _get

FIELDS: dict[str, str] = {
    "training.num_generations": "rollouts_per_example",
    "training.batch_size": "micro_batch_size",
    "training.learning_rate": "learning_rate",
    "training.max_steps": "max_steps",
    "training.max_seq_len": "max_seq_len",
    "training.max_tokens": "max_tokens",
    "training.temperature": "temperature",
    "training.top_p": "top_p",
    "training.top_k": "top_k",
    "training.mask_env_responses": "mask_env_responses",
    "training.mask_truncated_completions": "mask_truncated_completions",
}
#: folded into RLConfig.batch_size (= batch_size x gradient_accumulation_steps x num_processes)
FOLDED = ("training.gradient_accumulation_steps", "training.num_processes", "training.lora")
#: TrainingSpec fields RLTrainer has no counterpart for: they must be null (None) here.
UNSUPPORTED: dict[str, str] = {
    "training.beta": "RLTrainer has no KL term (set training.beta: null)",
    "training.loss_type": "RLTrainer has one loss (set training.loss_type: null)",
    "training.scale_rewards": "RLTrainer has no reward-scaling switch (set training.scale_rewards: null)",
    "training.num_epochs": "RLConfig counts max_steps only (set training.num_epochs: null)",
}


def check(spec: ExperimentSpec) -> None:
    """Refuse settings verifiers 0.1.9.post3 does not have (no GPU or import needed)."""
    for path, why in UNSUPPORTED.items():
        if _get(spec, path) is not None:
            raise ValueError(f"{path}={_get(spec, path)!r} on the current stack: {why}")
    if spec.training.max_steps is None:
        raise ValueError("training.max_steps is required on the current stack")


def kwargs_for(spec: ExperimentSpec) -> dict[str, Any]:
    """The RLConfig keyword arguments for `spec` (plain values; tests compare them)."""
    check(spec)
    t = spec.training
    out = {name: _get(spec, path) for path, name in FIELDS.items()}
    out["batch_size"] = t.batch_size * t.gradient_accumulation_steps * t.num_processes
    if t.lora is None:
        out["use_lora"] = False
    else:
        out.update(use_lora=True, lora_rank=t.lora.r, lora_alpha=t.lora.alpha, lora_dropout=t.lora.dropout,
                   lora_target_modules=list(t.lora.target_modules))
    return out


def build(spec: ExperimentSpec, output_dir: str, run_name: str, vllm_host: str, vllm_port: int,
          cpu: bool = False) -> tuple[Any, Any]:
    """(RLConfig, LoraConfig | None)."""
    from peft import LoraConfig
    from verifiers.rl.trainer import RLConfig

    kwargs = kwargs_for(spec)
    lora = None
    if spec.training.lora is not None:
        l = spec.training.lora
        lora = LoraConfig(r=l.r, lora_alpha=l.alpha, lora_dropout=l.dropout,
                          target_modules=list(l.target_modules), task_type="CAUSAL_LM")
        kwargs["lora_config"] = lora
    kwargs.update(output_dir=output_dir, run_name=run_name, vllm_server_host=vllm_host,
                  vllm_server_port=vllm_port, report_to="none")
    if cpu:
        kwargs.update(use_cpu=True, bf16=False, gradient_checkpointing=False, save_strategy="no",
                      use_liger=False, max_concurrent=8)
    return RLConfig(**kwargs), lora


def make_trainer(model: Any, env: Any, args: Any, tokenizer: Any, lora: Any, callbacks: list[Any]) -> Any:
    from verifiers.rl.trainer import RLTrainer

    return RLTrainer(model=model, env=env, args=args, processing_class=tokenizer, callbacks=callbacks)
