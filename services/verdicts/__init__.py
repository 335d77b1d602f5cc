"""Verdicts: anytime-valid sequential tests on metric curves, and the hypothesis rules
that turn experiments' evidence into a verdict. Pure functions over numbers and specs."""
