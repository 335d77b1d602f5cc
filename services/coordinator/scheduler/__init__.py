"""The scheduler, split by job (lab.py says which part does what); `Lab` assembles them."""

from .lab import Lab
from .workspace import LabError, tail

__all__ = ["Lab", "LabError", "tail"]
