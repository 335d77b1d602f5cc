"""docker/check_stack.py --absent-ok: a plain base (nothing installed) passes, a wrong version does not.

No Docker needed: the script is the first step of docker/gpu.Dockerfile's stack stage,
where a Debian base has no vllm or torch and the official vLLM image must carry the pins.
"""

import subprocess
import sys

import pydantic

from ..conftest import ROOT

SCRIPT = ROOT / "docker" / "check_stack.py"


def check(stacks, *args):
    return subprocess.run([sys.executable, str(SCRIPT), str(stacks), *args], capture_output=True, text=True)


def test_absent_packages_pass_and_installed_ones_still_must_match(tmp_path):
    (tmp_path / "mine.txt").write_text("vllm==0.0.0\nno-such-package-here==1.0\npydantic==0.0.1  # not what is installed\n")
    absent = check(tmp_path, "mine", "--absent-ok", "no-such-package-here")
    assert absent.returncode == 0, absent.stderr
    assert check(tmp_path, "mine", "no-such-package-here").returncode == 1  # without the flag: a mismatch

    wrong = check(tmp_path, "mine", "--absent-ok", "no-such-package-here", "pydantic")
    assert wrong.returncode == 1
    assert f"pydantic {pydantic.VERSION} (stack mine pins 0.0.1)" in wrong.stderr
