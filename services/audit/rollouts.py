"""Rollouts for the audit: read from a JSONL file as it is, checked line by line.

Two shapes of line are read, and anything between them:
- verifiers' own `vf-eval` output (`results.jsonl`, `metadata.json` beside it), in the
  formats its releases wrote: tool calls as objects or as JSON strings, tool messages
  with or without `tool_call_id`, the tools offered in `info.oai_tools` (`info` itself
  an object or a JSON string), `id` or `example_id`, one column per reward function;
- hypolab's own: `prompt`, `completion`, optional `reward`, `group`, `tools` and
  `finish_reasons` (one per assistant turn).
A bad line is reported with its number and reason (`Skipped`) and the rest is audited;
a file with no auditable line at all is a `NoAuditableLines` error.

Groups are the rollouts of one example. A file's `example_id` / `id` / `group` says
which, unless it contradicts the prompts (vf-eval releases that repeated the dataset
numbered rows by position, so one id holds several questions): then rollouts are
grouped by prompt and answer, and `Grouping.note` says why.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sequences import ROLES

#: numeric columns that are neither rewards nor metrics of the rollout
NOT_REWARD_COLUMNS = ("id", "example_id", "reward", "generation_ms", "scoring_ms", "total_ms")
FORMATS = ("vf-eval results.jsonl (prompt, completion, reward, id/example_id, info.oai_tools) "
           "or hypolab JSONL (prompt, completion, reward, group, tools)")


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
    answer: Any = None
    #: the file's other numeric columns: one per reward function, and metrics (num_turns, ...)
    columns: dict[str, float] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.prompt + self.completion


@dataclass
class Skipped:
    line: int
    problem: str


@dataclass
class Grouping:
    """How the rollouts were put into groups (one group: the rollouts of one example)."""

    by: str  # example_id | id | group | prompt
    groups: int
    note: str = ""


@dataclass
class RolloutsFile:
    """One rollouts file, read: where it is, its metadata, its rollouts and skipped lines."""

    path: Path
    metadata_path: Path | None
    metadata: dict[str, Any]
    rollouts: list[Rollout]
    skipped: list[Skipped]
    lines: int
    grouping: Grouping

    @property
    def env(self) -> str | None:
        env = self.metadata.get("env") or self.metadata.get("env_id")
        return str(env) if env else None


class NoAuditableLines(ValueError):
    """Nothing in the file can be audited (one line naming the file, the formats, the first problem)."""


def locate(path: Path) -> tuple[Path, Path | None]:
    """(results file, metadata file or None) for a results.jsonl, `<name>.results.jsonl` or a run directory."""
    path = Path(path)
    if path.is_dir():
        candidates = [path / "results.jsonl"] if (path / "results.jsonl").is_file() else sorted(path.glob("*.results.jsonl"))
        if len(candidates) != 1:
            found = ", ".join(p.name for p in candidates) or "none"
            raise FileNotFoundError(f"{path} is a directory without exactly one results.jsonl (found: {found})")
        path = candidates[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    name = path.name
    if name == "results.jsonl":
        meta = path.with_name("metadata.json")
    elif name.endswith(".results.jsonl"):
        meta = path.with_name(name[: -len(".results.jsonl")] + ".metadata.json")
    else:
        meta = path.with_suffix(".metadata.json")
    return path, (meta if meta.is_file() else None)


def _tool_call(call: Any, where: str) -> dict[str, Any]:
    if isinstance(call, str):  # releases that wrote each call as a JSON string
        try:
            call = json.loads(call)
        except json.JSONDecodeError:
            raise ValueError(f"{where} is a string that is not JSON: {call[:60]!r}") from None
    if not isinstance(call, dict):
        raise ValueError(f"{where} is not an object")
    fn = call.get("function") or {}
    if not isinstance(fn, dict) or not fn.get("name"):
        raise ValueError(f"{where} has no function name")
    args = fn.get("arguments")
    if isinstance(args, str):
        try:
            json.loads(args)
        except json.JSONDecodeError:
            raise ValueError(f"{where} arguments are not JSON: {args[:60]!r}") from None
    elif isinstance(args, dict):
        args = json.dumps(args, ensure_ascii=False)
    else:
        raise ValueError(f"{where} arguments must be a JSON string or object")
    out = {"id": call.get("id"), "type": call.get("type") or "function",
           "function": {"name": fn["name"], "arguments": args}}
    return out


def check_messages(messages: Any, where: str) -> list[dict[str, Any]]:
    """Chat messages in the form the processing reads (tool calls as objects, arguments as JSON text)."""
    if isinstance(messages, str):
        raise ValueError(f"{where} is text, not chat messages (completion-format environments are not audited)")
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where} must be a non-empty list of chat messages")
    out = []
    for k, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ValueError(f"{where}[{k}] is not an object")
        role = m.get("role")
        if role not in ROLES:
            raise ValueError(f"{where}[{k}] has unknown role {role!r} (allowed: {', '.join(ROLES)})")
        if m.get("content") is not None and not isinstance(m.get("content"), str):
            raise ValueError(f"{where}[{k}].content must be a string")
        msg: dict[str, Any] = {"role": role, "content": m.get("content")}
        calls = m.get("tool_calls") or []
        if calls:
            if role != "assistant":
                raise ValueError(f"{where}[{k}] is a {role} message with tool_calls")
            msg["tool_calls"] = [_tool_call(c, f"{where}[{k}].tool_calls[{c_i}]") for c_i, c in enumerate(calls)]
        if role == "tool" and isinstance(m.get("tool_call_id"), str):
            msg["tool_call_id"] = m["tool_call_id"]
        out.append(msg)
    return out


def _check_conversation(prompt: list[dict[str, Any]], completion: list[dict[str, Any]]) -> None:
    """The completion starts after the prompt; each tool message answers a call made before it."""
    if completion[: len(prompt)] == prompt:
        raise ValueError("completion repeats the prompt: it must hold only the messages after it")
    if completion[0]["role"] != "assistant":
        raise ValueError(f"completion does not start after the prompt with the model's turn (starts with {completion[0]['role']!r})")
    if not any(m["role"] == "assistant" for m in completion):
        raise ValueError("completion has no assistant message")
    open_calls: list[dict[str, Any]] = []
    answered = 0
    for k, m in enumerate(prompt + completion):
        if m["role"] == "assistant":
            open_calls, answered = list(m.get("tool_calls") or []), 0
        elif m["role"] == "tool":
            where = f"completion[{k - len(prompt)}]" if k >= len(prompt) else f"prompt[{k}]"
            if answered >= len(open_calls):
                raise ValueError(f"{where} is a tool message without a preceding tool call")
            ids = {c.get("id") for c in open_calls if c.get("id")}
            if m.get("tool_call_id") and ids and m["tool_call_id"] not in ids:
                raise ValueError(f"{where} answers tool call {m['tool_call_id']!r}, which the assistant turn before it did not make")
            answered += 1
        else:
            open_calls, answered = [], 0


def _tools(data: dict[str, Any]) -> list[dict[str, Any]] | None:
    info = data.get("info")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except json.JSONDecodeError:
            info = None
    tools = data.get("tools") or (info.get("oai_tools") if isinstance(info, dict) else None)
    if tools is None:
        return None
    if not isinstance(tools, list) or not all(isinstance(t, dict) and (t.get("function") or {}).get("name") for t in tools):
        raise ValueError("the tools offered (tools / info.oai_tools) must be a list of OpenAI function schemas")
    return tools or None


def _group_id(data: dict[str, Any]) -> tuple[str, str] | None:
    for key in ("example_id", "id", "group"):
        if data.get(key) is not None:
            return key, str(data[key])
    return None


def parse_line(text: str, number: int) -> tuple[Rollout, tuple[str, str] | None]:
    """One line -> (Rollout, (the id column used, its value) or None); ValueError says what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict) or "prompt" not in data or "completion" not in data:
        raise ValueError("not a rollout: a line must be a JSON object with prompt and completion")
    prompt = check_messages(data.get("prompt"), "prompt")
    completion = check_messages(data.get("completion"), "completion")
    _check_conversation(prompt, completion)
    reward = data.get("reward")
    if reward is not None and (not isinstance(reward, (int, float)) or isinstance(reward, bool)):
        raise ValueError("reward must be a number")
    columns = {k: float(v) for k, v in data.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NOT_REWARD_COLUMNS}
    reasons = data.get("finish_reasons") or []
    rollout = Rollout(prompt=prompt, completion=completion, reward=None if reward is None else float(reward),
                      tools=_tools(data), finish_reasons=[str(r) for r in reasons] if isinstance(reasons, list) else [],
                      line=number, answer=data.get("answer"), columns=columns)
    return rollout, _group_id(data)


