"""Read one metric's (step, value) series from the files researchers already have.

Formats, by detection (content, not file name):

- JSON lines: our MetricEvents (`{"step": N, "metrics": {...}}`), `{"step", "name",
  "value"}` lines (the coordinator's metrics API), or flat history lines (`_step` /
  `train/global_step` / `step` next to the metrics, as W&B's history JSONL);
- JSON: TRL's `trainer_state.json` (`log_history` entries with `step` and the metrics);
- tables: a W&B history CSV export (`_step` or `train/global_step`), the progress table
  TRL prints (`Step | Training Loss | reward | ...`, as notebooks save it: comma, tab or
  `|` separated, CRLF line ends, `rewards / f` column names, progress lines around it).

Metric names match after normalisation: spaces around `/` dropped, a `train/` prefix
dropped, verifiers' current-stack names mapped (`reward/<f>` -> `rewards/<f>`,
`reward/std` -> `reward_std`), a `/mean` suffix dropped (newer TRL). `--metric` may name
any column, as written or normalised. A file in none of these formats, or without the
metric, is a `SeriesError` naming the file, the line and what was expected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

STEP_KEYS = ("train/global_step", "global_step", "_step", "step", "Step")
FORMATS = ("an event per line (JSON with step and metrics, or step/name/value), a trainer_state.json "
           "with log_history, or a table (CSV, TSV or |-separated; TRL progress table, W&B export) "
           "with a step column")


class SeriesError(ValueError):
    """A metrics file that cannot be used; the message is one line: file, line, what was expected."""


class Series(BaseModel):
    path: str
    format: str
    metric: str  # the name as the file writes it
    points: list[tuple[int, float]]  # as read: NaN kept (clean_series counts it), repeats kept
    lines: list[int]  # the line of each point
    problems: list[str] = []  # skipped lines, one message each


def canonical(name: str) -> str:
    """The comparable form of a metric name (see the module doc)."""
    name = re.sub(r"\s*/\s*", "/", name.strip())
    if name.startswith("train/"):
        name = name[len("train/"):]
    if name == "reward/std":
        return "reward_std"
    if name.startswith("reward/"):
        name = "rewards/" + name[len("reward/"):]
    if name.endswith("/mean") and name.count("/") >= 2:
        name = name[: -len("/mean")]
    return name


def _pick(names, metric: str) -> str | None:
    """The name among `names` that is `metric`: exact first, then normalised."""
    names = [n for n in names if n not in STEP_KEYS]
    if metric in names:
        return metric
    want = canonical(metric)
    return next((n for n in names if canonical(n) == want), None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    return float(text)  # ValueError for text; "nan" and "inf" are numbers here, counted later


def read_series(path: Path | str, metric: str = "reward") -> Series:
    """The metric's series from `path` in any supported format, or a SeriesError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise SeriesError(f"{path}: cannot read ({exc.strerror or exc})") from None
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise SeriesError(f"{path}: empty; expected {FORMATS}")
    head = lines[first].lstrip()
    if head.startswith("{") or head.startswith("["):
        whole = _try_json(text)
        if isinstance(whole, dict) and "log_history" in whole:
            return _from_trainer_state(path, whole, text, metric)
        if head.startswith("{"):
            return _from_json_lines(path, lines, metric)
    return _from_table(path, lines, metric)


def _try_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _result(path, fmt, metric_name, points, where, problems, metric, seen: set[str], line: int) -> Series:
    if not points:
        if metric_name is None:
            names = ", ".join(sorted(seen)[:12]) or "none"
            raise SeriesError(f"{path}:{line}: metric {metric!r} never appears ({fmt}); "
                              f"expected one of: {names}")
        raise SeriesError(f"{path}:{line}: no numeric value of {metric_name!r}; expected numbers in that column")
    return Series(path=str(path), format=fmt, metric=metric_name, points=points, lines=where, problems=problems)


def _from_trainer_state(path: Path, state: dict, text: str, metric: str) -> Series:
    history = state.get("log_history")
    if not isinstance(history, list):
        raise SeriesError(f"{path}:1: log_history is not a list; expected TRL's trainer_state.json")
    points, where, seen, used = [], [], set(), None
    line_of = _line_finder(text)
    for entry in history:
        if not isinstance(entry, dict) or "step" not in entry:
            continue
        seen.update(k for k in entry if k not in STEP_KEYS)
        name = _pick(entry, metric)
        if name is None or _number(entry[name]) is None:
            continue
        used = used or name
        points.append((int(entry["step"]), _number(entry[name])))
        where.append(line_of(entry["step"]))
    return _result(path, "trainer_state.json", used, points, where, [], metric, seen, 1)


