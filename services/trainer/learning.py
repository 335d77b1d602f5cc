"""The learning rehearsal: a real small model on CPU, real weight sync, a live verdict.

A rehearsal (`hypolab train --rehearsal`) whose spec names SmolLM2-135M-Instruct runs
as a *learning* rehearsal instead of the tiny-model one (rehearsal.py):

- the model is the real SmolLM2-135M-Instruct, from the GGUF file on disk (smollm.py);
- the generation engine is `PolicyServer` (policy_server.py), the same weights on CPU;
- weight sync is the stack trainer's own code with an HTTP transport (weight_sync.py);
- the spec's own training settings are kept (config.resolve_run applies no rehearsal
  defaults to LEARNING_MODEL: the tiny rehearsal's batch 4 x 1 step would teach nothing);
  `--set` and flags still apply;
- `LiveVerdict` feeds each step's mean reward to the verdict engine's sequential test
  (the hypothesis' `improves` rule: its metric and minimum effect) and ends the training
  when it decides, as the coordinator's early stop does;
- after the last step the trainer's own sync runs once more and `sync_check` compares
  the server's logprobs of a fixed sequence with the trainer model's.

Its metrics stay labelled `rehearsal`: they are about the lab, never evidence for a
researcher's hypothesis.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from .config import LEARNING_MODEL, RunConfig

log = logging.getLogger("hypolab.trainer.learning")
DEFAULT_RULE = {"metric": "reward", "min_effect": 0.1}


def is_learning(run: RunConfig) -> bool:
    return run.rehearsal and run.spec.model == LEARNING_MODEL


#: the stack config's generation knobs in a learning rehearsal: a batch of samples is one
#: concurrent request each (the server batches them), generated after the previous step's
#: sync (on-policy; the tiny rehearsal's 120 s timeout is too short for a real model on 2 cores)
GENERATION = {"max_concurrent": 64, "num_batches_ahead": 0, "async_generation_timeout": 900.0}


def tune_args(args: Any) -> Any:
    """The stack's config with GENERATION applied where it has those fields."""
    for name, value in GENERATION.items():
        if hasattr(args, name):
            setattr(args, name, value)
    return args


def hypothesis_rule(spec_name: str, experiment_id: str = "", directory: Path | None = None) -> dict[str, Any]:
    """The `improves` rule (metric, min_effect) of the hypothesis running this experiment:
    by the coordinator's experiment id (`H90.short-sums`), else by the spec's name."""
    from ..paths import ROOT
    from ..specs import read_yaml

    directory = directory or ROOT / "configs" / "hypotheses"
    hid, _, eid = experiment_id.partition(".")
    for path in sorted(directory.glob("*.yaml")):
        data = read_yaml(path)
        names = {e.get("id"): e.get("spec") for e in data.get("experiments", [])}
        rule = (data.get("verdict") or {}).get("validated") or {}
        ours = (data.get("id") == hid and rule.get("experiment") == eid) or names.get(rule.get("experiment")) == spec_name
        if rule.get("rule") == "improves" and ours:
            return {"hypothesis": data.get("id"), "metric": rule.get("metric", "reward"),
                    "min_effect": float(rule.get("min_effect", DEFAULT_RULE["min_effect"]))}
    return dict(DEFAULT_RULE)


def live_verdict_callback(rule: dict[str, Any], groups: int | None, out: Path) -> Any:
    """A TrainerCallback: the verdict engine on the live curve; a decision stops training."""
    from transformers import TrainerCallback

    from ..verdicts.sequential import decide_improvement

    metric, min_effect = rule["metric"], rule["min_effect"]

    class LiveVerdict(TrainerCallback):
        def __init__(self) -> None:
            self.series: list[tuple[int, float]] = []
            self.decision: dict[str, Any] | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            value = (logs or {}).get(metric)
            if value is None or not math.isfinite(float(value)) or self.decision is not None:
                return
            self.series.append((state.global_step, float(value)))
            horizon = max(state.max_steps, state.global_step) if state.max_steps > 0 else None  # the planned steps
            decision = decide_improvement(self.series, min_effect=min_effect, group_size=groups, horizon=horizon)
            if decision.decision != "inconclusive":
                self.decision = {**rule, **decision.model_dump(mode="json")}
                log.warning("live verdict: %s %s at step %s: stopping", metric, decision.decision,
                            decision.decided_at_step)
                control.should_training_stop = True
            (out / "live_verdict.json").write_text(json.dumps(
                {"rule": rule, "series": self.series, "decision": self.decision}, indent=1))

    return LiveVerdict()


def fixed_sequence(env: Any, tokenizer: Any) -> list[int]:
    """A sequence the proof scores: the first prompt, rendered, and a fixed reply."""
    row = env.dataset[0] if getattr(env, "dataset", None) is not None else {"prompt": [{"role": "user", "content": "1 + 1"}]}
    prompt = list(row["prompt"])
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
    return list(ids) + tokenizer.encode("The sum is 14.", add_special_tokens=False) + [tokenizer.eos_token_id]


def trainer_logprobs(model: Any, ids: list[int], temperature: float = 1.0) -> list[float]:
    """log p(ids[t] | ids[:t]) under the trainer's model (PEFT adapters active), as the trainer computes it."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0, :-1].float() / temperature
    logps = torch.log_softmax(logits, dim=-1)
    return logps.gather(1, torch.tensor(ids[1:], device=logps.device).unsqueeze(1)).squeeze(1).cpu().tolist()


def server_logprobs(port: int, ids: list[int], temperature: float = 1.0) -> tuple[list[float], str]:
    """The policy server's logprobs of `ids` (its /v1/completions scoring) and its weights version."""
    import httpx

    body = {"model": "policy", "prompt": ids, "echo": True, "max_tokens": 0, "temperature": temperature}
    answer = httpx.post(f"http://127.0.0.1:{port}/v1/completions", json=body, timeout=120).json()
    return answer["choices"][0]["logprobs"]["token_logprobs"][1:], answer["system_fingerprint"]


def sync_now(trainer: Any) -> None:
    """The stack trainer's own weight sync (legacy `_move_model_to_vllm`, current `update_vllm`)."""
    for name in ("_move_model_to_vllm", "update_vllm"):
        method = getattr(trainer, name, None)
        if method is not None:
            return method()
    raise RuntimeError(f"{type(trainer).__name__} has no weight-sync method this rehearsal knows")


def sync_check(trainer: Any, server: Any, ids: list[int], before: list[float], temperature: float = 1.0) -> dict[str, Any]:
    """After a final sync: server vs trainer logprobs of `ids` (equal), and vs the start (changed)."""
    sync_now(trainer)
    served, version = server_logprobs(server.port, ids, temperature)
    trained = trainer_logprobs(trainer.model, ids, temperature)
    return {"weights_version": version, "tokens": len(served), "generated_with": list(server.generated_with),
            "max_abs_diff_server_vs_trainer": max(abs(a - b) for a, b in zip(served, trained)),
            "max_abs_change_since_start": max(abs(a - b) for a, b in zip(served, before)),
            "sum_logprob_start": sum(before), "sum_logprob_server": sum(served), "sum_logprob_trainer": sum(trained)}