def _prompt_key(r: Rollout) -> str:
    return json.dumps([r.prompt, r.answer], sort_keys=True, default=str)


def assign_groups(rollouts: list[Rollout], ids: list[tuple[str, str] | None]) -> Grouping:
    """Set each rollout's `group`: the file's ids where they can be trusted, else its prompt."""
    by_prompt: dict[str, str] = {}
    for r in rollouts:
        by_prompt.setdefault(_prompt_key(r), f"p{len(by_prompt)}")
    columns = {i[0] for i in ids if i is not None}
    note = ""
    if ids and all(i is not None for i in ids) and len(columns) == 1:
        column = columns.pop()
        prompts_of: dict[str, set[str]] = defaultdict(set)
        lines_of: dict[str, list[int]] = defaultdict(list)
        for r, (_, value) in zip(rollouts, ids):  # type: ignore[misc]
            prompts_of[value].add(_prompt_key(r))
            lines_of[value].append(r.line or 0)
        mixed = next((v for v, keys in prompts_of.items() if len(keys) > 1), None)
        if mixed is None:
            for r, (_, value) in zip(rollouts, ids):  # type: ignore[misc]
                r.group = value
            return Grouping(by=column, groups=len(prompts_of))
        lines = ", ".join(str(n) for n in lines_of[mixed][:6])
        note = (f"`{column}` cannot be trusted to name the example: rows with {column} {mixed} (lines {lines}) "
                f"have {len(prompts_of[mixed])} different prompts; grouped by prompt and answer instead")
    elif ids and any(i is not None for i in ids):
        note = "only some lines carry an id: grouped by prompt and answer"
    else:
        note = "the file carries no example ids: grouped by prompt and answer"
    for r in rollouts:
        r.group = by_prompt[_prompt_key(r)]
    return Grouping(by="prompt", groups=len(by_prompt), note=note)


