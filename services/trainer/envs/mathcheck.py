"""Answer checking with math-verify (the checker verifiers' MathRubric uses).

math-verify's timeouts use SIGALRM, which only works in the main thread; verifiers'
trainers score rollouts in a background generation thread, where a call with a
timeout raises and a rubric that catches everything (like verifiers' MathRubric) scores
every answer 0 — no reward signal at all. Off the main thread we call it without.
"""

from __future__ import annotations

import threading


def boxed_match(response: str, answer: str) -> float:
    """1.0 when math-verify finds `response` equal to `answer`, else 0.0 (never raises)."""
    if not response.strip():
        return 0.0
    try:
        from math_verify import parse, verify

        timeout = 5 if threading.current_thread() is threading.main_thread() else None
        gold = parse(f"\\boxed{{{answer}}}", parsing_timeout=timeout)
        pred = parse(f"\\boxed{{{response}}}", parsing_timeout=timeout)
        return 1.0 if verify(gold, pred, timeout_seconds=timeout) else 0.0
    except BaseException:  # math-verify raises on unparsable input and on its own timeouts
        return 0.0
