"""The math-python environment's tool: run Python in a fresh subprocess, time-limited,
output capped, never in the trainer's own interpreter."""

from __future__ import annotations

import subprocess
import sys

TIMEOUT_S = 10.0
OUTPUT_CAP = 2000


def run_python(code: str, timeout_s: float = TIMEOUT_S, output_cap: int = OUTPUT_CAP) -> str:
    """Run `code` with `python -I` and return its stdout+stderr, capped to `output_cap` chars."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", code],
            capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
        )
        out = done.stdout + (done.stderr if done.returncode else "")
    except subprocess.TimeoutExpired:
        return f"Error: execution timed out after {timeout_s:g} s"
    out = out.strip()
    if len(out) > output_cap:
        out = out[:output_cap] + f"\n... (output truncated to {output_cap} characters)"
    return out or "(no output; use print() to see values)"
