"""Weight sync over HTTP: verifiers' `VLLMClient` with only the transport replaced.

Both stacks' trainers sync weights with their own code (`GRPOTrainer._move_model_to_vllm`,
`RLTrainer`'s equivalent: which parameters, PEFT names stripped, LoRA merged before and
unmerged after) through four client methods: `init_communicator`, `update_named_param`,
`reset_prefix_cache`, `get_num_background_tasks`. On a GPU host the client sends a
parameter's name, dtype and shape to `vf-vllm` over HTTP and the tensor itself over NCCL.
`HttpSyncClient` sends the same header and the tensor's bytes in the same request, to the
same routes of the CPU policy server (policy_server.py). Nothing else changes.

A failure (server gone, a route answering an error such as a wrong shape) raises
`WeightSyncError` naming the parameter and the server's reason; the trainer's step fails
with it instead of waiting.
"""

from __future__ import annotations

import json
import logging
import sys
import types
from typing import Any

log = logging.getLogger("hypolab.trainer.weight_sync")

#: where each stack's trainer finds its weight-sync client (legacy, current)
CLIENT_MODULES = ("verifiers.inference.vllm_client", "verifiers.rl.inference.client")
HEADER = "X-Hypolab-Param"
TIMEOUT_S = 60.0


class WeightSyncError(RuntimeError):
    """A weight sync that did not land (one line: which parameter, what the server said)."""


def tensor_bytes(weights: Any) -> bytes:
    """The tensor's raw bytes (any dtype, bf16 included), row-major."""
    import torch

    flat = weights.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


class HttpSyncClient:
    """verifiers' VLLMClient interface; tensors travel in the HTTP body, not over NCCL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, group_port: int = 51216,
                 connection_timeout: float = 0.0, **_: Any) -> None:
        import requests

        self.host, self.server_port = host, port
        self.server_url = f"http://{host}:{port}"
        self.session = requests.Session()
        self.synced_params = 0
        self.synced_bytes = 0
        self.check_server(connection_timeout)

    def _post(self, route: str, what: str, **kwargs: Any) -> Any:
        import requests

        try:
            response = self.session.post(f"{self.server_url}/{route}", timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            raise WeightSyncError(f"weight sync ({what}): policy server at {self.server_url} unreachable: "
                                  f"{type(exc).__name__}") from exc
        if response.status_code != 200:
            try:
                reason = response.json().get("error", {}).get("message") or response.text
            except ValueError:
                reason = response.text
            raise WeightSyncError(f"weight sync ({what}): {route} answered {response.status_code}: {reason}")
        return response.json()

    def check_server(self, total_timeout: float = 0.0, retry_interval: float = 2.0) -> None:
        import requests

        try:
            ok = self.session.get(f"{self.server_url}/health", timeout=max(5.0, total_timeout)).status_code == 200
        except requests.RequestException:
            ok = False
        if not ok:
            raise WeightSyncError(f"policy server at {self.server_url} is not healthy (GET /health)")

    def init_communicator(self) -> None:
        self._post("init_communicator", "init", json={"host": self.host, "port": 0, "world_size": 1})
        log.info("weight sync: tensors go to %s over HTTP (no NCCL communicator)", self.server_url)

    def update_named_param(self, name: str, weights: Any) -> None:
        header = {"name": name, "dtype": str(weights.dtype), "shape": list(weights.shape)}
        body = tensor_bytes(weights)
        self._post("update_named_param", name, data=body,
                   headers={HEADER: json.dumps(header), "Content-Type": "application/octet-stream"})
        self.synced_params += 1
        self.synced_bytes += len(body)

    def reset_prefix_cache(self) -> None:
        self._post("reset_prefix_cache", "apply")

    def get_num_background_tasks(self) -> int:
        return int(self._post("get_num_background_tasks", "background tasks")["num_background_tasks"])

    def close_communicator(self) -> None:
        try:
            self._post("close_communicator", "close")
        except WeightSyncError:
            pass  # the server may already be gone at exit; nothing is left to release


def install_client(cls: type, doc: str) -> None:
    """Make verifiers' `VLLMClient` (both stacks' modules) `cls`; `doc` says so in the modules.

    The real modules import vllm at load time, which a CPU host does not have; a module
    registered in sys.modules before the trainer is imported is the one it gets."""
    for name in CLIENT_MODULES:
        module = types.ModuleType(name)
        module.VLLMClient = cls  # type: ignore[attr-defined]
        module.__doc__ = doc
        sys.modules[name] = module


def install_http_sync() -> None:
    """Make verifiers' `VLLMClient` (both stacks' modules) an HttpSyncClient."""
    install_client(HttpSyncClient, "hypolab learning rehearsal: weight sync over HTTP (see hypolab.trainer.weight_sync)")
