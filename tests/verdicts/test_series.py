"""Metric files in the formats researchers have, read by detection; bad input in one line, exit 2."""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hypolab.cli import app
from hypolab.verdicts.series import SeriesError, canonical, read_series

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "curves"
needs_real = pytest.mark.skipif(not (REAL / "labels.json").exists(), reason="../shared/realdata not present")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@needs_real
@pytest.mark.parametrize("table", sorted(p.name for p in REAL.glob("*.raw.csv")) if REAL.exists() else [])
def test_real_trl_progress_tables_read_as_their_metric_events(table):
    """The notebooks' printed tables (CRLF, `rewards / f` names) give the same series as the JSONL."""
    raw = read_series(REAL / table, "reward")
    events = read_series(REAL / table.replace(".raw.csv", ".jsonl"), "reward")
    assert raw.format == "TRL progress table" and events.format == "JSON lines"
    assert raw.points == events.points and len(raw.points) > 10
    assert raw.lines[0] == 2


@needs_real
def test_reward_components_of_a_real_table_by_either_name():
    path = REAL / "Advanced_Llama3_2__3B__GRPO_LoRA__076e0fcc.raw.csv"
    spaced = read_series(path, "rewards / check_answer")
    plain = read_series(path, "rewards/check_answer")
    assert spaced.points == plain.points and spaced.metric == "rewards / check_answer"
    assert read_series(path, "reward_std").points[0] == (1, 0.780387)


def test_name_value_lines_and_metric_events(tmp_path):
    lines = [{"step": s, "name": n, "value": v} for s in range(3) for n, v in (("reward", s / 10), ("kl", 1.0))]
    path = write(tmp_path, "m.jsonl", "\n".join(json.dumps(x) for x in lines))
    assert read_series(path, "reward").points == [(0, 0.0), (1, 0.1), (2, 0.2)]
    events = write(tmp_path, "e.jsonl", '{"experiment_id": "x", "step": 1, "time": 0, "metrics": {"reward": 1.5}}\n'
                                        'not json\n{"step": 2, "metrics": {"reward": NaN}}\n')
    series = read_series(events, "reward")
    assert series.points[0] == (1, 1.5) and math.isnan(series.points[1][1])
    assert series.problems == [f"{events}:2: skipped (Expecting value: line 1 column 1 (char 0)); "
                               "expected a JSON object with a step"]


def test_trainer_state_json(tmp_path):
    state = {"global_step": 3, "log_history": [
        {"step": 1, "loss": 0.0, "reward": -0.5, "rewards/format/mean": 0.1},
        {"step": 2, "loss": 0.1, "reward": 2.5, "rewards/format/mean": 0.4},
        {"step": 3, "train_runtime": 12.0}]}
    path = write(tmp_path, "trainer_state.json", json.dumps(state, indent=2))
    series = read_series(path, "reward")
    assert series.format == "trainer_state.json" and series.points == [(1, -0.5), (2, 2.5)]
    assert series.lines[1] > series.lines[0] > 1  # the lines of the entries in the pretty-printed file
    assert read_series(path, "rewards/format").points == [(1, 0.1), (2, 0.4)]


def test_wandb_history_csv(tmp_path):
    path = write(tmp_path, "history.csv", '"_step","train/global_step","train/reward","train/kl"\n'
                                          '0,1,0.25,0.0\n1,,,0.1\n2,2,0.5,0.2\n3,3,nan,0.2\n')
    series = read_series(path, "reward")
    assert series.metric == "train/reward" and series.points[:2] == [(1, 0.25), (2, 0.5)]
    assert math.isnan(series.points[2][1])
    only_step = write(tmp_path, "h2.csv", "_step,reward\n5,1.0\n6,2.0\n")
    assert read_series(only_step, "reward").points == [(5, 1.0), (6, 2.0)]


def test_pipe_and_tab_progress_tables_with_noise_around(tmp_path):
    pipe = write(tmp_path, "p.txt", " [3/250 00:10 < 10:00, Epoch 0/1]\n"
                                    "| Step | Training Loss | reward | rewards / correctness |\n"
                                    "|---|---|---|---|\n| 1 | 0.000 | -0.75 | 0.0 |\n| 2 | 0.000 | 1.25 | 2.0 |\n")
    assert read_series(pipe, "reward").points == [(1, -0.75), (2, 1.25)]
    assert read_series(pipe, "rewards/correctness").points == [(1, 0.0), (2, 2.0)]
    tab = write(tmp_path, "t.tsv", "Step\tTraining Loss\treward\n1\t0.0\t3.5\n2\t0.0\t4.5\n")
    assert read_series(tab, "reward").points == [(1, 3.5), (2, 4.5)]


