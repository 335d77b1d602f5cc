"""`make demo`, the README's no-GPU main job, from a fresh clone's root as a user types it.

The command is the README's (`make demo`, default `--dir outputs/demo`, relative), in a
copy of the working tree with nothing else in it (tests/fixtures/fresh_clone.py). For
the test's cost its `.venv` is the venv running the tests, not one built for the clone.
"""

import re
import subprocess
import sys
import time

from .fixtures.fresh_clone import SAFE_MAKE, make_clone, user_env


def test_make_demo_from_a_fresh_clone_runs_h07_and_shows_the_hidden_context(tmp_path):
    clone = make_clone(tmp_path / "hypolab")
    env = user_env(HYPOLAB_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([*SAFE_MAKE, "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=1800)
    out = done.stdout
    assert done.returncode == 0, (out + done.stderr)[-4000:]
    demo = clone / "outputs" / "demo"  # the default --dir, relative to where `make demo` was typed
    text = " ".join(out.split())  # lines wrap at 80 columns
    findings = re.search(r"H07\.audit-math-python \(math-python, legacy stack\): ([A-Z_, ]+)", text)
    assert findings and "CONTEXT_HIDDEN_FROM_ATTENTION" in findings.group(1), text[-3000:]
    assert "MISSING_ASSISTANT_HEADER" in findings.group(1) and "TOOLS_BLOCK_MISSING" in findings.group(1)
    assert "rehearsal run: not evidence" in text
    page = demo / "h07-audit.html"
    assert page.exists() and "CONTEXT_HIDDEN_FROM_ATTENTION" in page.read_text()
    for eid in ("H06.gsm8k", "H07.math-python"):
        assert (demo / "outputs" / eid / "metrics.jsonl").exists(), eid
    assert not (demo / "outputs" / "demo").exists()  # the relative --dir was not resolved twice
    board = out[out.index("hypolab board"):]
    assert max(len(line) for line in board.splitlines()) <= 80, board  # readable at 80 columns


def test_a_demo_that_does_not_finish_exits_1_naming_the_experiments(tmp_path):
    """Following stops early (`--timeout-s`): exit 1, each unfinished experiment named, its workload stopped."""
    env = user_env(HYPOLAB_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "hypolab", "demo", "--dir", "outputs/demo", "--timeout-s", "3"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    out = " ".join(done.stdout.split())
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"demo: did not succeed: H06\.gsm8k (queued|running)", out), out
    outputs = tmp_path / "outputs" / "demo" / "outputs"  # relative to where it was typed, resolved once
    assert (outputs / "H06.gsm8k" / "spec.yaml").exists()
    deadline = time.monotonic() + 120
    while not (outputs / "H06.gsm8k" / "exit_code").exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert (outputs / "H06.gsm8k" / "exit_code").exists(), "the cancelled training was left running"


def test_a_demo_of_an_unknown_hypothesis_is_one_line_and_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "hypolab", "demo", "--hypothesis", "H02", "--dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == "hypolab demo: no demo for hypothesis 'H02'; choose one of H07, H90"
    assert not any(tmp_path.iterdir())  # nothing started
