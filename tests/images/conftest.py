"""The GPU images (docker/gpu.Dockerfile), built once per session by Compose as `make up` would.

Their base is $GPU_BASE_IMAGE when set (a host that reaches the official vLLM image),
else the Debian base of `make base-image`, with the stack's pinned CUDA wheels from
the package index. A cold build downloads and unpacks ~10 GB (README, "Building images
without an image registry"); with Docker's cache warm it takes seconds.
"""

import os
import subprocess

import pytest

from ..conftest import ROOT
from ..integration.conftest import LOCAL_BASE, compose, docker_engine, local_base_image, project_name  # noqa: F401

STACK = "legacy"
BUILD_TIMEOUT_S = 3600


def image_env() -> dict[str, str]:
    return {"GPU_BASE_IMAGE": os.environ.get("GPU_BASE_IMAGE") or LOCAL_BASE, "STACK": STACK}


@pytest.fixture(scope="session")
def gpu_images(docker_engine):
    """hypolab/vllm:legacy and hypolab/trainer:legacy, built from the current checkout."""
    if image_env()["GPU_BASE_IMAGE"] == LOCAL_BASE:
        out = subprocess.run(["bash", "docker/base-image.sh", LOCAL_BASE], cwd=ROOT, capture_output=True,
                             text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-3000:]
    compose("--progress", "plain", "--profile", "train", "build", "vllm", "trainer",
            env=image_env(), timeout=BUILD_TIMEOUT_S)
    # the images an earlier build left untagged (docker/gpu.Dockerfile labels them)
    subprocess.run(["docker", "image", "prune", "-f", "--filter", "label=org.hypolab.gpu-image"],
                   capture_output=True, timeout=300)
    return {"vllm": f"hypolab/vllm:{STACK}", "trainer": f"hypolab/trainer:{STACK}"}


def in_image(image: str, *command: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run a command in a throwaway container of `image` (no network: nothing may be fetched)."""
    flags = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
    return subprocess.run(["docker", "run", "--rm", "--network", "none", *flags, image, *command],
                          capture_output=True, text=True, timeout=timeout)
