"""The CPU rehearsal: the real trainer, a tiny model, a scripted policy instead of vLLM.

What is replaced, and nothing else:
- the model: a randomly initialised Qwen2 with a few small layers and Qwen2.5's
  vocabulary, saved with the offline Qwen2.5 tokenizer (`tiny_model`);
- the generation engine: `ScriptedServer`, an OpenAI-compatible server on 127.0.0.1
  shaped like vLLM's answers (scripted_policy.py);
- weight sync: verifiers' `VLLMClient` (NCCL, which needs vllm) becomes `NoSyncClient`,
  whose sync methods do nothing and say so in the log.
The environment's rollout, parsing, rubric and processing code, the trainer's batching,
loss and optimizer all run as on a GPU host.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..audit.tokenizer import offline_qwen25
from .weight_sync import install_client

log = logging.getLogger("hypolab.trainer.rehearsal")

TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True)


def tiny_model(directory: Path, seed: int = 0) -> Path:
    """A tiny random Qwen2 (Qwen2.5's vocabulary) and the offline tokenizer, saved to `directory`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if (directory / "config.json").exists() and (directory / "tokenizer.json").exists():
        return directory
    tokenizer = offline_qwen25()
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(tokenizer), bos_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         torch_dtype="float32", **TINY)
    model = Qwen2ForCausalLM(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


class NoSyncClient:
    """Stands in for verifiers' VLLMClient in a rehearsal: weight sync is a no-op."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, *args: Any, **kwargs: Any) -> None:
        self.host, self.port = host, port
        self.synced_params = 0

    def check_server(self, *args: Any, **kwargs: Any) -> None:
        return None

    def init_communicator(self) -> None:
        log.info("rehearsal: no NCCL communicator (weight sync is a no-op)")

    def update_named_param(self, name: str, weights: Any) -> None:
        self.synced_params += 1

    def reset_prefix_cache(self) -> None:
        return None

    def get_num_background_tasks(self) -> int:
        return 0

    def close_communicator(self) -> None:
        return None


def install_no_sync() -> None:
    """Make verifiers' `VLLMClient` (both stacks' modules) a NoSyncClient (weight_sync.install_client)."""
    install_client(NoSyncClient, "hypolab rehearsal: weight sync is a no-op (see hypolab.trainer.rehearsal)")
