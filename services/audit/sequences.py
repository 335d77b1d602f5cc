"""Reading Qwen2.5 training sequences: who wrote each token, and what the template expected.

A training sequence is a list of token ids in Qwen's ChatML format. `label_roles`
walks it block by block (`<|im_start|>role ... <|im_end|>\\n`) and names each token's
role: `system`, `user`, `assistant`, or `tool` (a user block holding
`<tool_response>`s, which is how Qwen2.5's template renders tool messages). Text after
an `<|im_end|>` that does not open a new block is a turn whose header is missing:
in a verifiers rollout that is the model's next sampled turn, so it is labelled
`assistant` and counted as a missing header. An `<|im_end|>` not followed by `\\n` is
counted as a dropped newline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class ChatIds:
    """The token ids the labeller looks for, taken from the tokenizer itself."""

    im_start: int
    im_end: int
    newline: int
    role_of: dict[tuple[int, ...], str]  # a role name's tokens (one in Qwen2.5; SmolLM2's "assistant" is two)
    tool_response: tuple[int, ...]

    @classmethod
    def of(cls, tokenizer: Any) -> "ChatIds":
        def one(text: str) -> int:
            ids = tokenizer.encode(text, add_special_tokens=False)
            if len(ids) != 1:
                raise ValueError(f"{text!r} is not one token for this tokenizer: {ids}")
            return ids[0]

        return cls(
            im_start=one("<|im_start|>"), im_end=one("<|im_end|>"), newline=one("\n"),
            role_of={tuple(tokenizer.encode(r, add_special_tokens=False)): r for r in ROLES},
            # "<tool_response>\n" ends in ">\n", so match the tokens before the last one
            tool_response=tuple(tokenizer.encode("<tool_response>", add_special_tokens=False)[:-1]),
        )

    def role_at(self, ids: list[int], start: int) -> tuple[str, int]:
        """The role named at `start` (after an <|im_start|>) and its length in tokens;
        ("user", 1) when no role name is there, as before."""
        for name, role in self.role_of.items():
            if tuple(ids[start: start + len(name)]) == name:
                return role, len(name)
        return "user", 1


@dataclass
class Labelled:
    roles: list[str]
    missing_headers: int = 0
    dropped_newlines: int = 0
    blocks: list[tuple[str, int, int]] = field(default_factory=list)  # (role, start, end)


def label_roles(ids: list[int], chat: ChatIds) -> Labelled:
    """Each token's role, plus the header and newline defects seen on the way."""
    n = len(ids)
    roles = ["system"] * n
    out = Labelled(roles=roles)
    i = 0
    current = "system"
    while i < n:
        t = ids[i]
        if t == chat.im_start:
            role, name = chat.role_at(ids, i + 1)
            # header: <|im_start|> role \n ; a user block of <tool_response>s is the tool's
            body = i + 1 + name + 1
            if role == "user" and tuple(ids[body: body + len(chat.tool_response)]) == chat.tool_response:
                role = "tool"
            end = _block_end(ids, i + 1, chat)
            _fill(roles, i, end, role)
            out.blocks.append((role, i, end))
            current = role
            i = end
            continue
        # text outside any block: the turn after an <|im_end|> whose header is missing
        if i > 0 and ids[i - 1] in (chat.im_end, chat.newline):
            out.missing_headers += 1
            current = "assistant"
        end = _block_end(ids, i, chat)
        _fill(roles, i, end, current)
        out.blocks.append((current, i, end))
        i = end
    for j in range(n - 1):
        if ids[j] == chat.im_end and ids[j + 1] != chat.newline:
            out.dropped_newlines += 1
    return out


def _block_end(ids: list[int], start: int, chat: ChatIds) -> int:
    """Index just past this block's `<|im_end|>` and its newline (or the sequence end)."""
    n = len(ids)
    j = start
    while j < n and ids[j] != chat.im_end:
        if ids[j] == chat.im_start and j > start:
            return j
        j += 1
    if j < n:
        j += 1
        if j < n and ids[j] == chat.newline:
            j += 1
    return j


def _fill(roles: list[str], start: int, end: int, role: str) -> None:
    for k in range(start, end):
        roles[k] = role


def first_difference(a: list[int], b: list[int]) -> int | None:
    """The first position where two id lists differ (None when equal)."""
    for k, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return k
    return None if len(a) == len(b) else min(len(a), len(b))
