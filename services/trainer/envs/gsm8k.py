"""GSM8K, single turn: the question, one answer, `\\boxed{}` checked with math-verify.

`use_think` is off by default: Qwen2.5-Instruct never emits `</think>`, so a ThinkParser
would score every completion 0 and the run could not learn (the H06 control).
"""

from __future__ import annotations

from typing import Any

import verifiers as vf
from verifiers.utils.data_utils import extract_boxed_answer

from .common import load_rows
from .mathcheck import boxed_match

SYSTEM_PROMPT = "Solve the problem step by step. Put the final answer in \\boxed{}."


def convert(row: dict[str, Any]) -> dict[str, Any] | None:
    answer = str(row.get("answer", ""))
    if "####" in answer:  # the hub's GSM8K: reasoning, then "#### 72"
        answer = answer.split("####")[-1].strip().replace(",", "")
    if not row.get("question") or not answer:
        return None
    return {"question": row["question"], "answer": answer}


def load_environment(
    use_think: bool = False,
    dataset_path: str | None = None,
    dataset_name: str = "openai/gsm8k",
    dataset_config: str = "main",
    split: str = "train",
    num_examples: int = -1,
    system_prompt: str = SYSTEM_PROMPT,
    **kwargs: Any,
) -> vf.Environment:
    dataset = load_rows(dataset_path, dataset_name, dataset_config, split, num_examples, convert)
    parser = (vf.ThinkParser if use_think else vf.Parser)(extract_fn=extract_boxed_answer)

    def correct_answer(parser, completion, answer, **_: Any) -> float:
        return boxed_match(parser.parse_answer(completion) or "", answer)

    rubric = vf.Rubric(funcs=[correct_answer], weights=[1.0], parser=parser)
    return vf.SingleTurnEnv(dataset=dataset, system_prompt=system_prompt, parser=parser, rubric=rubric, **kwargs)
