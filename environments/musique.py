"""The `musique` verifiers environment (vf.load_environment("musique")); see hypolab.trainer.envs.musique."""

from hypolab.trainer.envs.musique import load_environment

__all__ = ["load_environment"]
