"""The in-training audit: what the trainer really feeds its model in the first steps.

A forward pre-hook on the policy model records `input_ids` and `attention_mask` of the
forward passes that carry gradient (the policy, not the reference model), paired with
the loss mask the stack applies to them: on the legacy stack `compute_loss` uses
`attention_mask[:, 1:]` as its completion mask, so the loss mask of token t is the
attention mask of t; on the current stack `compute_loss` receives a `loss_mask`.
From those tensors it reports, per role, how many tokens each loss token can attend
to and which tokens carry loss (`audit/...` metrics), and an AuditReport-shaped
summary in `audit_hook.json`. Nothing here changes what the trainer computes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..audit.catalogue import finding
from ..audit.findings import MaskedSequence, TrainerMasks, attention_figures, attention_finding
from ..audit.sequences import ROLES, ChatIds, label_roles
from ..contracts import AuditReport


class AuditHook:
    def __init__(self, stack: str, tokenizer: Any, steps: int = 1, max_sequences: int = 64) -> None:
        self.stack = stack
        self.tokenizer = tokenizer
        self.steps = steps
        self.max_sequences = max_sequences
        self.masks = TrainerMasks(stack=stack)
        self._last_rows: list[int] = []
        self._handles: list[Any] = []
        self.done = False

    def install(self, trainer: Any) -> None:
        import torch

        model = trainer.model

        def pre_hook(module: Any, args: tuple, kwargs: dict) -> None:
            if self.done or not torch.is_grad_enabled():
                return
            ids = kwargs.get("input_ids", args[0] if args else None)
            attn = kwargs.get("attention_mask")
            if ids is None or attn is None:
                return
            self._last_rows = []
            for row in range(ids.shape[0]):
                if len(self.masks.sequences) >= self.max_sequences:
                    break
                a = attn[row].tolist()
                # legacy compute_loss: completion_mask = attention_mask[:, 1:]; current: filled
                # in from compute_loss's loss_mask, which comes after this forward
                lm = [0] + a[1:] if self.stack == "legacy" else [0] * len(a)
                self._last_rows.append(len(self.masks.sequences))
                self.masks.sequences.append(MaskedSequence(ids[row].tolist(), a, lm))

        self._handles.append(model.register_forward_pre_hook(pre_hook, with_kwargs=True))
        if self.stack != "legacy":
            original: Callable = trainer.compute_loss

            def compute_loss(model: Any, inputs: Any, *a: Any, **k: Any) -> Any:
                loss = inputs.get("loss_mask") if isinstance(inputs, dict) else None
                if loss is not None and not self.done:  # RLTrainer: loss_mask[:, 1:] of this microbatch
                    for row, index in enumerate(self._last_rows[: loss.shape[0]]):
                        seq = self.masks.sequences[index]
                        seq.loss_mask = ([0] + loss[row].tolist())[: len(seq.input_ids)]
                    self._last_rows = []
                return original(model, inputs, *a, **k)

            trainer.compute_loss = compute_loss

    def step_finished(self, step: int) -> dict[str, float] | None:
        """After optimizer step `step`: the audit metrics once `steps` steps are recorded."""
        if self.done or step < self.steps or not self.masks.sequences:
            return None
        self.done = True
        self.masks.steps = step
        for handle in self._handles:
            handle.remove()
        return self.metrics()

    def metrics(self) -> dict[str, float]:
        chat = ChatIds.of(self.tokenizer)
        fig = attention_figures(self.masks, chat)
        out: dict[str, float] = {"audit/sequences": float(fig["sequences"]),
                                 "audit/hidden_sequences": float(fig["hidden_sequences"])}
        trained = {r: 0 for r in ROLES}
        for seq in self.masks.sequences:
            roles = label_roles(seq.input_ids, chat).roles
            for k, flag in enumerate(seq.loss_mask):
                if flag:
                    trained[roles[k]] += 1
        for role in ROLES:
            share = fig["visible_share"][role]
            if share is not None:
                out[f"audit/attended_share/{role}"] = float(share)
            out[f"audit/visible_tokens/{role}"] = float(fig["mean_visible"][role])
            out[f"audit/context_tokens/{role}"] = float(fig["mean_present"][role])
            out[f"audit/trained_tokens/{role}"] = float(trained[role])
        return out

    def report(self, env: str, rehearsal: bool) -> AuditReport:
        """What the trainer fed its model, as an AuditReport (attached to the training experiment)."""
        chat = ChatIds.of(self.tokenizer)
        fig = attention_figures(self.masks, chat)
        tokens = {r: 0 for r in ROLES}
        trained = {r: 0 for r in ROLES}
        first_tool_trained = None
        for index, seq in enumerate(self.masks.sequences):
            roles = label_roles(seq.input_ids, chat).roles
            for k, role in enumerate(roles):
                if seq.attention_mask[k] or seq.loss_mask[k] or seq.input_ids[k] != self.tokenizer.pad_token_id:
                    tokens[role] += 1
                    trained[role] += bool(seq.loss_mask[k])
                    if role == "tool" and seq.loss_mask[k] and first_tool_trained is None:
                        first_tool_trained = {"sequence": index}
        # the same catalogue entries as the file audit: one wording, one unit per code
        candidates = [attention_finding(fig),
                      finding("TOOL_TOKENS_TRAINED", trained["tool"], first_tool_trained, total=tokens["tool"])]
        findings = [f for f in candidates if f is not None and f.count]
        first = self.masks.sequences[0] if self.masks.sequences else None
        example = None
        if first is not None:
            roles = label_roles(first.input_ids, chat).roles
            example = {"tokens": [{"text": self.tokenizer.decode([t]), "role": roles[k], "trained": bool(first.loss_mask[k]),
                                   "attended": bool(first.attention_mask[k])}
                                  for k, t in enumerate(first.input_ids[:600]) if t != self.tokenizer.pad_token_id]}
        return AuditReport(env=env, stack=self.stack, rollouts=fig["sequences"], rehearsal=rehearsal, findings=findings,
                           tokens_by_role=tokens, trained_tokens_by_role=trained, attention=fig,
                           source=f"in-training hook, first {self.masks.steps} step(s)", example_rollout=example)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.masks.to_json()))
        return path


def make_callback(hook: AuditHook, reporter: Any, on_report: Callable[[dict[str, float]], None] | None = None) -> Any:
    from transformers import TrainerCallback

    class AuditCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            figures = hook.step_finished(state.global_step)
            if figures and state.is_world_process_zero:
                reporter.report(state.global_step, figures)
                if on_report:
                    on_report(figures)

    return AuditCallback()
