"""Rollouts for the audit: read from a JSONL file, checked line by line.

One JSON object per line: `prompt` and `completion` as chat messages (OpenAI style,
assistant `tool_calls` with JSON-string arguments), optional `reward`, `group`,
`tools` (OpenAI tool schemas) and `finish_reasons` (one per assistant turn). A bad
line is reported with its number and skipped; the rest are audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALLOWED_ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Rollout:
    prompt: list[dict[str, Any]]
    completion: list[dict[str, Any]]
    reward: float | None = None
    group: str | None = None
    tools: list[dict[str, Any]] | None = None
    finish_reasons: list[str] = field(default_factory=list)
    line: int | None = None
    #: the sampled ids of each assistant turn, when the source knows them (scripted, live)
    sampled_ids: list[list[int]] | None = None
    #: the prompt ids vLLM rendered for each assistant turn (tools included)
    prompt_ids_per_turn: list[list[int]] | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.prompt + self.completion


@dataclass
class Skipped:
    line: int
    problem: str


def check_messages(messages: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where} must be a non-empty list of chat messages")
    out = []
    for k, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ValueError(f"{where}[{k}] is not an object")
        role = m.get("role")
        if role not in ALLOWED_ROLES:
            raise ValueError(f"{where}[{k}] has unknown role {role!r} (allowed: {', '.join(ALLOWED_ROLES)})")
        for c, call in enumerate(m.get("tool_calls") or []):
            fn = (call or {}).get("function") or {}
            args = fn.get("arguments")
            if not fn.get("name"):
                raise ValueError(f"{where}[{k}].tool_calls[{c}] has no function name")
            if isinstance(args, str):
                try:
                    json.loads(args)
                except json.JSONDecodeError:
                    raise ValueError(f"{where}[{k}].tool_calls[{c}] arguments are not JSON: {args[:60]!r}") from None
            elif not isinstance(args, dict):
                raise ValueError(f"{where}[{k}].tool_calls[{c}] arguments must be a JSON string or object")
        if m.get("content") is not None and not isinstance(m.get("content"), str):
            raise ValueError(f"{where}[{k}].content must be a string")
        out.append(m)
    return out


def parse_line(text: str, number: int) -> Rollout:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError("a line must be a JSON object with prompt and completion")
    prompt = check_messages(data.get("prompt"), "prompt")
    completion = check_messages(data.get("completion"), "completion")
    if not any(m["role"] == "assistant" for m in completion):
        raise ValueError("completion has no assistant message")
    reward = data.get("reward")
    if reward is not None and not isinstance(reward, (int, float)):
        raise ValueError("reward must be a number")
    group = data.get("group")
    return Rollout(prompt=prompt, completion=completion, reward=None if reward is None else float(reward),
                   group=None if group is None else str(group), tools=data.get("tools") or None,
                   finish_reasons=list(data.get("finish_reasons") or []), line=number)


def read_rollouts(path: Path) -> tuple[list[Rollout], list[Skipped]]:
    rollouts, skipped = [], []
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                rollouts.append(parse_line(text, number))
            except ValueError as exc:
                skipped.append(Skipped(number, str(exc)))
    return rollouts, skipped


def to_jsonable(rollout: Rollout) -> dict[str, Any]:
    """A rollout as one line of the file format (tool-call objects turned into dicts)."""
    def plain(m: dict[str, Any]) -> dict[str, Any]:
        m = dict(m)
        if m.get("tool_calls"):
            m["tool_calls"] = [c if isinstance(c, dict) else c.model_dump() for c in m["tool_calls"]]
        return m

    return {"prompt": [plain(m) for m in rollout.prompt], "completion": [plain(m) for m in rollout.completion],
            "reward": rollout.reward, "group": rollout.group, "tools": rollout.tools,
            "finish_reasons": rollout.finish_reasons}
