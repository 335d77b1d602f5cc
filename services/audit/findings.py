"""The audit: what a stack's training sequences contain, and what is wrong with them.

`audit_samples` turns rollouts, the training samples the stack built from them, and
(when known) the attention masks the trainer actually fed its model into an
AuditReport: tokens and trained tokens by role, turns and tool calls, context lengths
against `max_seq_len` / `max_model_len`, reward spread per group, the first difference
from the chat template's rendering, and findings, each present exactly when its
condition holds. Codes, severities, units and messages come from the catalogue
(catalogue.py), shared with the in-training hook.

Attention is never guessed from the stack's version: `CONTEXT_HIDDEN_FROM_ATTENTION`
and the `attended` flags come from `TrainerMasks`, recorded by the in-training audit
hook from the tensors passed to the model's forward.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..contracts import AuditReport, Finding, Replay
from .catalogue import FINDING_CODES, finding, pct
from .processing import Sample, fast, reference_ids
from .rollouts import Grouping, Rollout, Skipped
from .sequences import ROLES, ChatIds, first_difference, label_roles

__all__ = ["FINDING_CODES", "MaskedSequence", "TrainerMasks", "attention_figures", "audit_samples", "token_changes"]
NEAR = 10  # tokens: "within 10 tokens of a limit"


@dataclass
class MaskedSequence:
    """One row the trainer fed its model: ids, attention mask and loss mask (same length)."""

    input_ids: list[int]
    attention_mask: list[int]
    loss_mask: list[int]


@dataclass
class TrainerMasks:
    """What the in-training hook saw (stack, steps) — the only source of attention facts."""

    stack: str
    sequences: list[MaskedSequence] = field(default_factory=list)
    steps: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "steps": self.steps,
                "sequences": [s.__dict__ for s in self.sequences]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainerMasks":
        return cls(stack=data["stack"], steps=data.get("steps", 0),
                   sequences=[MaskedSequence(**s) for s in data.get("sequences", [])])


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0, "max": 0}
    return {"min": min(values), "mean": round(statistics.fmean(values), 3), "max": max(values)}


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {"p50": 0, "p90": 0, "p95": 0, "max": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]

    return {"p50": pick(0.5), "p90": pick(0.9), "p95": pick(0.95), "max": ordered[-1]}


def attention_figures(masks: TrainerMasks, chat: ChatIds) -> dict[str, Any]:
    """For every loss-carrying token: how many earlier tokens of each role it can attend to."""
    visible = defaultdict(int)
    present = defaultdict(int)
    hidden_sequences = 0
    loss_tokens = hidden_tokens = 0
    for seq in masks.sequences:
        n = min(len(seq.input_ids), len(seq.attention_mask), len(seq.loss_mask))
        roles = label_roles(seq.input_ids[:n], chat).roles
        seen_all = defaultdict(int)
        seen_visible = defaultdict(int)
        hidden_here = False
        for t in range(n):
            if seq.loss_mask[t] and t > 0:
                loss_tokens += 1
                hidden_token = False
                for role in ROLES:
                    present[role] += seen_all[role]
                    visible[role] += seen_visible[role]
                    if seen_visible[role] < seen_all[role] and role != "assistant":
                        hidden_token = True
                hidden_tokens += hidden_token
                hidden_here = hidden_here or hidden_token
            if seq.input_ids[t] != -1:
                seen_all[roles[t]] += 1
                if seq.attention_mask[t]:
                    seen_visible[roles[t]] += 1
        hidden_sequences += hidden_here
    share = {role: (round(visible[role] / present[role], 4) if present[role] else None) for role in ROLES}
    return {"sequences": len(masks.sequences), "loss_tokens": loss_tokens, "hidden_loss_tokens": hidden_tokens,
            "visible_share": share,
            "mean_visible": {r: round(visible[r] / loss_tokens, 2) if loss_tokens else 0 for r in ROLES},
            "mean_present": {r: round(present[r] / loss_tokens, 2) if loss_tokens else 0 for r in ROLES},
            "hidden_sequences": hidden_sequences}


def _fed(sample: Sample, masks: TrainerMasks | None) -> MaskedSequence | None:
    """The sequence the trainer fed its model for this sample (the same ids), if it was observed."""
    ids = sample.ids
    for seq in (masks.sequences if masks is not None else []):
        if seq.input_ids[: len(ids)] == ids:
            return seq
    return None


def attention_finding(fig: dict[str, Any]) -> Finding | None:
    """CONTEXT_HIDDEN_FROM_ATTENTION from observed masks (both producers call this)."""
    if not fig["hidden_loss_tokens"]:
        return None
    share = fig["visible_share"]
    return finding("CONTEXT_HIDDEN_FROM_ATTENTION", fig["hidden_loss_tokens"],
                   {"visible_share": share, "mean_visible": fig["mean_visible"], "mean_present": fig["mean_present"]},
                   total=fig["loss_tokens"], system=pct(share["system"]), user=pct(share["user"]),
                   tool=pct(share["tool"]), sequences=fig["hidden_sequences"], of_sequences=fig["sequences"])


def _example_tokens(sample: Sample, tokenizer: Any, chat: ChatIds, masks: TrainerMasks | None,
                    limit: int = 600) -> list[dict[str, Any]]:
    ids = sample.ids
    roles = label_roles(ids, chat).roles
    loss = [0] * len(sample.prompt_ids) + list(sample.loss_mask)
    fed = _fed(sample, masks)
    attended: list[bool | None] = [bool(a) for a in fed.attention_mask[: len(ids)]] if fed else [None] * len(ids)
    return [{"text": tokenizer.decode([i]), "role": roles[k], "trained": bool(loss[k]), "attended": attended[k]}
            for k, i in enumerate(ids[:limit])]


@dataclass
class _Tally:
    """What the sequences of the audited rollouts contain, counted once."""

    tokens_by_role: dict[str, int] = field(default_factory=lambda: {r: 0 for r in ROLES})
    trained_by_role: dict[str, int] = field(default_factory=lambda: {r: 0 for r in ROLES})
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: dict[str, Any] = field(default_factory=dict)
    context_lengths: list[int] = field(default_factory=list)
    diffs: list[tuple[int, int, list[int], list[int]]] = field(default_factory=list)


def _limits(t: _Tally, index: int, rollout: Rollout, own: list[Sample], length: int, max_seq_len: int,
            max_model_len: int) -> None:
    where = {"rollout": index, "line": rollout.line}
    hit_length = "length" in rollout.finish_reasons
    if any(s.truncated for s in own) or length > max_seq_len or hit_length:
        t.counts["TRUNCATED"] += 1
        t.examples.setdefault("TRUNCATED", {**where, "context_length": length, "turn_hit_max_tokens": hit_length})
    elif length >= min(max_seq_len, max_model_len) - NEAR:
        t.counts["NEAR_LIMIT"] += 1
        t.examples.setdefault("NEAR_LIMIT", {**where, "context_length": length})


def _tally(rollouts: list[Rollout], samples: list[Sample], tokenizer: Any, chat: ChatIds,
           max_seq_len: int, max_model_len: int) -> _Tally:
    t = _Tally()
    by_rollout: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_rollout[s.rollout].append(s)
    for index, rollout in enumerate(rollouts):
        own = by_rollout.get(index, [])
        if not own:
            continue
        reference = reference_ids(rollout, tokenizer)
        last = own[-1]
        length = max(len(reference), len(last.ids))
        t.context_lengths.append(length)
        _limits(t, index, rollout, own, length, max_seq_len, max_model_len)
        flags = set()
        for s in own:
            labelled = label_roles(s.ids, chat)
            start = len(s.prompt_ids)
            for k, role in enumerate(labelled.roles):
                if s is last:  # the last sample holds the whole conversation (current: earlier turns in its prompt)
                    t.tokens_by_role[role] += 1
                if k >= start and s.loss_mask[k - start]:
                    t.trained_by_role[role] += 1
                    if role == "tool":
                        flags.add("TOOL_TOKENS_TRAINED")
                elif k >= start and role == "assistant" and not s.truncated:
                    flags.add("ASSISTANT_TOKENS_UNTRAINED")
            if labelled.missing_headers:
                flags.add("MISSING_ASSISTANT_HEADER")
                t.counts["missing_headers"] += labelled.missing_headers
            if labelled.dropped_newlines:
                flags.add("DROPPED_NEWLINE")
                t.counts["dropped_newlines"] += labelled.dropped_newlines
        if rollout.tools:
            system_text = tokenizer.decode(last.ids[: next((e for r, b, e in label_roles(last.ids, chat).blocks), 0)])
            if "# Tools" not in system_text:
                flags.add("TOOLS_BLOCK_MISSING")
        for flag in flags:
            t.counts[flag] += 1
            t.examples.setdefault(flag, {"rollout": index, "line": rollout.line})
        position = first_difference(last.ids, reference)
        if position is not None:
            t.diffs.append((index, position, last.ids, reference))
    return t


def _groups(rollouts: list[Rollout], grouping: Grouping | None) -> tuple[dict[str, Any], list[str], int]:
    """Reward spread per group (H05): the stats, the zero-variance groups, the rollouts in them."""
    groups: dict[str, list[float]] = defaultdict(list)
    for r in rollouts:
        if r.reward is not None and r.group is not None:
            groups[r.group].append(r.reward)
    std = {g: (statistics.pstdev(v) if len(v) > 1 else 0.0) for g, v in groups.items()}
    zero = [g for g, sd in std.items() if sd == 0.0 and len(groups[g]) > 1]
    stats = {"count": len(groups), "zero_variance_share": round(len(zero) / len(groups), 4) if groups else 0.0,
             "reward_std": {g: round(v, 4) for g, v in list(std.items())[:50]},
             "by": grouping.by if grouping else "", "note": grouping.note if grouping else ""}
    return stats, zero, sum(len(groups[g]) for g in zero)


def _findings(t: _Tally, n: int, stack: str, max_seq_len: int, attention: dict[str, Any] | None,
              groups: dict[str, Any], zero: list[str], zero_rollouts: int, skipped: list[Skipped], lines: int) -> list[Finding]:
    c, ex = t.counts, t.examples
    candidates = [
        finding("TOOL_TOKENS_TRAINED", t.trained_by_role["tool"], ex.get("TOOL_TOKENS_TRAINED"),
                total=t.tokens_by_role["tool"]),
        finding("ASSISTANT_TOKENS_UNTRAINED", c["ASSISTANT_TOKENS_UNTRAINED"], ex.get("ASSISTANT_TOKENS_UNTRAINED"), total=n),
        finding("MISSING_ASSISTANT_HEADER", c["missing_headers"], ex.get("MISSING_ASSISTANT_HEADER"),
                rollouts=c["MISSING_ASSISTANT_HEADER"], total=n),
        finding("DROPPED_NEWLINE", c["dropped_newlines"], ex.get("DROPPED_NEWLINE"), rollouts=c["DROPPED_NEWLINE"], total=n),
        finding("TOOLS_BLOCK_MISSING", c["TOOLS_BLOCK_MISSING"], ex.get("TOOLS_BLOCK_MISSING"), total=n),
        attention_finding(attention) if attention is not None else None,
        finding("TRUNCATED", c["TRUNCATED"], ex.get("TRUNCATED"), total=n, max_seq_len=max_seq_len,
                note=" — the legacy trainer does not flag the latter" if stack == "legacy" else ""),
        finding("NEAR_LIMIT", c["NEAR_LIMIT"], ex.get("NEAR_LIMIT"), total=n, near=NEAR),
        finding("ZERO_VARIANCE_GROUPS", zero_rollouts, {"groups": zero[:5]}, groups=len(zero), total_groups=groups["count"]),
        finding("SKIPPED_LINES", len(skipped), [{"line": s.line, "problem": s.problem} for s in skipped[:20]],
                total=lines or n + len(skipped)),
    ]
    return [f for f in candidates if f is not None and f.count]


def audit_samples(
    *, env: str, stack: str, rollouts: list[Rollout], samples: list[Sample], tokenizer: Any,
    max_seq_len: int, max_model_len: int, masks: TrainerMasks | None = None,
    skipped: list[Skipped] | None = None, rehearsal: bool = False, source: str = "",
    grouping: Grouping | None = None, lines: int = 0, replay: Replay | None = None,
) -> AuditReport:
    tokenizer = fast(tokenizer)  # exact; each conversation block is encoded once
    chat = ChatIds.of(tokenizer)
    skipped = skipped or []
    t = _tally(rollouts, samples, tokenizer, chat, max_seq_len, max_model_len)
    n = len({s.rollout for s in samples})
    groups, zero, zero_rollouts = _groups(rollouts, grouping)
    attention = attention_figures(masks, chat) if masks is not None and masks.sequences else None
    findings = _findings(t, n, stack, max_seq_len, attention, groups, zero, zero_rollouts, skipped, lines)

    assistants = [[m for m in r.completion if m["role"] == "assistant"] for r in rollouts]
    with_tools = {s.rollout for s in samples if any(m["role"] == "tool" for m in rollouts[s.rollout].completion)}
    example_sample = (next((s for s in reversed(samples) if _fed(s, masks) is not None), None)
                      or next((s for s in reversed(samples) if s.rollout in with_tools), None)
                      or (samples[0] if samples else None))
    diff_view = None
    if t.diffs:
        index, position, got, want = t.diffs[0]
        diff_view = {"rollouts_differing": len(t.diffs), "rollout": index, "first_position": position,
                     "training": tokenizer.decode(got[max(0, position - 8): position + 12]),
                     "template": tokenizer.decode(want[max(0, position - 8): position + 12]),
                     "training_length": len(got), "template_length": len(want),
                     "changes": token_changes(got, want, tokenizer)}
    columns: dict[str, list[float]] = defaultdict(list)
    for r in rollouts:
        for k, v in r.columns.items():
            columns[k].append(v)
    tb, tr = t.tokens_by_role, t.trained_by_role
    return AuditReport(
        env=env, stack=stack, rollouts=n, rehearsal=rehearsal, findings=findings,
        tokens_by_role=tb, trained_tokens_by_role=tr,
        trained_share_by_role={r: round(tr[r] / tb[r], 4) if tb[r] else 0.0 for r in ROLES},
        turns=_stats([len(a) for a in assistants]),
        tool_calls=_stats([sum(len(m.get("tool_calls") or []) for m in a) for a in assistants]),
        context_length=_percentiles(t.context_lengths), max_seq_len=max_seq_len, max_model_len=max_model_len,
        truncated_share=round(t.counts["TRUNCATED"] / n, 4) if n else 0.0,
        near_limit_share=round(t.counts["NEAR_LIMIT"] / n, 4) if n else 0.0,
        groups=groups, reward_columns={k: round(statistics.fmean(v), 4) for k, v in columns.items()},
        template_diff=diff_view, attention=attention, replay=replay, samples=len(samples),
        lines=lines or len(rollouts) + len(skipped),
        skipped=[{"line": s.line, "problem": s.problem} for s in skipped], source=source,
        example_rollout={"tokens": _example_tokens(example_sample, tokenizer, chat, masks)} if example_sample else None,
    )


def token_changes(training: list[int], template: list[int], tokenizer: Any, limit: int = 50) -> list[dict[str, Any]]:
    """Token-by-token differences of one sequence from the template's: where, and what each side has."""
    import difflib

    out = []
    matcher = difflib.SequenceMatcher(a=training, b=template, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        out.append({"op": op, "training_position": i1, "template_position": j1,
                    "training": tokenizer.decode(training[i1:i2]), "template": tokenizer.decode(template[j1:j2])})
        if len(out) >= limit:
            break
    return out
