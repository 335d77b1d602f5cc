"""Answer checking with math-verify (the checker verifiers' MathRubric uses)."""

from __future__ import annotations


def boxed_match(response: str, answer: str) -> float:
    """1.0 when math-verify finds `response` equal to `answer`, else 0.0 (never raises)."""
    if not response.strip():
        return 0.0
    try:
        from math_verify import parse, verify

        gold = parse(f"\\boxed{{{answer}}}", parsing_timeout=5)
        pred = parse(f"\\boxed{{{response}}}", parsing_timeout=5)
        return 1.0 if verify(gold, pred, timeout_seconds=5) else 0.0
    except BaseException:  # math-verify raises on unparsable input and on its own timeouts
        return 0.0
