"""The findings catalogue: every audit finding code, defined once.

Each code has a severity, the unit its count is in (rollouts, turns or tokens), a message
template, what evidence its example carries, and a paragraph on what it means for
training. Both producers — the file audit (findings.py) and the in-training hook
(trainer/audit_hook.py) — build findings only through `finding()`, so one defect reads
the same way on the CLI, in the HTML page, on the dashboard and in the verdict rules.
docs/audit.md is this catalogue written out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..contracts import Finding


@dataclass(frozen=True)
class Code:
    code: str
    severity: Literal["info", "warning", "error"]
    unit: Literal["rollouts", "turns", "tokens"]
    template: str  # str.format fields: {count} and the named values the producers pass
    evidence: str
    meaning: str


CODES: tuple[Code, ...] = (
    Code("TOOL_TOKENS_TRAINED", "error", "tokens",
         "{count} of {total} tool-response tokens carry loss: the model is trained to write the environment's text",
         "`rollout`/`line` (file audit) or `sequence` (in-training hook): the first place it holds",
         "The policy gradient pushes up the probability of text the model never wrote (tool output, "
         "retrieved passages). With mask_env_responses off, the model learns to hallucinate tool results "
         "instead of calling tools; the reward signal is spread over tokens it does not control. A "
         "single-turn run has no tool responses in its sequences, so it cannot have it."),
    Code("ASSISTANT_TOKENS_UNTRAINED", "warning", "rollouts",
         "sampled assistant tokens carry no loss in {count} of {total} rollouts",
         "`rollout`/`line`: the first rollout where an untruncated assistant turn has no loss",
         "Turns the model sampled are not trained on, so their advantage is thrown away. A single-turn "
         "run is unaffected when only the other turns lose their loss; a multi-turn run learns only part "
         "of what it did."),
    Code("MISSING_ASSISTANT_HEADER", "error", "turns",
         "{count} assistant turns after the first, in {rollouts} of {total} rollouts, have no "
         "'<|im_start|>assistant\\n' header in training (vLLM generated them after one): the model is "
         "trained on a context it never sees at inference",
         "`rollout`/`line`: the first rollout with a turn spliced in without its header",
         "Each later turn is trained as a continuation of the previous message's text rather than as a "
         "new assistant turn. The learned distribution is conditioned on a context vLLM never produces, "
         "so improvements learned in training do not transfer to sampling. A single-turn run has no "
         "later turns and is untouched."),
    Code("DROPPED_NEWLINE", "warning", "turns",
         "{count} '<|im_end|>' tokens, in {rollouts} of {total} rollouts, are not followed by the "
         "template's '\\n' in training",
         "`rollout`/`line`: the first rollout where a turn ends without its newline",
         "Every turn boundary inside a training sequence differs by one token from what the model sees "
         "at inference. On its own a small shift; together with the missing headers it means the trained "
         "context is never the sampled one. Single-turn sequences end at their only <|im_end|>."),
    Code("TOOLS_BLOCK_MISSING", "error", "rollouts",
         "the '# Tools' system block vLLM rendered is absent from {count} of {total} training prompts",
         "`rollout`/`line`: the first rollout whose training prompt lacks the tools block",
         "vLLM rendered the tool schemas into the system prompt when sampling; the trainer renders the "
         "prompt without them. Log-probabilities of tool calls are computed without the tool "
         "definitions they depend on, so the ratio and gradient of exactly the tool-calling tokens are "
         "off. Environments without tools cannot have it."),
    Code("CONTEXT_HIDDEN_FROM_ATTENTION", "error", "tokens",
         "{count} of {total} loss tokens cannot attend to all the context before them: they see {system} "
         "of system, {user} of user and {tool} of tool tokens (in {sequences} of {of_sequences} trained "
         "sequences)",
         "`visible_share`, `mean_visible`, `mean_present` per role: what share of the earlier tokens of "
         "each role the loss tokens could attend to, observed from the masks fed to the model's forward",
         "The trainer's attention mask hides the prompt (and, with mask_env_responses, the tool "
         "responses) from the tokens that carry loss: the gradient is that of log p(completion | the "
         "completion's own earlier tokens), not of log p(completion | question, tool results). A "
         "single-turn run can still improve: its completion restates the question and carries its own "
         "reasoning, and the reward still ranks completions, so format and reasoning habits are "
         "reinforced even without the question. In a multi-turn run the later turns depend on the tool "
         "results they cannot see, so the update rewards answers without their evidence — the legacy "
         "stack's 'GSM8K learns, multi-turn tools do not'. Only observed masks produce this code: a "
         "trainer step (in-training hook) or a replay of the file's rollouts through the trainer."),
    Code("TRUNCATED", "warning", "rollouts",
         "{count} of {total} rollouts were truncated (max_seq_len {max_seq_len}) or had a turn stop at "
         "max_tokens{note}",
         "`rollout`/`line`, `context_length`, `turn_hit_max_tokens`: the first truncated rollout",
         "A truncated rollout is scored on an unfinished answer (usually reward 0) while the trainer "
         "sees a cut sequence; unless mask_truncated_completions is on, the model is pushed away from "
         "long answers whatever their content. Single-turn runs have it too when answers outgrow "
         "max_tokens; multi-turn runs hit max_seq_len much sooner, as every turn adds to the context."),
    Code("NEAR_LIMIT", "info", "rollouts",
         "{count} of {total} rollouts end within {near} tokens of a limit",
         "`rollout`/`line`, `context_length`: the first rollout close to the limit",
         "Not a defect yet: as the policy's answers grow during training these rollouts will be "
         "truncated (see TRUNCATED)."),
    Code("ZERO_VARIANCE_GROUPS", "warning", "rollouts",
         "{count} rollouts in {groups} of {total_groups} groups have identical rewards within their "
         "group: no advantage, no learning signal",
         "`groups`: the first such groups' names (see the report's `groups.by` for how rollouts were grouped)",
         "GRPO's advantage is the reward minus the group mean; a group whose rollouts all score the same "
         "contributes zero gradient. Many such groups mean the task is too easy or too hard for the "
         "policy, or the reward cannot tell answers apart. The other groups still learn, so a run "
         "improves while many of its groups are flat — only more slowly."),
    Code("SKIPPED_LINES", "warning", "rollouts",
         "{count} of {total} lines were not audited (the report's skipped list gives each line and why)",
         "the first skipped lines with their reasons",
         "The figures describe only the lines that could be read; a skipped line is one the trainer "
         "would have refused or processed differently."),
)
CATALOGUE: dict[str, Code] = {c.code: c for c in CODES}
FINDING_CODES: tuple[str, ...] = tuple(CATALOGUE)


def pct(x: float | None) -> str:
    """A share as the messages print it ('n/a' when there was nothing to share)."""
    return "n/a" if x is None else f"{100 * float(x):.0f}%"


def finding(code: str, count: int, example: Any = None, **values: Any) -> Finding:
    """The Finding for `code`: severity, unit and message from the catalogue."""
    c = CATALOGUE[code]
    return Finding(code=code, severity=c.severity, unit=c.unit, count=count,
                   message=c.template.format(count=count, **values), meaning=c.meaning, example=example)
