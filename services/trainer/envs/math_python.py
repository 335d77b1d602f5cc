"""math-python: a ToolEnv with a `python` tool; the final answer in `\\boxed{}`.

As in the researcher's environment: several turns (`max_turns`, default 5), the python
tool runs code in a subprocess (time limit, output cap), and the answer is checked with
math-verify. The reward is the boxed answer's correctness; the number of tool calls and
whether the tool errored are reported as zero-weight metrics.
"""

from __future__ import annotations

from typing import Any

import verifiers as vf
from verifiers.utils.data_utils import extract_boxed_answer

from .common import load_rows
from .mathcheck import boxed_match
from .python_tool import run_python

SYSTEM_PROMPT = (
    "Use the python tool to compute what you need; print() the values you want to see. "
    "When you are done, give the final answer in \\boxed{}."
)


def python(code: str) -> str:
    """Run Python code and return what it prints.

    Args:
        code: A Python program; use print() to show results.
    """
    return run_python(code)


def convert(row: dict[str, Any]) -> dict[str, Any] | None:
    question = row.get("question") or row.get("problem")
    answer = str(row.get("answer", ""))
    if "####" in answer:
        answer = answer.split("####")[-1].strip().replace(",", "")
    if not question or not answer:
        return None
    return {"question": question, "answer": answer}


def load_environment(
    max_turns: int = 5,
    dataset_path: str | None = None,
    dataset_name: str = "openai/gsm8k",
    dataset_config: str = "main",
    split: str = "train",
    num_examples: int = -1,
    system_prompt: str = SYSTEM_PROMPT,
    **kwargs: Any,
) -> vf.Environment:
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1")
    dataset = load_rows(dataset_path, dataset_name, dataset_config, split, num_examples, convert)
    parser = vf.Parser(extract_fn=extract_boxed_answer)

    def correct_answer(parser, completion, answer, **_: Any) -> float:
        return boxed_match(parser.parse_answer(completion) or "", answer)

    def tool_calls(completion, **_: Any) -> float:
        return float(sum(len(m.get("tool_calls") or []) for m in completion if m["role"] == "assistant"))

    def tool_errors(completion, **_: Any) -> float:
        return float(sum(1 for m in completion if m["role"] == "tool" and str(m.get("content", "")).startswith(("Error", "Traceback"))))

    rubric = vf.Rubric(funcs=[correct_answer, tool_calls, tool_errors], weights=[1.0, 0.0, 0.0], parser=parser)
    return vf.ToolEnv(
        tools=[python], max_turns=max_turns, dataset=dataset, system_prompt=system_prompt,
        parser=parser, rubric=rubric, **kwargs,
    )
