"""short-sums: add two small numbers, reply with the sum; the learning rehearsal's task.

Chosen for what SmolLM2-135M-Instruct can learn in a few dozen GRPO steps on two CPU
cores: out of the box it mostly chats about the question ("To add 3 and 4 you can...")
and often ends on a wrong number; the reward pays for ending on the right one and for
saying it briefly, so a group of eight samples nearly always has reward variance.

Rewards (weights sum to 1, so the reward lies in [0, 1]):
- `correct_sum` (0.5): the last integer in the reply equals the sum;
- `brief` (0.5): the reply has at most `brief_words` words (default 8).

Measured (docs/rehearsal.md): `brief` is what this model learns within a few dozen
steps (about 0.2 -> 1.0); `correct_sum` stays near its start (0.1-0.2): a format task with
a correctness term, stated as such.

Examples come from a JSONL file (`dataset_path`, rows `{"question": "3 + 4", "answer": "7"}`)
or are generated from `seed` (`num_examples` of them, operands 1..`max_operand`).
"""

from __future__ import annotations

import random
import re
from typing import Any

import verifiers as vf

from .common import read_jsonl

SYSTEM_PROMPT = "Add the two numbers. Reply with the sum only."
INTEGER = re.compile(r"-?\d+")


def make_rows(num_examples: int = 200, max_operand: int = 9, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(num_examples):
        a, b = rng.randint(1, max_operand), rng.randint(1, max_operand)
        rows.append({"question": f"{a} + {b}", "answer": str(a + b)})
    return rows


def last_integer(text: str) -> str | None:
    found = INTEGER.findall(text.replace(",", ""))
    return found[-1] if found else None


def reply_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    last = next((m for m in reversed(completion) if m.get("role") == "assistant"), None)
    return str((last or {}).get("content") or "")


def load_environment(
    dataset_path: str | None = None,
    num_examples: int = 200,
    max_operand: int = 9,
    seed: int = 0,
    brief_words: int = 8,
    system_prompt: str = SYSTEM_PROMPT,
    **kwargs: Any,
) -> vf.Environment:
    from datasets import Dataset

    if brief_words < 1 or max_operand < 1:
        raise ValueError("brief_words and max_operand must be at least 1")
    rows = read_jsonl(dataset_path) if dataset_path else make_rows(num_examples, max_operand, seed)
    if num_examples > 0:
        rows = rows[:num_examples]
    dataset = Dataset.from_list([{"question": str(r["question"]), "answer": str(r["answer"])} for r in rows])
    parser = vf.Parser()

    def correct_sum(completion, answer, **_: Any) -> float:
        return 1.0 if last_integer(reply_text(completion)) == str(answer).strip() else 0.0

    def brief(completion, **_: Any) -> float:
        return 1.0 if len(reply_text(completion).split()) <= brief_words else 0.0

    rubric = vf.Rubric(funcs=[correct_sum, brief], weights=[0.5, 0.5], parser=parser)
    return vf.SingleTurnEnv(dataset=dataset, system_prompt=system_prompt, parser=parser, rubric=rubric, **kwargs)
