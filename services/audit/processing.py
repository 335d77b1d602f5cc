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
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from ..chat import vllm_messages
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


class SegmentCachedTokenizer:
    """A fast tokenizer that encodes text piece by piece between its added tokens, with a cache.

    Exact, not approximate: a Hugging Face fast tokenizer splits the text at its added
    tokens (`<|im_start|>`, `<|im_end|>`, `<tool_call>`, ...) before normalising and
    pre-tokenising, so each piece between them is encoded independently anyway. The
    legacy processing re-renders and re-encodes the growing conversation at every
    environment turn; with the cache each block is encoded once. Everything else is the
    wrapped tokenizer's (template, decode, special ids).
    """

    def __init__(self, tokenizer: Any, max_entries: int = 200_000) -> None:
        self._tok = tokenizer
        self._added = {t.content: i for i, t in tokenizer.added_tokens_decoder.items()}
        self._split = re.compile("(" + "|".join(re.escape(t) for t in sorted(self._added, key=len, reverse=True)) + ")")
        self._cache: dict[str, list[int]] = {}
        self._max = max_entries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tok, name)

    def __len__(self) -> int:
        return len(self._tok)

    def encode(self, text: str, add_special_tokens: bool = False, **kwargs: Any) -> list[int]:
        if kwargs:
            return self._tok.encode(text, add_special_tokens=add_special_tokens, **kwargs)
        ids: list[int] = []
        for piece in self._split.split(text):
            if not piece:
                continue
            special = self._added.get(piece)
            if special is not None:
                ids.append(special)
                continue
            cached = self._cache.get(piece)
            if cached is None:
                if len(self._cache) >= self._max:
                    self._cache.clear()
                cached = self._tok.encode(piece, add_special_tokens=False)
                self._cache[piece] = cached
            ids.extend(cached)
        return ids

    def apply_chat_template(self, conversation: Any, tools: Any = None, add_generation_prompt: bool = False,
                            tokenize: bool = True, **kwargs: Any) -> Any:
        text = self._tok.apply_chat_template(conversation, tools=tools, add_generation_prompt=add_generation_prompt,
                                             tokenize=False, **kwargs)
        return self.encode(text) if tokenize else text


def fast(tokenizer: Any) -> Any:
    """The segment-cached view of a fast tokenizer (the tokenizer itself if it is not fast)."""
    if isinstance(tokenizer, SegmentCachedTokenizer) or not getattr(tokenizer, "is_fast", False):
        return tokenizer
    wrapped = getattr(tokenizer, "_hypolab_segment_cache", None)
    if wrapped is None:  # one cache per tokenizer, shared by processing, reference and report
        wrapped = SegmentCachedTokenizer(tokenizer)
        tokenizer._hypolab_segment_cache = wrapped
    return wrapped


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


def _legacy_response(ids: list[int]) -> Any:
    """What 0.1.3's processing reads of a vLLM response: choices[0].logprobs.content[i].token/.logprob."""
    content = [SimpleNamespace(token=f"token_id:{i}", logprob=0.0) for i in ids]
    return SimpleNamespace(choices=[SimpleNamespace(logprobs=SimpleNamespace(content=content))])


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


def legacy_state(rollout: Rollout, tokenizer: Any) -> dict[str, Any]:
    """The state 0.1.3's processing reads of a rollout: one vLLM-shaped response per assistant turn."""
    return {"responses": [_legacy_response(ids) for ids in turn_ids(rollout, tokenizer)]}


def _legacy(rollouts: list[Rollout], tokenizer: Any, max_seq_len: int, mask_env_responses: bool,
            mask_truncated: bool) -> list[Sample]:
    from verifiers.envs.singleturn_env import SingleTurnEnv

    env = SingleTurnEnv.__new__(SingleTurnEnv)  # only the processing methods are used
    env.message_type = "chat"
    samples = []
    for index, r in enumerate(rollouts):
        out = env.process_env_results_vllm(
            [r.prompt], [r.completion], [legacy_state(r, tokenizer)], [r.reward or 0.0], tokenizer,
            max_seq_len=max_seq_len, mask_env_responses=mask_env_responses,
            mask_truncated_completions=mask_truncated)
        p, c, m = out.prompt_ids[0], out.completion_ids[0], out.completion_mask[0]
        samples.append(Sample(index, p, c, m, truncated=len(p) + len(c) >= max_seq_len > 0))
    return samples


def current_turn_tokens(rollout: Rollout, tokenizer: Any, max_seq_len: int) -> list[dict[str, Any]]:
    """0.1.9's tokens of each assistant turn (`parse_response_tokens`, as the environment records them)."""
    from verifiers.utils.response_utils import parse_response_tokens

    messages = rollout.prompt + rollout.completion
    assistants = [k for k, m in enumerate(messages) if m["role"] == "assistant" and k >= len(rollout.prompt)]
    out = []
    for turn, (k, ids) in enumerate(zip(assistants, turn_ids(rollout, tokenizer))):
        if rollout.prompt_ids_per_turn is not None:
            prompt_ids = rollout.prompt_ids_per_turn[turn]
        else:
            prompt_ids = tokenizer.apply_chat_template(vllm_messages(messages[:k]), tools=rollout.tools,
                                                       add_generation_prompt=True, tokenize=True)
        out.append(asyncio.run(parse_response_tokens(_chat_completion(ids, messages[k], list(prompt_ids)), "chat", max_seq_len)))
    return out


def _current(rollouts: list[Rollout], tokenizer: Any, max_seq_len: int, mask_truncated: bool) -> list[Sample]:
    samples = []
    for index, r in enumerate(rollouts):
        for tokens in current_turn_tokens(r, tokenizer, max_seq_len):
            mask = list(tokens["completion_mask"])
            if tokens["is_truncated"] and mask_truncated:
                mask = [0] * len(mask)
            samples.append(Sample(index, list(tokens["prompt_ids"]), list(tokens["completion_ids"]), mask,
                                  truncated=bool(tokens["is_truncated"])))
    return samples


def build_samples(stack: str, rollouts: list[Rollout], tokenizer: Any, max_seq_len: int,
                  mask_env_responses: bool = True, mask_truncated: bool = False) -> list[Sample]:
    """The training sequences the `stack`'s verifiers builds from these rollouts."""
    tokenizer = fast(tokenizer)
    if stack == "legacy":
        return _legacy(rollouts, tokenizer, max_seq_len, mask_env_responses, mask_truncated)
    if stack == "current":
        return _current(rollouts, tokenizer, max_seq_len, mask_truncated)
    raise ValueError(f"unknown stack {stack!r}")


def reference_ids(rollout: Rollout, tokenizer: Any) -> list[int]:
    """The chat template's rendering of the whole conversation, as vLLM saw it (tools included)."""
    ids = fast(tokenizer).apply_chat_template(vllm_messages(rollout.messages), tools=rollout.tools, tokenize=True)
    newline = tokenizer.encode("\n", add_special_tokens=False)
    if ids[-len(newline):] == newline:  # the model stops at <|im_end|>; the template's last \n is never sampled
        ids = ids[: -len(newline)]
    return list(ids)
