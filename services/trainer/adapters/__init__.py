"""Per-stack adapters: an ExperimentSpec -> the installed verifiers version's own config.

Each adapter module imports only its own stack's verifiers API, and is imported only
where that stack is installed (`adapter_for` checks the installed version first).
A spec setting the target version does not have is an error, never silently dropped.
"""

from __future__ import annotations

import logging
from importlib import import_module, metadata
from types import ModuleType
from typing import Any

#: stack -> (verifiers version, adapter module)
STACK_VERIFIERS: dict[str, tuple[str, str]] = {
    "legacy": ("0.1.3.post0", "hypolab.trainer.adapters.legacy"),
    "current": ("0.1.9.post3", "hypolab.trainer.adapters.current"),
}
#: the stacks' background generation threads (legacy: AsyncBatchGenerator, current: Orchestrator)
GENERATION_THREADS = ("async_generator", "orchestrator")

log = logging.getLogger("hypolab.trainer.adapters")


class StackMismatch(RuntimeError):
    """The spec's stack is not the one installed here (one line saying what to do)."""


def spec_value(spec: Any, path: str) -> Any:
    """`spec_value(spec, "training.lora.r")`: a value of a spec by its dotted path."""
    node: Any = spec
    for key in path.split("."):
        node = getattr(node, key)
    return node


def installed_verifiers() -> str | None:
    try:
        return metadata.version("verifiers")
    except metadata.PackageNotFoundError:
        return None


def adapter_for(stack: str) -> ModuleType:
    """The adapter module of `stack`, after checking that its verifiers is installed."""
    wanted, module = STACK_VERIFIERS[stack]
    have = installed_verifiers()
    if have != wanted:
        raise StackMismatch(
            f"stack {stack!r} needs verifiers=={wanted}, this environment has "
            f"{'no verifiers' if have is None else 'verifiers==' + have}: run the {stack} trainer image "
            f"(STACK={stack} make images), or on CPU {'.venv' if stack == 'legacy' else '.venv-current'}/bin/hypolab "
            "(`make install` builds it)")
    return import_module(module)


def stop_generation_threads(trainer: Any) -> None:
    """Stop the trainer's background generation thread, if it has one (None: no trainer yet).

    Best effort: it runs when training is over or failed, and the process is ending anyway."""
    for name in GENERATION_THREADS:
        worker = getattr(trainer, name, None)
        if worker is not None:
            try:
                worker.stop()
            except Exception as exc:
                log.debug("could not stop %s: %s", name, exc)
