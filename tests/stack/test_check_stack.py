"""docker/check_stack.py: an image build stops early when its base does not match the stack."""

import subprocess
import sys

from ..conftest import ROOT

SCRIPT = ROOT / "docker" / "check_stack.py"
STACKS = ROOT / "docker" / "stacks"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), str(STACKS), *args], capture_output=True, text=True)


def test_unknown_stack():
    out = run("nightly")
    assert out.returncode == 1 and out.stderr.strip() == "STACK=nightly: unknown stack; choose one of current, legacy"


def test_mismatch_names_the_package_and_the_fix():
    out = run("legacy", "vllm")  # no vLLM in the test environment: a mismatch by definition
    assert out.returncode == 1
    assert "vllm not installed (stack legacy pins 0.10.1.1)" in out.stderr
    assert "BASE_IMAGE=vllm/vllm-openai:v0.10.1.1" in out.stderr


def test_match_passes(tmp_path):
    import pydantic

    (tmp_path / "mine.txt").write_text(f"vllm==0.0.0\npydantic=={pydantic.VERSION}  # comment\n")
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "mine", "pydantic"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"pydantic=={pydantic.VERSION}" in out.stdout
