"""The `gsm8k` verifiers environment (vf.load_environment("gsm8k")); see hypolab.trainer.envs.gsm8k."""

from hypolab.trainer.envs.gsm8k import load_environment

__all__ = ["load_environment"]
