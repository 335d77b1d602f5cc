"""The `short-sums` verifiers environment (vf.load_environment("short-sums")); see hypolab.trainer.envs.short_sums."""

from hypolab.trainer.envs.short_sums import load_environment

__all__ = ["load_environment"]
