"""Dataset loading shared by the environments: a local JSONL file or a hub dataset."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Callable


def sample_path(env: str) -> Path:
    """The small sample this project ships for `env` (used by tests and rehearsals)."""
    name = env.replace("-", "_")
    return Path(str(resources.files("hypolab.trainer.envs").joinpath(f"data/{name}.jsonl")))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from exc
    if not rows:
        raise ValueError(f"{path}: no examples")
    return rows


def load_rows(
    dataset_path: str | None,
    dataset_name: str,
    dataset_config: str | None,
    split: str,
    num_examples: int,
    convert: Callable[[dict[str, Any]], dict[str, Any] | None],
):
    """A `datasets.Dataset` of converted rows from a JSONL file or the hub (by name)."""
    from datasets import Dataset, load_dataset

    if dataset_path:
        raw: Any = read_jsonl(dataset_path)
    else:  # the real dataset, from the hub or the local Hugging Face cache
        raw = load_dataset(dataset_name, dataset_config, split=split)
    rows = []
    for row in raw:
        converted = convert(dict(row))
        if converted is not None:
            rows.append(converted)
        if 0 < num_examples <= len(rows):
            break
    if not rows:
        raise ValueError(f"no usable examples in {dataset_path or dataset_name}")
    return Dataset.from_list(rows)
