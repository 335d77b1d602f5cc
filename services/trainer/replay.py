"""Attention observed by replay: a rollouts file's own rollouts through the stack's real trainer.

A file of rollouts says what was sampled, not what the trainer's model was shown. To
observe that, a bounded sample of the file's rollouts is fed through one optimizer step
of the chosen stack's real trainer on the CPU rehearsal's tiny model, with the same
forward pre-hook as the in-training audit (audit_hook.AuditHook):

- legacy (verifiers 0.1.3.post0): `vf.GRPOTrainer`; its AsyncBatchGenerator runs the
  stack's own `process_env_results_vllm`, then `_prepare_inputs` (padding, the
  attention mask it builds) and `compute_loss`;
- current (0.1.9.post3): `RLTrainer`; its Orchestrator builds the microbatches from the
  environment's per-turn tokens (`parse_response_tokens`), then `training_step` and
  `compute_loss`.

Only generation is replaced: the environment's rollout call returns the file's rollouts
(as vLLM would have returned them: `processing.legacy_state` / `current_turn_tokens`)
instead of asking a server. Rollouts are replayed in pairs of one group (GRPO needs at
least two per group); the sample prefers the file's richest conversation shape (tool
responses, several turns) and the shortest rollouts of it, to keep the cost bounded.
No reference model (beta 0) and no LoRA: neither changes the masks the policy sees.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audit.findings import TrainerMasks
from ..audit.processing import current_turn_tokens, legacy_state
from ..audit.rollouts import Rollout
from ..audit.tokenizer import cache_dir
from ..contracts import ExperimentSpec, TrainingSpec
from .adapters import adapter_for, stop_generation_threads
from .audit_hook import AuditHook


#: the default bound: rollouts replayed per file (pairs of one group)
REPLAY_ROLLOUTS = 4
TRAINER = {"legacy": "verifiers 0.1.3.post0's GRPOTrainer (_prepare_inputs, compute_loss)",
           "current": "verifiers 0.1.9.post3's RLTrainer (Orchestrator, training_step, compute_loss)"}


@dataclass
class ReplayResult:
    masks: TrainerMasks
    rollouts: list[int]  # indices into the rollouts given
    sequences: int
    seconds: float
    trainer: str
    cpus: int


def _shape(r: Rollout) -> tuple[int, int]:
    """How much of a multi-turn conversation a rollout shows (more is better for the replay)."""
    roles = {m["role"] for m in r.completion if m["role"] != "assistant"}
    turns = sum(m["role"] == "assistant" for m in r.completion)
    return len(roles), min(turns, 2)


def _size(r: Rollout) -> int:
    return len(json.dumps(r.prompt + r.completion, default=str))


def select_pairs(rollouts: list[Rollout], limit: int = REPLAY_ROLLOUTS) -> list[tuple[int, int]]:
    """Pairs of rollout indices from one group each (at most limit // 2, one per group): the
    richest shape first, then the shortest. A group of one rollout pairs it with itself."""
    groups: dict[Any, list[int]] = {}
    for i, r in enumerate(rollouts):
        groups.setdefault(r.group if r.group is not None else f"#{i}", []).append(i)
    ranked = []
    for members in groups.values():
        members = sorted(members, key=lambda i: (tuple(-x for x in _shape(rollouts[i])), _size(rollouts[i])))
        pair = (members[0], members[1] if len(members) > 1 else members[0])
        best = max(_shape(rollouts[i]) for i in pair)
        ranked.append(((-best[0], -best[1], sum(_size(rollouts[i]) for i in pair)), pair))
    ranked.sort()
    return [pair for _, pair in ranked][: max(1, limit // 2)]  # fewer groups: fewer pairs, never one twice


def _spec(stack: str, model_dir: Path, pairs: int, max_seq_len: int, mask_env_responses: bool) -> ExperimentSpec:
    legacy = stack == "legacy"
    training = TrainingSpec(batch_size=1, num_generations=2, gradient_accumulation_steps=2 * pairs, max_steps=1,
                            num_processes=1, max_seq_len=max_seq_len, mask_env_responses=mask_env_responses,
                            lora=None, beta=0.0 if legacy else None, loss_type="grpo" if legacy else None,
                            scale_rewards=True if legacy else None)
    return ExperimentSpec(name="replay", env="replay", model=str(model_dir), stack=stack, training=training)


def _dataset(rollouts: list[Rollout], pairs: list[tuple[int, int]]) -> Any:
    from datasets import Dataset

    rows = []
    for j, (a, _) in enumerate(pairs):
        r = rollouts[a]
        rows.append({"prompt": [{"role": m["role"], "content": m.get("content") or ""} for m in r.prompt],
                     "answer": "" if r.answer is None else str(r.answer), "task": "default",
                     "info": {"replay": j}, "example_id": j})
    return Dataset.from_list(rows)


class _Handout:
    """Hands out each pair's rollouts in turn, for the rows the trainer asks to be generated."""

    def __init__(self, rollouts: list[Rollout], pairs: list[tuple[int, int]]) -> None:
        self.rollouts, self.pairs = rollouts, pairs
        self.next = [0] * len(pairs)

    def take(self, info: Any) -> Rollout:
        if isinstance(info, str):
            info = json.loads(info)
        j = int(info["replay"])
        pick = self.pairs[j][self.next[j] % 2]
        self.next[j] += 1
        return self.rollouts[pick]


def _legacy_env(rollouts: list[Rollout], pairs: list[tuple[int, int]], tokenizer: Any) -> Any:
    import verifiers as vf
    from verifiers.types import GenerateOutputs

    env = vf.SingleTurnEnv(dataset=_dataset(rollouts, pairs))
    handout = _Handout(rollouts, pairs)
    states = {id(rollouts[i]): legacy_state(rollouts[i], tokenizer) for p in pairs for i in p}

    async def a_generate(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        chosen = [handout.take(info) for info in inputs["info"]]
        return GenerateOutputs(prompt=[r.prompt for r in chosen], completion=[r.completion for r in chosen],
                               answer=list(inputs["answer"]), state=[states[id(r)] for r in chosen],
                               info=list(inputs["info"]), task=list(inputs["task"]),
                               reward=[r.reward or 0.0 for r in chosen], metrics={})

    env.a_generate = a_generate  # generation replaced; everything after it is the stack's own
    return env


def _printable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(m, content=m.get("content") or "") for m in messages]


def _current_env(rollouts: list[Rollout], pairs: list[tuple[int, int]], tokenizer: Any, max_seq_len: int) -> Any:
    import verifiers as vf

    env = vf.SingleTurnEnv(dataset=_dataset(rollouts, pairs))
    handout = _Handout(rollouts, pairs)
    # computed here, outside the trainer's event loop, so a rollout the stack refuses fails now
    tokens_of = {id(rollouts[i]): current_turn_tokens(rollouts[i], tokenizer, max_seq_len) for p in pairs for i in p}

    async def generate(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        rows = inputs.to_list() if hasattr(inputs, "to_list") else list(inputs)
        chosen = [handout.take(row["info"]) for row in rows]
        rewards = [r.reward or 0.0 for r in chosen]
        mean: dict[int, list[float]] = {}
        for row, reward in zip(rows, rewards):
            mean.setdefault(row["example_id"], []).append(reward)
        states = []
        for row, r, reward in zip(rows, chosen, rewards):
            advantage = reward - sum(mean[row["example_id"]]) / len(mean[row["example_id"]])  # as Rubric.score_group
            steps = [{"tokens": tokens, "advantage": advantage} for tokens in tokens_of[id(r)]]
            states.append({"trajectory": steps, "timing": {}, "error": None})
        # prompt and completion are only logged (RLTrainer.log prints them: no None content there)
        return {"prompt": [_printable(r.prompt) for r in chosen], "completion": [_printable(r.completion) for r in chosen],
                "state": states, "reward": rewards, "metrics": {}}

    env.generate = generate  # generation replaced; the Orchestrator and RLTrainer are the stack's own
    return env


def replay(stack: str, rollouts: list[Rollout], work_dir: Path, limit: int = REPLAY_ROLLOUTS,
           max_seq_len: int = 4096, mask_env_responses: bool = True) -> ReplayResult:
    """One optimizer step of `stack`'s trainer on a bounded sample of `rollouts`; what its model was fed.

    What the trainer and its libraries print goes to stderr: stdout is the audit's."""
    with contextlib.redirect_stdout(sys.stderr):
        return _replay(stack, rollouts, work_dir, limit, max_seq_len, mask_env_responses)


def _replay(stack: str, rollouts: list[Rollout], work_dir: Path, limit: int, max_seq_len: int,
            mask_env_responses: bool) -> ReplayResult:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .rehearsal import install_no_sync, tiny_model

    adapter = adapter_for(stack)  # refuses a stack whose verifiers is not installed here
    start = time.perf_counter()
    install_no_sync()
    model_dir = tiny_model(cache_dir().parent / "tiny-qwen2")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pairs = select_pairs(rollouts, limit)
    spec = _spec(stack, model_dir, len(pairs), max_seq_len, mask_env_responses)
    out = Path(work_dir) / f"replay-{stack}"
    args, lora = adapter.build(spec, output_dir=str(out), run_name="replay", vllm_host="127.0.0.1",
                               vllm_port=9, cpu=True)
    args.disable_tqdm = True
    if stack == "legacy":  # grpo_defaults' 512 would drop long prompts from the replay's dataset
        args.max_prompt_length = max_seq_len
    else:  # a refused generation surfaces as the orchestrator's timeout: keep it short
        args.generation_timeout = 120.0
    env = (_legacy_env(rollouts, pairs, tokenizer) if stack == "legacy"
           else _current_env(rollouts, pairs, tokenizer, max_seq_len))
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype="auto")
    hook = AuditHook(stack, tokenizer, steps=1, max_sequences=256)
    trainer = adapter.make_trainer(model, env, args, tokenizer, lora, [])
    hook.install(trainer)
    try:
        trainer.train()
    finally:
        stop_generation_threads(trainer)
    hook.masks.steps = 1
    chosen = sorted({i for pair in pairs for i in pair})
    return ReplayResult(masks=hook.masks, rollouts=chosen, sequences=len(hook.masks.sequences),
                        seconds=round(time.perf_counter() - start, 2), trainer=TRAINER[stack],
                        cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0)

