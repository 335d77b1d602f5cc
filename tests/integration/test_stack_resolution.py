"""Each pinned stack resolves for the GPU image's platform with pip's resolver, installing nothing.

Needs the package index; a broken pin fails here instead of in a 15 GB image build.
"""

import tomllib

import pytest

from hypolab.stack.resolve import IMAGE_PYTHON, read_stack, resolve_stack
from hypolab.stack.settings import stack_pins

from ..conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.network]


def trainer_image_requirements() -> list[str]:
    """What the trainer image installs on top of the stack: hypolab's deps and [trainer] extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["trainer"]]


@pytest.mark.parametrize("stack", ["legacy", "current"])
def test_stack_resolves_for_linux_x86_64(stack):
    result = resolve_stack(stack, trainer_image_requirements())
    assert result.ok, result.error
    assert result.python == IMAGE_PYTHON
    _, sdists = read_stack(stack)
    for name, version in stack_pins(stack).items():
        if name in sdists:
            continue
        assert result.resolved[name] == version, f"{name}: pinned {version}, resolver chose {result.resolved.get(name)}"
    # CUDA wheels were resolved (so the GPU build would get them) but nothing was installed
    assert any(name.startswith("nvidia-") for name in result.resolved)
