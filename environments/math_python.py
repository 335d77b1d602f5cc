"""The `math-python` verifiers environment (vf.load_environment("math-python")); see hypolab.trainer.envs.math_python."""

from hypolab.trainer.envs.math_python import load_environment

__all__ = ["load_environment"]