def test_verifiers_current_stack_names(tmp_path):
    assert canonical("reward/correct_answer") == "rewards/correct_answer" == canonical("rewards / correct_answer")
    assert canonical("reward/std") == "reward_std" and canonical("train/reward") == "reward"
    path = write(tmp_path, "cur.jsonl", '{"step": 1, "metrics": {"reward": 1.0, "reward/std": 0.3, '
                                        '"reward/correct_answer": 0.5}}\n')
    assert read_series(path, "rewards/correct_answer").points == [(1, 0.5)]
    assert read_series(path, "reward_std").metric == "reward/std"


@pytest.mark.parametrize("text, where, expected", [
    ("", ":", "empty; expected an event per line"),
    ("# notes\nthe run went well\n", ":1:", "not a metrics file; expected"),
    ('{"step": 1, "metrics": {"loss": 0.1}}\n', ":1:", "metric 'reward' never appears (JSON lines); expected one of: loss"),
    ('{"metrics": {"reward": 1}}\n', ":1:", "no step; expected"),
    ("Step,Training Loss,kl\n1,0,0\n", ":1:", "metric 'reward' is not a column; expected one of: Training Loss, kl"),
    ("Step,reward\n1,good\n", ":1:", "no numeric value of 'reward'"),
])
def test_bad_files_are_one_clear_line(tmp_path, text, where, expected):
    path = write(tmp_path, "bad.txt", text)
    with pytest.raises(SeriesError) as err:
        read_series(path, "reward")
    message = str(err.value)
    assert message.startswith(f"{path}{where}") and expected in message and "\n" not in message


def run(*args):
    return CliRunner().invoke(app, ["verdict", *map(str, args)])


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    notes = write(tmp_path, "notes.md", "# not metrics\n")
    result = run("--metrics", notes)
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith(f"verdict: {notes}:1: not a metrics file")
    curve = write(tmp_path, "c.jsonl", "\n".join(json.dumps({"step": s, "metrics": {"reward": 0.1}})
                                                 for s in range(1, 61)))
    result = run("--metrics", curve, "--horizon", 50)
    assert result.exit_code == 2 and f"{curve}:51: step 51 is past the horizon 50" in result.output
    result = run("--metrics", curve, "--metric", "kl")
    assert result.exit_code == 2 and "metric 'kl' never appears" in result.output
    result = run("--metrics", curve, "--reward-range", 1, 0)
    assert result.exit_code == 2 and "expected LO < HI" in result.output


def test_cli_decides_with_horizon_range_and_control(tmp_path):
    rising = [{"step": s, "metrics": {"reward": -3 + 6 * min(1, s / 60) + (0.4 if s % 2 else -0.4)}}
              for s in range(1, 151)]
    flat = [{"step": s, "metrics": {"reward": -3 + (0.4 if s % 3 else -0.4)}} for s in range(1, 151)]
    a, b = write(tmp_path, "a.jsonl", "\n".join(map(json.dumps, rising))), write(tmp_path, "b.jsonl",
                                                                             "\n".join(map(json.dumps, flat)))
    result = run("--metrics", a, "--horizon", 200)
    assert result.exit_code == 0 and result.stdout.startswith("reward: improves at step ")
    assert " of 200; effect +" in result.stdout
    result = run("--metrics", b, "--horizon", 200, "--min-effect", 1.0)
    assert result.stdout.startswith("reward: no improvement yet — step 150 of 200")
    result = run("--metrics", b, "--min-effect", 1.0, "--json")
    decision = json.loads(result.stdout)
    assert decision["decision"] == "no_improvement" and decision["horizon"] == 150
    assert "horizon: the file's last step (150)" in result.output
    result = run("--metrics", a, "--control", b, "--horizon", 150)
    assert result.exit_code == 0 and result.stdout.startswith("reward: improves at step")
    assert "--groups is used by the exact method only" in run("--metrics", a, "--groups", 8).output
    result = run("--metrics", a, "--reward-range", 0, 1, "--groups", 8)
    assert result.exit_code == 0 and "outside the reward range [0, 1]" in result.output
    assert "range widened to [-3.2, 3.4]" in result.output
