"""The wheel, installed as the images install it: non-editable, into a clean venv.

Editable installs (`make install`, the other tests) import from the checkout, so a
subpackage or a data file missing from the wheel goes unnoticed there. Here the wheel is
built from a clean copy of the checkout's files (`pip wheel`, an isolated build as a user's;
setuptools' build/ folder of an earlier build cannot leak into it), installed with the
legacy CPU pins (docker/stacks/cpu/legacy.txt, as `make install` does) into a venv of
its own, and used only from a directory outside the checkout: every module of `hypolab`
imports, and `hypolab train --check --rehearsal` passes for every spec in
configs/experiments/. One venv per test session; pip's cache makes a rebuild fast.
Needs the package index for the dependencies (marker `network`).
"""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT
from ..fixtures.fresh_clone import make_clone

pytestmark = pytest.mark.network

SPECS = sorted((ROOT / "configs" / "experiments").glob("*.yaml"))


def run(*cmd, cwd, timeout=1200):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}\n{(done.stdout + done.stderr)[-3000:]}"
    return done.stdout


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the clean venv, a working directory outside the checkout) with the wheel installed."""
    base = tmp_path_factory.mktemp("wheel")
    source = make_clone(base / "source", venv=False)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", base / "dist", source, cwd=base)
    [wheel] = (base / "dist").glob("hypolab-*.whl")
    venv = base / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=base)
    run(venv / "bin" / "pip", "install", "-q", f"{wheel}[audit,trainer,coordinator]",
        "-r", ROOT / "docker" / "stacks" / "cpu" / "legacy.txt", cwd=base)
    work = base / "elsewhere"
    work.mkdir()
    return venv, work


def test_the_wheel_holds_every_module_of_the_package(installed):
    venv, work = installed
    here = {name for _, name, _ in pkgutil.walk_packages([str(ROOT / "services")], "hypolab.")}
    code = ("import importlib, pkgutil, hypolab\n"
            "names = [n for _, n, _ in pkgutil.walk_packages(hypolab.__path__, 'hypolab.')]\n"
            "for n in names:\n"
            "    if n != 'hypolab.__main__': importlib.import_module(n)  # that one runs the CLI: below\n"
            "print(hypolab.__file__); print('\\n'.join(names))")
    out = run(venv / "bin" / "python", "-c", code, cwd=work).splitlines()
    assert "site-packages" in out[0] and not out[0].startswith(str(ROOT)), out[0]
    assert set(out[1:]) == here  # nothing left out of the wheel, every module imports
    assert run(venv / "bin" / "python", "-m", "hypolab", "version", cwd=work).strip()
    installed_dir = Path(out[0]).parent  # package data: every file of services/ that is not code
    data = {p.relative_to(ROOT / "services") for p in (ROOT / "services").rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc")}
    assert {p for p in data if not (installed_dir / p).is_file()} == set()


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_train_check_passes_for_every_spec_outside_the_checkout(installed, spec):
    venv, work = installed
    out = run(venv / "bin" / "hypolab", "train", "--spec", spec, "--check", "--rehearsal", cwd=work, timeout=300)
    assert '"rehearsal": true' in out and f'"spec_file": "{spec}"' in out
