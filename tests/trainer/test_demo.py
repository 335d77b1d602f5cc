"""`hypolab demo`, the README's no-GPU main job, end to end as a user runs it."""

import os
import subprocess
import sys


def test_demo_runs_h07_on_cpu_and_shows_the_hidden_context(tmp_path):
    env = {**os.environ, "HYPOLAB_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "hypolab", "demo", "--dir", str(tmp_path / "demo"), "--timeout-s", "1500"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    out = done.stdout
    assert done.returncode == 0, (out + done.stderr)[-4000:]
    assert "H07.audit-math-python (math-python, legacy stack)" in out
    assert "hides the prompt and tool responses" in out
    assert "rehearsal run: not evidence" in " ".join(out.split())
    page = tmp_path / "demo" / "h07-audit.html"
    assert page.exists() and "CONTEXT_HIDDEN_FROM_ATTENTION" in page.read_text()
    assert (tmp_path / "demo" / "outputs" / "H07.math-python" / "metrics.jsonl").exists()
