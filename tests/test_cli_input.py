"""The `hypolab` command as a new user meets it: plain help, one-line errors, the token."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

COMMANDS = ["coordinator", "plan", "run", "token", "status", "verdict", "preflight", "up", "health", "train",
            "audit", "demo", "version"]


def hypolab(*args, cwd=ROOT, **env):
    clean = {k: v for k, v in os.environ.items() if k != "HYPOLAB_TOKEN"}
    return subprocess.run([sys.executable, "-m", "hypolab", *args], capture_output=True, text=True, cwd=cwd,
                          env={**clean, "COLUMNS": "80", "PYTHONPATH": str(ROOT), **env}, timeout=120)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_type_tags_and_fits_80_columns(command):
    out = hypolab(command, "-h")
    assert out.returncode == 0, out.stderr
    assert not re.search(r"<(str|int|float|bool|path|file|list\[\w+\]|[a-z]+ range)>", out.stdout), out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) <= 80


def test_token_is_read_beside_the_local_database(tmp_path: Path):
    (tmp_path / "hypolab.sqlite.token").write_text("s3cret\n")
    out = hypolab("token", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout == "s3cret\n"
    db = tmp_path / "lab" / "my.sqlite"
    db.parent.mkdir()
    (db.parent / "my.sqlite.token").write_text("other")
    assert hypolab("token", "--db", str(db), cwd=tmp_path).stdout == "other\n"


def test_missing_token_says_where_it_lives(tmp_path: Path):
    for args, prefix in ((["token"], "hypolab token: no token file at hypolab.sqlite.token"),
                         (["run", "H06", "--no-follow"], "hypolab run: no API token: set HYPOLAB_TOKEN")):
        out = hypolab(*args, cwd=tmp_path)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.startswith(prefix) and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "docker compose exec coordinator cat /data/hypolab.sqlite.token" in out.stderr


def test_run_uses_the_token_beside_the_local_database(tmp_path: Path):
    """With the token file found, `run` goes on to the coordinator (none here: unreachable)."""
    (tmp_path / "hypolab.sqlite.token").write_text("s3cret")
    out = hypolab("run", "H06", "--no-follow", "--url", "http://127.0.0.1:9", cwd=tmp_path)
    assert "no API token" not in out.stderr + out.stdout and "Missing option" not in out.stderr


def test_token_and_database_files_are_git_ignored():
    names = ["hypolab.sqlite", "hypolab.sqlite.token", "hypolab.sqlite-wal", "lab/x.sqlite.token"]
    out = subprocess.run(["git", "check-ignore", "--no-index", *names], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == names


def test_a_rehearsal_prints_its_summary_alone_and_no_info_chatter(tmp_path: Path):
    """stdout is the result (JSON); the trainer's metric dicts and progress go to stderr,
    and the libraries' INFO lines only with --verbose."""
    pytest.importorskip("verifiers")
    out = hypolab("train", "--spec", str(ROOT / "configs/experiments/math-python.yaml"), "--rehearsal",
                  "--max-steps", "1", "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    summary = json.loads(out.stdout)  # nothing else on stdout
    assert summary["rehearsal"] is True and summary["global_step"] == 1
    assert " - INFO - " not in out.stderr


def test_a_scripted_audit_prints_its_report_alone_and_records_its_seed(tmp_path: Path):
    """The one-step rehearsal inside a scripted audit keeps its metric dicts off stdout."""
    pytest.importorskip("verifiers")
    out = hypolab("audit", "--env", "gsm8k", "--scripted", "--seed", "3", "--json", str(tmp_path / "a.json"),
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "{'loss'" not in out.stdout and "train_runtime" not in out.stdout
    assert out.stdout.lstrip().startswith("Conversation structure") and " - INFO - " not in out.stderr
    import json

    assert json.loads((tmp_path / "a.json").read_text())["seed"] == 3


@pytest.mark.parametrize("args, expected", [
    (["plan"], "hypolab plan: Missing argument 'HYPOTHESES'."),
    (["bogus"], "hypolab: No such command 'bogus'. Commands: coordinator, plan, run, token"),
    (["train", "--spec", "x.yaml", "--batch-size", "abc"], "hypolab train: Invalid value for '--batch-size'"),
    (["verdict", "--metrics", "nope.jsonl"], "hypolab verdict: Invalid value for '--metrics'"),
    (["train", "--spec", "nope", "--check"], "hypolab train: "),
    (["audit", "--env", "musiqe", "--scripted"], "hypolab audit: unknown environment 'musiqe': choose one of gsm8k,"),
    (["audit", "--env", "gsm8k", "--stack", "bogus"], "hypolab audit: unknown stack 'bogus' (legacy or current)"),
    (["demo", "--hypothesis", "H02"], "hypolab demo: no demo for hypothesis 'H02'; choose one of H07, H90"),
])
def test_usage_mistakes_are_one_line_with_exit_2(args, expected):
    out = hypolab(*args)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith(expected), out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
