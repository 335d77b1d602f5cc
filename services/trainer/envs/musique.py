"""MuSiQue: multi-hop QA with a `retrieve` tool over the example's own paragraphs.

The model answers in `<think>...</think><cite>ids</cite><answer>...</answer>`; the tool
searches the example's 20 paragraphs (2-4 of them supporting) with BM25. Rewards:
exact match and token F1 against the answer and its aliases (the learning signal),
retrieval recall of the supporting paragraphs and citation precision/recall, plus the
format. Weights follow the researcher's environment: EM 1.0, F1 0.5, the rest 0.1-0.2.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

import verifiers as vf
from verifiers.envs.stateful_tool_env import StatefulToolEnv

from .common import load_rows

SYSTEM_PROMPT = (
    "Answer the multi-hop question. Use the retrieve tool to search the documents; each "
    "result starts with its id in brackets. Think in <think>...</think>, list the ids of "
    "the documents you used in <cite>...</cite>, and give a short final answer in "
    "<answer>...</answer>."
)
TOP_K = 2


def retrieve(query: str) -> str:
    """Search the documents for this question and return the best matching paragraphs.

    Args:
        query: What to search for.
    """
    raise RuntimeError("retrieve is bound to each example's paragraphs by the environment")


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def bm25_search(paragraphs: list[dict[str, Any]], query: str, k: int = TOP_K) -> str:
    from rank_bm25 import BM25Okapi

    if not paragraphs:
        return "No documents."
    bm25 = BM25Okapi([_words(p["title"] + " " + p["paragraph_text"]) for p in paragraphs])
    scores = bm25.get_scores(_words(query))
    best = sorted(range(len(paragraphs)), key=lambda i: -scores[i])[:k]
    return "\n\n".join(f"[{paragraphs[i]['idx']}] {paragraphs[i]['title']}\n{paragraphs[i]['paragraph_text']}" for i in best)


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def convert(row: dict[str, Any]) -> dict[str, Any] | None:
    if not row.get("answerable", True) or not row.get("question") or not row.get("answer"):
        return None
    paragraphs = [
        {"idx": int(p["idx"]), "title": p["title"], "paragraph_text": p["paragraph_text"],
         "is_supporting": bool(p.get("is_supporting", False))}
        for p in row.get("paragraphs", [])
    ]
    return {
        "question": row["question"],
        "answer": row["answer"],
        "info": {"aliases": list(row.get("answer_aliases", [])), "paragraphs": paragraphs},
    }


def _ids(text: str) -> set[int]:
    return {int(x) for x in re.findall(r"\d+", text or "")}


class MusiqueEnv(StatefulToolEnv):
    """StatefulToolEnv whose `retrieve` searches the paragraphs in the rollout's `info`."""

    def update_tool_args(self, *args: Any, **kwargs: Any) -> dict:
        # verifiers 0.1.3: (tool_args, messages, state); 0.1.9: (tool_name, tool_args, messages, state)
        tool_args, state = (args[0], args[2]) if len(args) == 3 else (args[1], args[3])
        tool_args = dict(tool_args)
        tool_args["_paragraphs"] = state["info"]["paragraphs"]
        return tool_args


def _bound_retrieve(query: str, _paragraphs: list[dict[str, Any]]) -> str:
    return bm25_search(_paragraphs, query)


def load_environment(
    max_turns: int = 5,
    dataset_path: str | None = None,
    dataset_name: str = "dgslibisey/MuSiQue",
    dataset_config: str | None = None,
    split: str = "train",
    num_examples: int = -1,
    system_prompt: str = SYSTEM_PROMPT,
    **kwargs: Any,
) -> vf.Environment:
    dataset = load_rows(dataset_path, dataset_name, dataset_config, split, num_examples, convert)
    parser = vf.XMLParser(fields=["think", "cite", "answer"], answer_field="answer")

    def golds(answer: str, info: dict) -> list[str]:
        return [answer, *info.get("aliases", [])]

    def exact_match(parser, completion, answer, info, **_: Any) -> float:
        pred = normalize(parser.parse_answer(completion) or "")
        return float(bool(pred) and any(pred == normalize(g) for g in golds(answer, info)))

    def token_f1(parser, completion, answer, info, **_: Any) -> float:
        pred = parser.parse_answer(completion) or ""
        return max(f1(pred, g) for g in golds(answer, info))

    def supporting(info: dict) -> set[int]:
        return {p["idx"] for p in info.get("paragraphs", []) if p.get("is_supporting")}

    def retrieval_recall(completion, info, **_: Any) -> float:
        seen: set[int] = set()
        for m in completion:
            if m["role"] == "tool":
                seen |= {int(x) for x in re.findall(r"^\[(\d+)\]", str(m.get("content", "")), re.M)}
        gold = supporting(info)
        return len(seen & gold) / len(gold) if gold else 0.0

    def citation(parser, completion, info, **_: Any) -> float:
        cited: set[int] = set()
        for m in completion:
            if m["role"] == "assistant":
                parsed = parser.parse(m.get("content") or "")
                cited |= _ids(getattr(parsed, "cite", None) or "")
        gold = supporting(info)
        if not cited or not gold:
            return 0.0
        precision, recall = len(cited & gold) / len(cited), len(cited & gold) / len(gold)
        return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)

    def format_ok(parser, completion, **_: Any) -> float:
        last = next((m for m in reversed(completion) if m["role"] == "assistant"), None)
        parsed = parser.parse((last or {}).get("content") or "")
        return float(all(getattr(parsed, f, None) for f in ("think", "answer")))

    rubric = vf.Rubric(
        funcs=[exact_match, token_f1, retrieval_recall, citation, format_ok],
        weights=[1.0, 0.5, 0.2, 0.1, 0.1], parser=parser,
    )
    env = MusiqueEnv(
        tools=[retrieve], max_turns=max_turns, dataset=dataset, system_prompt=system_prompt,
        parser=parser, rubric=rubric, **kwargs,
    )
    env.tool_map["retrieve"] = _bound_retrieve
    return env
