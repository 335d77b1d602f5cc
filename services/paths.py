"""Where the project's files are: configs/, docker/, compose.yaml.

From a source checkout (editable install) that is the checkout; in the images, where the
package is installed into site-packages, it is the working directory (/app), which holds
copies of configs/ and compose.yaml. `HYPOLAB_ROOT` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    env = os.environ.get("HYPOLAB_ROOT")
    if env:
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "configs").is_dir():
        return checkout
    return Path.cwd().resolve()


ROOT = project_root()