def _read_lines(path: Path) -> tuple[list[Rollout], list[Skipped], list[tuple[str, str] | None], int]:
    rollouts, skipped, ids = [], [], []
    lines = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            lines += 1
            try:
                rollout, group_id = parse_line(text, number)
            except ValueError as exc:
                skipped.append(Skipped(number, str(exc)))
                continue
            rollouts.append(rollout)
            ids.append(group_id)
    return rollouts, skipped, ids, lines


def read_rollouts(path: Path) -> tuple[list[Rollout], list[Skipped]]:
    """The auditable rollouts of a JSONL file (grouped) and the lines skipped, with why."""
    rollouts, skipped, ids, _ = _read_lines(path)
    if rollouts:
        assign_groups(rollouts, ids)
    return rollouts, skipped


def read_file(path: Path) -> RolloutsFile:
    """A results file (or its run directory) with its metadata; NoAuditableLines when nothing can be audited."""
    results, meta_path = locate(path)
    metadata: dict[str, Any] = {}
    if meta_path is not None:
        try:
            loaded = json.loads(meta_path.read_text(encoding="utf-8"))
            metadata = loaded if isinstance(loaded, dict) else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            metadata = {}
    rollouts, skipped, ids, lines = _read_lines(results)
    if not rollouts:
        first = f"line {skipped[0].line}: {skipped[0].problem}" if skipped else "the file is empty"
        raise NoAuditableLines(f"{results}: no auditable line (expected {FORMATS}); {first}")
    grouping = assign_groups(rollouts, ids)
    return RolloutsFile(path=results, metadata_path=meta_path, metadata=metadata, rollouts=rollouts,
                        skipped=skipped, lines=lines, grouping=grouping)


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
