"""Where the lab's services answer: the coordinator's default URL and vLLM's health probe.

Ground floor, so that the coordinator, the trainer and the stack tools share one
definition of each instead of keeping their own copies.
"""

from __future__ import annotations

import httpx

#: Where the CLI and workloads look for a coordinator unless told otherwise.
COORDINATOR_PORT = 8080
COORDINATOR_URL = f"http://127.0.0.1:{COORDINATOR_PORT}"


def vllm_health(url: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    """(ok, detail): vLLM's own `GET /health` answers 200 once the model is loaded."""
    try:
        resp = httpx.get(url.rstrip("/") + "/health", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return False, f"{url} unreachable: {type(exc).__name__}"
    if resp.status_code == 200:
        return True, f"{url} healthy"
    return False, f"{url}/health answered {resp.status_code}"
