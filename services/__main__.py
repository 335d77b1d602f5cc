"""`python -m hypolab ...` is the `hypolab` command (used by `accelerate launch -m hypolab`)."""

from .cli import main

main()