def _line_finder(text: str):
    """Line numbers of `"step": N` in a pretty-printed JSON file (1 when not found)."""
    lines: dict[int, int] = {}
    for i, line in enumerate(text.splitlines(), start=1):
        m = re.search(r'"step"\s*:\s*(\d+)', line)
        if m:
            lines.setdefault(int(m.group(1)), i)
    return lambda step: lines.get(int(step), 1)


def _event_value(obj: dict, metric: str) -> tuple[str | None, Any, list[str]]:
    """(name used, value, names seen) of one JSON line, whichever shape it has."""
    if isinstance(obj.get("metrics"), dict):
        name = _pick(obj["metrics"], metric)
        return name, obj["metrics"].get(name) if name else None, list(obj["metrics"])
    if "name" in obj and "value" in obj:
        name = str(obj["name"])
        return (name, obj["value"], [name]) if _pick([name], metric) else (None, None, [name])
    name = _pick(obj, metric)
    return name, obj.get(name) if name else None, [k for k in obj if not k.startswith("_") or k == "_step"]


def _step_of(obj: dict) -> Any:
    for key in STEP_KEYS:
        if obj.get(key) is not None:
            return obj[key]
    raise KeyError("step")


def _from_json_lines(path: Path, lines: list[str], metric: str) -> Series:
    points, where, problems, seen, used = [], [], [], set(), None
    first_bad: tuple[int, str] | None = None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise TypeError("not a JSON object")
            name, value, names = _event_value(obj, metric)
            seen.update(n for n in names if n not in STEP_KEYS)
            if name is None or _number(value) is None:
                continue
            step = int(_step_of(obj))
            used = used or name
            points.append((step, _number(value)))
            where.append(lineno)
        except (ValueError, KeyError, TypeError) as exc:
            detail = "no step" if isinstance(exc, KeyError) else str(exc).splitlines()[0][:80]
            problems.append(f"{path}:{lineno}: skipped ({detail}); expected a JSON object with a step")
            first_bad = first_bad or (lineno, detail)
    if not points and first_bad:
        raise SeriesError(f"{path}:{first_bad[0]}: {first_bad[1]}; expected {FORMATS}")
    return _result(path, "JSON lines", used, points, where, problems, metric, seen, 1)


def _split(line: str, sep: str) -> list[str]:
    if sep == "|":
        line = line.strip()
        line = line[1:] if line.startswith("|") else line
        line = line[:-1] if line.endswith("|") else line
        return [c.strip() for c in line.split("|")]
    if sep == "  ":
        return [c.strip() for c in re.split(r"\s{2,}|\t", line.strip())]
    return [c.strip().strip('"') for c in line.split(sep)]


def _header(lines: list[str]) -> tuple[int, str, list[str]] | None:
    """(index, separator, columns) of the first line that names a step column."""
    for i, line in enumerate(lines[:200]):
        for sep in ("|", "\t", ",", "  "):
            if sep not in line:
                continue
            cols = _split(line, sep)
            if any(c in STEP_KEYS for c in cols) and len(cols) >= 2:
                return i, sep, cols
    return None


def _from_table(path: Path, lines: list[str], metric: str) -> Series:
    found = _header(lines)
    if found is None:
        first = next(i for i, line in enumerate(lines) if line.strip()) + 1
        raise SeriesError(f"{path}:{first}: not a metrics file; expected {FORMATS}")
    index, sep, cols = found
    step_col = next(c for c in STEP_KEYS if c in cols)
    name = _pick(cols, metric)
    if name is None:
        raise SeriesError(f"{path}:{index + 1}: metric {metric!r} is not a column; expected one of: "
                          + ", ".join(c for c in cols if c not in STEP_KEYS and c))
    s_at, v_at = cols.index(step_col), cols.index(name)
    fallback = cols.index("_step") if step_col != "_step" and "_step" in cols else None
    points, where, problems = [], [], []
    for lineno, line in enumerate(lines[index + 1:], start=index + 2):
        cells = _split(line, sep) if line.strip() else []
        if not cells or set("".join(cells)) <= set("-: ") or cells == cols:
            continue  # blank, a |---| rule, a repeated header
        try:
            step_text = cells[s_at] if cells[s_at] or fallback is None else cells[fallback]
            value = _number(cells[v_at])
            if value is None:
                continue  # an empty cell: this row logged other metrics (W&B)
            points.append((int(float(step_text)), value))
            where.append(lineno)
        except (ValueError, IndexError):
            problems.append(f"{path}:{lineno}: skipped (expected {len(cols)} cells with a step and "
                            f"a number under {name!r})")
    fmt = "TRL progress table" if "Training Loss" in cols else "table"
    return _result(path, fmt, name, points, where, problems, metric, set(cols), index + 1)
