"""hypolab: turn GRPO debugging hypotheses into controlled experiments and verdicts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hypolab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+src"
