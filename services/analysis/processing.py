"""Rollouts -> training sequences, by the installed verifiers version's own processing code.

- `legacy` (0.1.3.post0): `Environment.process_env_results_vllm`, which re-tokenises
  environment turns with incremental chat-template prefixes and splices in the sampled
  ids of each assistant turn (one sequence per rollout).
- `current` (0.1.9.post3): one sample per assistant turn, built by
  `verifiers.utils.response_utils.parse_response_tokens` from vLLM's own prompt and
  sampled token ids (`return_token_ids`).

Where a rollout carries no token ids (a JSONL file), each response is rebuilt as vLLM
would have returned it: the prompt rendered with the chat template and tools, the
assistant text tokenised and ended by `<|im_end|>`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from ..trainer.scripted_policy import vllm_messages
from .rollouts import Rollout


@dataclass
class Sample:
    """One training sequence: prompt ids, completion ids, and the loss mask over the completion."""

    rollout: int
    prompt_ids: list[int]
    completion_ids: list[int]
    loss_mask: list[int]
    truncated: bool = False

    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + self.completion_ids


def sampled_text(message: dict[str, Any]) -> str:
    """The text the model generated for an assistant message (hermes tool-call blocks)."""
    content = message.get("content") or ""
    text = content
    for call in message.get("tool_calls") or []:
        fn = call.get("function", call) if isinstance(call, dict) else call.function.model_dump()
        args = fn.get("arguments")
        if isinstance(args, str):
            args = json.loads(args)
        text += "\n<tool_call>\n" + json.dumps({"name": fn.get("name"), "arguments": args}, ensure_ascii=False) + "\n</tool_call>"
    return text if content else text.lstrip("\n")


def turn_ids(rollout: Rollout, tokenizer: Any) -> list[list[int]]:
    """Sampled ids of each assistant turn (given, or as vLLM would have returned them)."""
    if rollout.sampled_ids is not None:
        return rollout.sampled_ids
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    out = []
    for k, m in enumerate(a for a in rollout.completion if a["role"] == "assistant"):
        ids = tokenizer.encode(sampled_text(m), add_special_tokens=False)
        reason = rollout.finish_reasons[k] if k < len(rollout.finish_reasons) else "stop"
        out.append(ids if reason == "length" else ids + [eos])
    return out


def _chat_completion(ids: list[int], message: dict[str, Any], prompt_ids: list[int] | None) -> Any:
    from openai.types.chat import ChatCompletion

    data = {
        "id": "audit", "object": "chat.completion", "created": 0, "model": "audit",
        "choices": [{
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": message.get("content") or ""},
            "logprobs": {"content": [{"token": f"token_id:{i}", "logprob": 0.0, "bytes": None, "top_logprobs": []} for i in ids]},
        }],
    }
    response = ChatCompletion.model_validate(data)
    if prompt_ids is not None:  # vLLM's return_token_ids extension fields
        setattr(response, "prompt_token_ids", prompt_ids)
        setattr(response.choices[0], "token_ids", ids)
    return response


def _legacy(rollouts: list[Rollout], tokenizer: Any, max_seq_len: int, mask_env_responses: bool,
            mask_truncated: bool) -> list[Sample]:
    from verifiers.envs.singleturn_env import SingleTurnEnv

    env = SingleTurnEnv.__new__(SingleTurnEnv)  # only the processing methods are used
    env.message_type = "chat"
    samples = []
    for index, r in enumerate(rollouts):
        responses = [_chat_completion(ids, m, None)
                     for ids, m in zip(turn_ids(r, tokenizer), (a for a in r.completion if a["role"] == "assistant"))]
        out = env.process_env_results_vllm(
            [r.prompt], [r.completion], [{"responses": responses}], [r.reward or 0.0], tokenizer,
            max_seq_len=max_seq_len, mask_env_responses=mask_env_responses,
            mask_truncated_completions=mask_truncated)
        p, c, m = out.prompt_ids[0], out.completion_ids[0], out.completion_mask[0]
        samples.append(Sample(index, p, c, m, truncated=len(p) + len(c) >= max_seq_len > 0))
    return samples


def _current(rollouts: list[Rollout], tokenizer: Any, max_seq_len: int, mask_truncated: bool) -> list[Sample]:
    from verifiers.utils.response_utils import parse_response_tokens

    samples = []
    for index, r in enumerate(rollouts):
        messages = r.prompt + r.completion
        assistants = [k for k, m in enumerate(messages) if m["role"] == "assistant" and k >= len(r.prompt)]
        for turn, (k, ids) in enumerate(zip(assistants, turn_ids(r, tokenizer))):
            if r.prompt_ids_per_turn is not None:
                prompt_ids = r.prompt_ids_per_turn[turn]
            else:
                prompt_ids = tokenizer.apply_chat_template(vllm_messages(messages[:k]), tools=r.tools,
                                                           add_generation_prompt=True, tokenize=True)
            tokens = asyncio.run(parse_response_tokens(_chat_completion(ids, messages[k], list(prompt_ids)), "chat", max_seq_len))
            mask = list(tokens["completion_mask"])
            if tokens["is_truncated"] and mask_truncated:
                mask = [0] * len(mask)
            samples.append(Sample(index, list(tokens["prompt_ids"]), list(tokens["completion_ids"]), mask,
                                  truncated=bool(tokens["is_truncated"])))
    return samples


def build_samples(stack: str, rollouts: list[Rollout], tokenizer: Any, max_seq_len: int,
                  mask_env_responses: bool = True, mask_truncated: bool = False) -> list[Sample]:
    """The training sequences the `stack`'s verifiers builds from these rollouts."""
    if stack == "legacy":
        return _legacy(rollouts, tokenizer, max_seq_len, mask_env_responses, mask_truncated)
    if stack == "current":
        return _current(rollouts, tokenizer, max_seq_len, mask_truncated)
    raise ValueError(f"unknown stack {stack!r}")


def reference_ids(rollout: Rollout, tokenizer: Any) -> list[int]:
    """The chat template's rendering of the whole conversation, as vLLM saw it (tools included)."""
    ids = tokenizer.apply_chat_template(vllm_messages(rollout.messages), tools=rollout.tools, tokenize=True)
    newline = tokenizer.encode("\n", add_special_tokens=False)
    if ids[-len(newline):] == newline:  # the model stops at <|im_end|>; the template's last \n is never sampled
        ids = ids[: -len(newline)]
    return list(ids)
