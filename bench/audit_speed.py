"""Audit speed: rollouts per second of the audit vs just tokenizing the same text once;
a real `vf-eval` file audited as it is; the trainer replay that observes attention.

    python bench/audit_speed.py [--rollouts 1000] [--stack legacy] [--real FILE] [--no-replay]

1,000 math-python rollouts of realistic length (a few hundred words of reasoning, a
python call or two, the tool's output, a boxed answer; 600-1,500 tokens) are made up
front. Then, side by side in this one run and with the same offline Qwen2.5 tokenizer:
  bare   encode each conversation's chat-template text once;
  audit  the stack's own processing into training sequences, the template reference,
         role labelling and the report (what `hypolab audit --rollouts` does).
The goal (diagnostics issue) is audit <= 3x the bare tokenization.
Then a real file (default: ../shared/realdata/rollouts/math-python--gpt-4.1-mini__49a7458f,
beside the checkout) is read, processed and reported without the replay, and the replay
(`--replay-rollouts` of its rollouts through the stack's trainer on the tiny CPU model)
is timed on its own: the cost `hypolab audit --rollouts` adds to observe attention.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import random
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from hypolab.audit.findings import audit_samples
from hypolab.audit.processing import build_samples
from hypolab.audit.rollouts import Rollout
from hypolab.audit.tokenizer import offline_qwen25
from hypolab.chat import vllm_messages

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "rollouts" / "math-python--gpt-4.1-mini__49a7458f.results.jsonl"

WORDS = ("first compute the total cost then subtract the discount and check the units carefully "
         "the interest compounds yearly so multiply by the rate for each year and round down at the end").split()
TOOLS = [{"type": "function", "function": {"name": "python", "description": "Run Python code and return what it prints.",
          "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}]


def make_rollouts(n: int, seed: int = 0) -> list[Rollout]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        def prose(k: int) -> str:
            return " ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + "."

        value = rng.randint(100, 99999)
        calls = rng.choice([1, 1, 2])
        completion: list[dict] = []
        for c in range(calls):
            code = f"principal = {rng.randint(100, 999)}\nrate = {rng.randint(2, 9)} / 100\n" \
                   f"for year in range({rng.randint(2, 6)}):\n    principal *= 1 + rate\nprint(int(principal))"
            completion.append({"role": "assistant", "content": prose(rng.randint(80, 220)), "tool_calls": [
                {"id": f"call_{i}_{c}", "type": "function", "function": {"name": "python", "arguments": json.dumps({"code": code})}}]})
            completion.append({"role": "tool", "content": str(value), "tool_call_id": f"call_{i}_{c}"})
        completion.append({"role": "assistant", "content": prose(rng.randint(40, 120)) + f"\n\\boxed{{{value}}}"})
        prompt = [{"role": "system", "content": "Use the python tool. Give the final answer in \\boxed{}."},
                  {"role": "user", "content": prose(rng.randint(40, 90)) + " How much is left?"}]
        out.append(Rollout(prompt=prompt, completion=completion, reward=float(rng.random() < 0.5),
                           group=f"g{i // 8}", tools=TOOLS, finish_reasons=["stop"] * (calls + 1)))
    return out


@contextlib.contextmanager
def quiet(verbose: bool) -> Iterator[None]:
    """The replay's trainer chatter (its step's metric dict, library log lines, progress
    bars) kept out of the bench's figures, unless --verbose."""
    if verbose:
        yield
        return
    import datasets

    logging.disable(logging.WARNING)
    datasets.disable_progress_bars()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)
        datasets.enable_progress_bars()


def real_file(path: Path, stack: str, replay: bool, replay_rollouts: int, verbose: bool = False) -> None:
    """A real file, audited as `hypolab audit --rollouts` does: first without the replay, then the replay alone."""
    from hypolab.audits import AuditOptions, run_audit

    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        report = run_audit(AuditOptions(rollouts_file=path, stack=stack, replay=False, work_dir=Path(work)))
        took = time.perf_counter() - start
        print(f"real file         : {path.name.removesuffix('.results.jsonl')}: {report.lines} lines, {report.rollouts} audited, "
              f"{report.groups.count if report.groups else 0} groups in {took:.2f} s "
              f"({report.rollouts / took:.1f} rollouts/s; {', '.join(f.code for f in report.findings)})")
        if not replay:
            print("replay            : skipped (--no-replay)")
            return
        from hypolab.trainer.replay import replay as run_replay

        from hypolab.audit.rollouts import read_file

        with quiet(verbose):
            result = run_replay(stack, read_file(path).rollouts, Path(work), limit=replay_rollouts)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"replay            : {len(result.rollouts)} rollouts, {result.sequences} sequences through the "
              f"{stack} trainer in {result.seconds:.1f} s on {cores} cores "
              f"({result.seconds / max(1, result.sequences):.1f} s per sequence, tiny model built or cached included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--stack", default="legacy")
    parser.add_argument("--real", type=Path, default=REAL, help="a vf-eval results.jsonl (or its run directory)")
    parser.add_argument("--no-replay", action="store_true", help="time the real file without the trainer replay")
    parser.add_argument("--replay-rollouts", type=int, default=4)
    parser.add_argument("--verbose", action="store_true", help="the replay's trainer output and library logs too")
    args = parser.parse_args()
    tok = offline_qwen25()
    rollouts = make_rollouts(args.rollouts)
    texts = [tok.apply_chat_template(vllm_messages(r.messages), tools=r.tools, tokenize=False) for r in rollouts]
    build_samples(args.stack, rollouts[:2], tok, max_seq_len=4096)  # imports and template compilation, untimed

    start = time.perf_counter()
    tokens = sum(len(tok.encode(t, add_special_tokens=False)) for t in texts)
    bare = time.perf_counter() - start

    start = time.perf_counter()
    samples = build_samples(args.stack, rollouts, tok, max_seq_len=4096)
    processing = time.perf_counter() - start
    report = audit_samples(env="math-python", stack=args.stack, rollouts=rollouts, samples=samples, tokenizer=tok,
                           max_seq_len=4096, max_model_len=8192)
    audit = time.perf_counter() - start

    n = len(rollouts)
    print(f"{n} math-python rollouts, {tokens / n:.0f} tokens each on average ({args.stack} stack)")
    print(f"bare tokenization : {n / bare:8.1f} rollouts/s ({bare:.2f} s)")
    print(f"audit             : {n / audit:8.1f} rollouts/s ({audit:.2f} s; the stack's processing alone {processing:.2f} s)")
    print(f"ratio audit/bare  : {audit / bare:.1f}x (goal <= 3x)")
    print(f"findings          : {', '.join(f.code for f in report.findings)}")
    if args.real.exists():
        real_file(args.real, args.stack, not args.no_replay, args.replay_rollouts, args.verbose)
    else:
        print(f"real file         : {args.real} not found (../shared/realdata beside the checkout)")


if __name__ == "__main__":
    main()
