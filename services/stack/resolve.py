"""Check that a pinned stack resolves for the GPU images' platform, installing nothing.

A broken pin should fail here in a minute, not after a user has pulled a 15 GB vLLM
image. We ask pip's own resolver (`pip install --dry-run --report`) for Linux x86_64
and the vLLM image's Python, binary wheels only, so no CUDA wheel is installed. With
`--use-feature=fast-deps` pip reads each wheel's METADATA through HTTP range requests,
so none is downloaded either: an index or mirror that does not serve PEP 658 metadata
files would otherwise cost several GB of CUDA wheels per stack.

Two kinds of packages have no wheel on the index and need care:
- pins marked `# sdist` in the stack file (deepspeed: its setup.py wants torch just to
  be read) are only checked to exist at that version; their own dependencies are not
  resolved;
- pure-Python dependencies that happen to ship only an sdist (e.g. `wget`) are built
  into a wheel on this host and offered to the resolver, which then proceeds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from pydantic import BaseModel

from .settings import STACKS_DIR

#: The official vLLM images of both stacks run Python 3.12 on Ubuntu 22.04 (glibc 2.35).
IMAGE_PYTHON = "3.12"
GLIBC_MINOR = 35

_NO_MATCH = re.compile(r"No matching distribution found for ([A-Za-z0-9_.\-]+)([^\s)]*)")


class StackResolution(BaseModel):
    stack: str
    ok: bool
    python: str
    resolved: dict[str, str] = {}  # package -> version pip would install
    sdist_only: dict[str, str] = {}  # pins checked for existence only
    built_wheels: list[str] = []  # pure-Python sdists we built to let the resolver proceed
    error: str = ""


def canonical(name: str) -> str:
    """PEP 503 name: `liger_kernel` and `Liger-Kernel` are both `liger-kernel`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_stack(stack: str, stacks_dir: Path = STACKS_DIR) -> tuple[list[str], dict[str, str]]:
    """(requirement lines to resolve, {name: version} of the `# sdist` pins)."""
    reqs, sdists = [], {}
    for line in (stacks_dir / f"{stack}.txt").read_text().splitlines():
        req, _, comment = line.partition("#")
        req = req.strip()
        if not req:
            continue
        if comment.strip() == "sdist":
            name, _, version = req.partition("==")
            sdists[name.strip()] = version.strip()
        else:
            reqs.append(req)
    return reqs, sdists


def platform_args() -> list[str]:
    """pip does not expand `manylinux_2_35` to older tags by itself: list them all."""
    tags = [f"manylinux_2_{v}_x86_64" for v in range(GLIBC_MINOR, 16, -1)]
    tags += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def _pip(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout)


def version_exists(name: str, version: str) -> bool:
    out = _pip("index", "versions", name, timeout=120)
    found = re.search(r"Available versions:\s*(.*)", out.stdout)
    return bool(found) and version in [v.strip() for v in found.group(1).split(",")]


def _build_pure_wheel(requirement: str, wheel_dir: Path) -> str | None:
    """Build a wheel from an sdist; keep it only if it is pure Python (py3-none-any)."""
    before = set(wheel_dir.glob("*.whl"))
    out = _pip("wheel", "--no-deps", "--no-binary", ":all:", "-w", str(wheel_dir), requirement, timeout=300)
    new = set(wheel_dir.glob("*.whl")) - before
    if out.returncode != 0 or not new:
        return None
    wheel = new.pop()
    if not wheel.name.endswith("-none-any.whl"):
        wheel.unlink()
        return None
    return wheel.name


def resolve_stack(stack: str, extra: list[str] = (), python: str = IMAGE_PYTHON) -> StackResolution:
    """Resolve docker/stacks/<stack>.txt plus `extra` requirements for the GPU image."""
    reqs, sdists = read_stack(stack)
    result = StackResolution(stack=stack, ok=False, python=python, sdist_only=sdists)
    for name, version in sdists.items():
        if not version_exists(name, version):
            result.error = f"{name}=={version}: no such version on the index"
            return result
    with tempfile.TemporaryDirectory() as tmp:
        wheel_dir, report = Path(tmp) / "wheels", Path(tmp) / "report.json"
        wheel_dir.mkdir()
        for _ in range(5):  # each round may build one more pure-Python wheel
            out = _pip(
                "install", "--dry-run", "--use-feature=fast-deps", "--ignore-installed", "--target", str(Path(tmp) / "never"),
                "--only-binary=:all:", *platform_args(), "--python-version", python,
                "--implementation", "cp", "--find-links", str(wheel_dir),
                "--report", str(report), *reqs, *extra,
            )
            if out.returncode == 0:
                data = json.loads(report.read_text())
                result.resolved = {
                    canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in data["install"]
                }
                result.ok = True
                return result
            missing = _NO_MATCH.search(out.stderr)
            if not missing:
                break
            requirement = missing.group(1) + missing.group(2)
            built = _build_pure_wheel(requirement, wheel_dir)
            if built is None:
                break
            result.built_wheels.append(built)
        lines = [l for l in out.stderr.splitlines() if l.startswith("ERROR")] or out.stderr.splitlines()[-5:]
        result.error = " | ".join(lines)[-2000:]
        return result
