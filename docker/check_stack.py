"""Fail an image build early when the base image does not carry the stack's pins.

    python3 check_stack.py STACKS_DIR STACK [--absent-ok] [package ...]

Reads docker/stacks/<STACK>.txt and compares the installed versions of the named
packages (default: vllm torch) with their pins. Standard library only: it runs in
the base image before anything of ours is installed. With --absent-ok a package
that is not installed passes (a plain Debian base, where the build installs the
pinned wheels itself); one installed at another version still fails.
"""

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def main() -> int:
    args = sys.argv[1:]
    absent_ok = "--absent-ok" in args
    stacks_dir, stack, *names = [a for a in args if a != "--absent-ok"]
    path = Path(stacks_dir) / f"{stack}.txt"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in Path(stacks_dir).glob("*.txt")))
        print(f"STACK={stack}: unknown stack; choose one of {known}", file=sys.stderr)
        return 1
    pins = {}
    for line in path.read_text().splitlines():
        req = line.split("#", 1)[0].strip()
        if "==" in req:
            name, pin = req.split("==", 1)
            pins[name.strip().lower()] = pin.strip()
    bad = []
    for name in names or ["vllm", "torch"]:
        try:
            have = version(name)
        except PackageNotFoundError:
            if absent_ok:
                continue
            have = "not installed"
        if have.split("+")[0] != pins[name]:
            bad.append(f"{name} {have} (stack {stack} pins {pins[name]})")
    if bad:
        print(
            "BASE_IMAGE does not match the stack: " + "; ".join(bad)
            + f". Build with BASE_IMAGE=vllm/vllm-openai:v{pins['vllm']} (make images does this).",
            file=sys.stderr,
        )
        return 1
    print(f"image matches stack {stack}: " + ", ".join(f"{n}=={pins[n]}" for n in names or ["vllm", "torch"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
