"""The audit: what a stack's training sequences contain, and what is wrong with them.

`audit_samples` turns rollouts, the training samples the stack built from them, and
(when known) the attention masks the trainer actually fed its model into an
AuditReport: tokens and trained tokens by role, turns and tool calls, context lengths
against `max_seq_len` / `max_model_len`, reward spread per group, the first difference
from the chat template's rendering, and findings, each present exactly when its
condition holds (`FINDING_CODES`).

Attention is never guessed from the stack's version: `CONTEXT_HIDDEN_FROM_ATTENTION`
and the `attended` flags come from `TrainerMasks`, recorded by the in-training audit
hook from the tensors passed to the model's forward.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..contracts import AuditReport, Finding
from .processing import Sample, fast, reference_ids
from .rollouts import Rollout, Skipped
from .sequences import ROLES, ChatIds, first_difference, label_roles

FINDING_CODES = (
    "TOOL_TOKENS_TRAINED", "ASSISTANT_TOKENS_UNTRAINED", "MISSING_ASSISTANT_HEADER", "DROPPED_NEWLINE",
    "TOOLS_BLOCK_MISSING", "CONTEXT_HIDDEN_FROM_ATTENTION", "TRUNCATED", "NEAR_LIMIT", "ZERO_VARIANCE_GROUPS",
)
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
    loss_tokens = 0
    for seq in masks.sequences:
        n = min(len(seq.input_ids), len(seq.attention_mask), len(seq.loss_mask))
        roles = label_roles(seq.input_ids[:n], chat).roles
        seen_all = defaultdict(int)
        seen_visible = defaultdict(int)
        hidden_here = False
        for t in range(n):
            if seq.loss_mask[t] and t > 0:
                loss_tokens += 1
                for role in ROLES:
                    present[role] += seen_all[role]
                    visible[role] += seen_visible[role]
                    if seen_visible[role] < seen_all[role] and role != "assistant":
                        hidden_here = True
            if seq.input_ids[t] != -1:
                seen_all[roles[t]] += 1
                if seq.attention_mask[t]:
                    seen_visible[roles[t]] += 1
        hidden_sequences += hidden_here
    share = {role: (round(visible[role] / present[role], 4) if present[role] else None) for role in ROLES}
    return {"sequences": len(masks.sequences), "loss_tokens": loss_tokens, "visible_share": share,
            "mean_visible": {r: round(visible[r] / loss_tokens, 2) if loss_tokens else 0 for r in ROLES},
            "mean_present": {r: round(present[r] / loss_tokens, 2) if loss_tokens else 0 for r in ROLES},
            "hidden_sequences": hidden_sequences}


def _example_tokens(sample: Sample, tokenizer: Any, chat: ChatIds, masks: TrainerMasks | None,
                    limit: int = 600) -> list[dict[str, Any]]:
    ids = sample.ids
    roles = label_roles(ids, chat).roles
    loss = [0] * len(sample.prompt_ids) + list(sample.loss_mask)
    attended: list[bool | None] = [None] * len(ids)
    if masks is not None:
        for seq in masks.sequences:  # the same ids, as the trainer fed them
            if seq.input_ids[: len(ids)] == ids:
                attended = [bool(a) for a in seq.attention_mask[: len(ids)]]
                break
    return [{"text": tokenizer.decode([i]), "role": roles[k], "trained": bool(loss[k]), "attended": attended[k]}
            for k, i in enumerate(ids[:limit])]


def audit_samples(
    *, env: str, stack: str, rollouts: list[Rollout], samples: list[Sample], tokenizer: Any,
    max_seq_len: int, max_model_len: int, masks: TrainerMasks | None = None,
    skipped: list[Skipped] | None = None, rehearsal: bool = False, source: str = "",
) -> AuditReport:
    tokenizer = fast(tokenizer)  # exact; each conversation block is encoded once
    chat = ChatIds.of(tokenizer)
    tokens_by_role: dict[str, int] = {r: 0 for r in ROLES}
    trained_by_role: dict[str, int] = {r: 0 for r in ROLES}
    counts: dict[str, int] = defaultdict(int)
    examples: dict[str, Any] = {}
    by_rollout: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_rollout[s.rollout].append(s)

    context_lengths: list[int] = []
    truncated = near = 0
    diffs = []
    for index, rollout in enumerate(rollouts):
        own = by_rollout.get(index, [])
        if not own:
            continue
        reference = reference_ids(rollout, tokenizer)
        last = own[-1]
        length = max(len(reference), len(last.ids))
        context_lengths.append(length)
        hit_length = "length" in rollout.finish_reasons
        if any(s.truncated for s in own) or length > max_seq_len or hit_length:
            truncated += 1
            examples.setdefault("TRUNCATED", {"rollout": index, "context_length": length, "turn_hit_max_tokens": hit_length})
        elif length >= min(max_seq_len, max_model_len) - NEAR:
            near += 1
            examples.setdefault("NEAR_LIMIT", {"rollout": index, "context_length": length})
        rollout_flags = set()
        for s in own:
            labelled = label_roles(s.ids, chat)
            roles = labelled.roles
            start = len(s.prompt_ids)
            for k, role in enumerate(roles):
                if s is last:  # the last sample holds the whole conversation (current: earlier turns in its prompt)
                    tokens_by_role[role] += 1
                if k >= start and s.loss_mask[k - start]:
                    trained_by_role[role] += 1
                    if role == "tool":
                        rollout_flags.add("TOOL_TOKENS_TRAINED")
                elif k >= start and role == "assistant" and not s.truncated:
                    rollout_flags.add("ASSISTANT_TOKENS_UNTRAINED")
            if labelled.missing_headers:
                rollout_flags.add("MISSING_ASSISTANT_HEADER")
                counts["missing_headers"] += labelled.missing_headers
            if labelled.dropped_newlines:
                rollout_flags.add("DROPPED_NEWLINE")
                counts["dropped_newlines"] += labelled.dropped_newlines
        if rollout.tools:
            system_text = tokenizer.decode(last.ids[: next((e for r, b, e in label_roles(last.ids, chat).blocks), 0)])
            if "# Tools" not in system_text:
                rollout_flags.add("TOOLS_BLOCK_MISSING")
        for flag in rollout_flags:
            counts[flag] += 1
            examples.setdefault(flag, {"rollout": index})
        position = first_difference(last.ids, reference)
        if position is not None:
            diffs.append((index, position, last.ids, reference))

    # reward spread per group (H05)
    groups: dict[str, list[float]] = defaultdict(list)
    for index, r in enumerate(rollouts):
        if r.reward is not None and r.group is not None:
            groups[r.group].append(r.reward)
    group_std = {g: (statistics.pstdev(v) if len(v) > 1 else 0.0) for g, v in groups.items()}
    zero_groups = [g for g, sd in group_std.items() if sd == 0.0 and len(groups[g]) > 1]

    attention = attention_figures(masks, chat) if masks is not None and masks.sequences else None

    findings: list[Finding] = []

    def add(code: str, count: int, severity: str, message: str, example: Any = None) -> None:
        if count:
            findings.append(Finding(code=code, severity=severity, count=count, message=message,
                                    example=example if example is not None else examples.get(code)))

    n = len(by_rollout)
    add("TOOL_TOKENS_TRAINED", counts["TOOL_TOKENS_TRAINED"], "error",
        f"tool responses carry loss in {counts['TOOL_TOKENS_TRAINED']} of {n} rollouts: the model is trained to write the environment's text")
    add("ASSISTANT_TOKENS_UNTRAINED", counts["ASSISTANT_TOKENS_UNTRAINED"], "warning",
        f"sampled assistant tokens without loss in {counts['ASSISTANT_TOKENS_UNTRAINED']} rollouts")
    add("MISSING_ASSISTANT_HEADER", counts["MISSING_ASSISTANT_HEADER"], "error",
        f"{counts['missing_headers']} assistant turns after the first have no '<|im_start|>assistant\\n' header in training "
        "(vLLM generated them after one): the model is trained on a context it never sees at inference")
    add("DROPPED_NEWLINE", counts["DROPPED_NEWLINE"], "warning",
        f"{counts['dropped_newlines']} '<|im_end|>' tokens are not followed by the template's '\\n' in training")
    add("TOOLS_BLOCK_MISSING", counts["TOOLS_BLOCK_MISSING"], "error",
        f"the '# Tools' system block vLLM rendered is absent from {counts['TOOLS_BLOCK_MISSING']} training prompts")
    if attention is not None and attention["hidden_sequences"]:
        share = attention["visible_share"]
        add("CONTEXT_HIDDEN_FROM_ATTENTION", attention["hidden_sequences"], "error",
            "in the trainer's forward passes, loss tokens attend to "
            f"{_pct(share['system'])} of system, {_pct(share['user'])} of user and {_pct(share['tool'])} of tool tokens "
            "before them: the attention mask hides the prompt and tool responses",
            {"visible_share": share, "mean_visible": attention["mean_visible"], "mean_present": attention["mean_present"]})
    add("TRUNCATED", truncated, "warning",
        f"{truncated} of {n} rollouts were truncated (max_seq_len {max_seq_len}) or had a turn stop at max_tokens"
        + (" — the legacy trainer does not flag the latter" if stack == "legacy" else ""))
    add("NEAR_LIMIT", near, "info", f"{near} rollouts end within {NEAR} tokens of a limit")
    add("ZERO_VARIANCE_GROUPS", len(zero_groups), "warning",
        f"{len(zero_groups)} of {len(groups)} groups have identical rewards: no advantage, no learning signal",
        {"groups": zero_groups[:5]})
    if skipped:
        findings.append(Finding(code="SKIPPED_LINES", severity="warning", count=len(skipped),
                                message=f"{len(skipped)} input lines skipped",
                                example=[{"line": s.line, "problem": s.problem} for s in skipped[:20]]))

    assistants = [[m for m in r.completion if m["role"] == "assistant"] for r in rollouts]
    example_sample = next((by_rollout[i][-1] for i, r in enumerate(rollouts)
                           if by_rollout.get(i) and sum(m["role"] == "tool" for m in r.completion)), samples[0] if samples else None)
    diff_view = None
    if diffs:
        index, position, got, want = diffs[0]
        diff_view = {"rollouts_differing": len(diffs), "rollout": index, "first_position": position,
                     "training": tokenizer.decode(got[max(0, position - 8): position + 12]),
                     "template": tokenizer.decode(want[max(0, position - 8): position + 12]),
                     "training_length": len(got), "template_length": len(want),
                     "changes": token_changes(got, want, tokenizer)}
    return AuditReport(
        env=env, stack=stack, rollouts=n, rehearsal=rehearsal, findings=findings,
        tokens_by_role=tokens_by_role, trained_tokens_by_role=trained_by_role,
        trained_share_by_role={r: round(trained_by_role[r] / tokens_by_role[r], 4) if tokens_by_role[r] else 0.0 for r in ROLES},
        turns=_stats([len(a) for a in assistants]),
        tool_calls=_stats([sum(len(m.get("tool_calls") or []) for m in a) for a in assistants]),
        context_length=_percentiles(context_lengths), max_seq_len=max_seq_len, max_model_len=max_model_len,
        truncated_share=round(truncated / n, 4) if n else 0.0, near_limit_share=round(near / n, 4) if n else 0.0,
        groups={"count": len(groups), "zero_variance_share": round(len(zero_groups) / len(groups), 4) if groups else 0.0,
                "reward_std": {g: round(v, 4) for g, v in list(group_std.items())[:50]}},
        template_diff=diff_view, attention=attention, samples=len(samples),
        skipped=[{"line": s.line, "problem": s.problem} for s in (skipped or [])],
        source=source,
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


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"
