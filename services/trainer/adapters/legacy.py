"""Stack `legacy`: verifiers 0.1.3.post0 (`vf.grpo_defaults`, `GRPOConfig`, `vf.GRPOTrainer`).

LoRA goes to the trainer as `peft_config=LoraConfig(...)`; the researcher's script
passed `lora_config=`, which GRPOTrainer swallows in **kwargs and ignores (full
fine-tuning without anyone noticing).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ...contracts import ExperimentSpec
from . import spec_value as _get

#: spec path -> GRPOConfig field. Every TrainingSpec field is either here, in LORA, or
#: in NOT_A_CONFIG_FIELD (tests check this table against both classes).
FIELDS: dict[str, str] = {
    "training.batch_size": "per_device_train_batch_size",
    "training.num_generations": "num_generations",
    "training.gradient_accumulation_steps": "gradient_accumulation_steps",
    "training.learning_rate": "learning_rate",
    "training.num_epochs": "num_train_epochs",
    "training.max_steps": "max_steps",
    "training.beta": "beta",
    "training.loss_type": "loss_type",
    "training.scale_rewards": "scale_rewards",
    "training.max_seq_len": "max_seq_len",
    "training.max_tokens": "max_tokens",
    "training.temperature": "temperature",
    "training.top_p": "top_p",
    "training.top_k": "top_k",
    "training.mask_env_responses": "mask_env_responses",
    "training.mask_truncated_completions": "mask_truncated_completions",
}
LORA: dict[str, str] = {"r": "r", "alpha": "lora_alpha", "dropout": "lora_dropout", "target_modules": "target_modules"}
#: Not GRPOConfig fields: how many processes accelerate starts (the launcher's business).
NOT_A_CONFIG_FIELD = ("training.num_processes", "training.lora")


def _grpo_defaults(vf: Any, run_name: str, cpu: bool) -> Any:
    """`vf.grpo_defaults(run_name)`; on CPU its bf16=True would be refused by TrainingArguments
    before we can turn it off, so the GPU bf16 probe answers yes for this one call only.
    TrainingArguments also exports bf16 as ACCELERATE_MIXED_PRECISION, which the trainer's
    Accelerator reads later (bf16 autocast on CPU): that is put back as it was."""
    if not cpu:
        return vf.grpo_defaults(run_name=run_name)
    import os
    from unittest import mock

    before = os.environ.get("ACCELERATE_MIXED_PRECISION")
    with mock.patch("transformers.training_args.is_torch_bf16_gpu_available", return_value=True):
        defaults = vf.grpo_defaults(run_name=run_name)
    if before is None:
        os.environ.pop("ACCELERATE_MIXED_PRECISION", None)
    else:
        os.environ["ACCELERATE_MIXED_PRECISION"] = before
    return defaults


def build(spec: ExperimentSpec, output_dir: str, run_name: str, vllm_host: str, vllm_port: int,
          cpu: bool = False) -> tuple[Any, Any]:
    """(GRPOConfig, LoraConfig | None), starting from `vf.grpo_defaults` as the researcher did."""
    import verifiers as vf
    from peft import LoraConfig

    defaults = _grpo_defaults(vf, run_name, cpu)
    changes: dict[str, Any] = {}
    for path, name in FIELDS.items():
        value = _get(spec, path)
        if value is None:
            if path in ("training.beta", "training.loss_type", "training.scale_rewards"):
                raise ValueError(f"{path} is null, but the legacy trainer needs a value (grpo_defaults has none to fall back on)")
            if path == "training.max_steps":
                value = -1  # epochs decide
            elif path in ("training.num_epochs", "training.max_tokens", "training.top_k"):
                continue  # the stack's default: max_tokens = max_seq_len; top_k from the model
        if not hasattr(defaults, name):
            raise ValueError(f"{path}: GRPOConfig of verifiers 0.1.3.post0 has no field {name!r}")
        changes[name] = value
    changes.update(output_dir=output_dir, vllm_server_host=vllm_host, vllm_server_port=vllm_port,
                   report_to="none")  # metrics go to the coordinator (wandb only via --set)
    if cpu:  # the CPU rehearsal: no bf16 autocast, no gradient checkpointing, no checkpoints
        changes.update(bf16=False, gradient_checkpointing=False, save_strategy="no", use_cpu=True,
                       log_completions=False, max_concurrent=8, async_generation_timeout=120.0,
                       warmup_steps=0, dataloader_num_workers=0, max_data_workers=1)
    # Rebuild through __init__ so GRPOConfig's own checks and derived fields see the values
    # (generation_batch_size / steps_per_generation are derived from the batch settings).
    args = dataclasses.replace(defaults, **changes, generation_batch_size=None, steps_per_generation=None)
    lora = None
    if spec.training.lora is not None:
        l = spec.training.lora
        lora = LoraConfig(r=l.r, lora_alpha=l.alpha, lora_dropout=l.dropout,
                          target_modules=list(l.target_modules), task_type="CAUSAL_LM")
    return args, lora


def make_trainer(model: Any, env: Any, args: Any, tokenizer: Any, lora: Any, callbacks: list[Any]) -> Any:
    import verifiers as vf

    return vf.GRPOTrainer(model=model, env=env, args=args, processing_class=tokenizer,
                          peft_config=lora, callbacks=callbacks)
