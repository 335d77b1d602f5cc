"""Bench: the learning rehearsal end to end on CPU, and what it measured.

Trains short-sums (H90's experiment) with SmolLM2-135M-Instruct as a learning
rehearsal: the legacy stack's GRPOTrainer, the CPU policy server, weight sync over
HTTP every step, the verdict engine on the live reward curve stopping the run when it
decides. Then prints, from the run's own files:

- seconds per step (median and total, from the metric events' timestamps);
- the step the engine decided at (or that it did not within the horizon);
- the reward at the start (mean of the first 5 steps) and at the decision (mean of the
  5 steps up to it);
- next to the engine's decision, a naive peeking rule's on the same curve: "the mean of
  the last 5 steps beats the first 5 by the minimum effect", checked at every step;
- the weight-sync proof: max |server - trainer| logprob of a fixed sequence after the
  final sync, and how far it moved from the start.

    .venv/bin/python bench/learning_rehearsal.py [--max-steps 60] [--out DIR]
    .venv/bin/python bench/learning_rehearsal.py --from DIR   # only read a finished run

Timings depend on the machine: on a shared 2-core host they are several times slower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

WINDOW = 5


def naive_peek(series: list[tuple[int, float]], min_effect: float) -> tuple[str, int | None]:
    """The naive rule: improves at the first step whose trailing window beats the first window."""
    values = [v for _, v in series]
    if len(values) < 2 * WINDOW:
        return "inconclusive", None
    first = statistics.mean(values[:WINDOW])
    for i in range(2 * WINDOW, len(values) + 1):
        if statistics.mean(values[i - WINDOW:i]) - first >= min_effect:
            return "improves", series[i - 1][0]
    return "no_improvement", series[-1][0]


def run_training(out: Path, max_steps: int | None) -> dict:
    from hypolab.trainer.config import resolve_run
    from hypolab.trainer.run import train

    sets = [f"training.max_steps={max_steps}"] if max_steps else []
    run = resolve_run("short-sums", sets=sets, rehearsal=True, output_dir=out, experiment_id="H90.short-sums")
    return train(run)


def report(out: Path) -> None:
    summary = json.loads((out / "summary.json").read_text())
    live = json.loads((out / "live_verdict.json").read_text())
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [e for e in events if "reward" in e["metrics"]]
    times = [e["time"] for e in steps]
    per_step = [b - a for a, b in zip(times, times[1:])]
    series = [(e["step"], e["metrics"]["reward"]) for e in steps]
    rule, decision = live["rule"], live["decision"]
    print(f"steps run: {summary['global_step']} (horizon {json.loads((out / 'resolved_config.json').read_text())['spec']['training']['max_steps']})")
    if per_step:
        print(f"seconds per step: median {statistics.median(per_step):.1f}, mean {statistics.mean(per_step):.1f}, "
              f"steps 2..{len(times)} took {times[-1] - times[0]:.0f} s")
    start = statistics.mean(v for _, v in series[:WINDOW])
    if decision:
        at = decision["decided_at_step"]
        upto = [v for s, v in series if s <= at][-WINDOW:]
        print(f"verdict engine: {decision['decision']} at step {at} (min_effect {rule['min_effect']}, "
              f"effect {decision['effect']:+.3f}, interval {decision['interval']})")
        print(f"reward: start {start:.3f} (first {WINDOW} steps) -> at the decision {statistics.mean(upto):.3f} "
              f"(steps {at - len(upto) + 1}..{at})")
    else:
        print(f"verdict engine: no decision within {len(series)} steps; reward start {start:.3f}, "
              f"last {WINDOW} steps {statistics.mean(v for _, v in series[-WINDOW:]):.3f}")
    naive, naive_at = naive_peek(series, rule["min_effect"])
    print(f"naive rule (last {WINDOW} vs first {WINDOW}, peeking every step): {naive}"
          + (f" at step {naive_at}" if naive_at is not None else ""))
    sync = summary.get("weight_sync") or {}
    print(f"weight sync: {sync.get('weights_version')}, batches generated with versions {sync.get('generated_with')}; "
          f"max |server - trainer| logprob over {sync.get('tokens')} tokens {sync.get('max_abs_diff_server_vs_trainer'):.2e}, "
          f"max change since start {sync.get('max_abs_change_since_start'):.3f}")
    print("reward curve: " + " ".join(f"{v:.2f}" for _, v in series))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=None, help="the horizon (default: the spec's)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: a temporary one)")
    parser.add_argument("--from", dest="source", type=Path, default=None, help="only report a finished run's directory")
    args = parser.parse_args()
    out = args.source
    if out is None:
        out = args.out or Path(tempfile.mkdtemp(prefix="learning-rehearsal-"))
        run_training(out, args.max_steps)
    if not (out / "summary.json").exists():
        print(f"learning_rehearsal: {out} has no summary.json (the run did not finish)", file=sys.stderr)
        return 2
    report(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
