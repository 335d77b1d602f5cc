"""Integration fixtures: a real Docker engine and Compose v2, required in CI.

Outside CI a missing engine skips these tests; in CI (`CI=true`) it fails them, so a
broken .ci/run can never pass by running nothing.
"""

import os
import shutil
import subprocess
import uuid

import pytest

from ..conftest import ROOT

LOCAL_BASE = "hypolab/base:bookworm"


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker engine answers (start dockerd)"
    out = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip().lstrip("v").startswith("2."):
        return "Compose v2 is not available as `docker compose`"
    return None


@pytest.fixture(scope="session")
def docker_engine():
    problem = _engine_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker engine with Compose v2: {problem}")
        pytest.skip(problem)
    _remove_test_containers()
    yield
    _remove_test_containers()


def _remove_test_containers() -> None:
    """Experiment containers the tests made (label hypolab.project=hl...), before and after the session."""
    out = subprocess.run(["docker", "ps", "-aq", "--filter", "label=hypolab.project"], capture_output=True, text=True)
    ids = out.stdout.split()
    if ids:
        labels = subprocess.run(["docker", "inspect", "-f", "{{.Id}} {{index .Config.Labels \"hypolab.project\"}}", *ids],
                                capture_output=True, text=True).stdout.split("\n")
        ours = [line.split()[0] for line in labels if len(line.split()) == 2 and line.split()[1].startswith("hl")]
        if ours:
            subprocess.run(["docker", "rm", "-f", *ours], capture_output=True)


def compose(*args, env=None, check=True, timeout=600):
    """Run `docker compose` in the checkout with an optional environment overlay."""
    out = subprocess.run(["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"docker compose {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return out


@pytest.fixture(scope="session")
def local_base_image(docker_engine):
    """Debian bookworm + Python from Debian's packages (`make base-image`), built once."""
    out = subprocess.run(["bash", "docker/base-image.sh", LOCAL_BASE], cwd=ROOT, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return LOCAL_BASE


@pytest.fixture(scope="session")
def coordinator_image(local_base_image):
    """The coordinator image built by Compose from the local base."""
    compose("build", "coordinator", env={"COORDINATOR_BASE_IMAGE": local_base_image}, timeout=1200)
    return "hypolab/coordinator:latest"


@pytest.fixture
def project_name():
    """A throwaway Compose project, always taken down with its volumes."""
    name = f"hltest-{uuid.uuid4().hex[:8]}"
    yield name
    compose("-p", name, "--profile", "train", "down", "-v", "--remove-orphans", check=False)
