"""The three environments of the H07 runs, written with verifiers' own classes.

They are installed as the top-level modules `gsm8k`, `math_python` and `musique`
(environments/ in the checkout), so `vf.load_environment("math-python")` finds them
exactly as it finds any installed verifiers environment; no environment code is
downloaded at run time. Each takes `dataset_path` (a local JSONL file) or loads its
real dataset from the Hugging Face hub by name.
"""

ENVIRONMENTS: tuple[str, ...] = ("gsm8k", "math-python", "musique", "short-sums")
