"""The vLLM server's lifecycle: one server for the model and stack of the next training.

`VllmServer.ready(exp)` is asked before each training starts: it (re)starts vLLM when the
model, stack or vLLM settings change, when it died, or when a training failed or stalled
(the weight-sync communicator initialises once per server), and says whether it is
healthy yet. The previous server is stopped in a thread of its own, so the lab's lock is
never held while a container takes its 30 s to stop. Handle, key and the restart flag
survive a coordinator restart (the store's meta table).
"""

from __future__ import annotations

import json
import threading

from ...endpoints import vllm_health
from ..runners import Launch, fill_command
from ..store import ExperimentRow
from .workspace import Workspace

META_KEY = "vllm_state"


class VllmServer:
    def __init__(self, ws: Workspace, command: list[str] | None, url: str | None, coordinator_url: str):
        self.ws, self.command, self.url, self.coordinator_url = ws, command, url, coordinator_url
        saved = ws.store.get_meta(META_KEY) or {}
        self.handle: str | None = saved.get("handle")
        self.key: list[str] | None = saved.get("key")
        self.needs_restart: bool = bool(saved.get("needs_restart"))
        self.healthy: bool | None = None
        self.detail = ""
        self._stopping: threading.Thread | None = None

    def _save(self) -> None:
        self.ws.store.set_meta(META_KEY, {"handle": self.handle, "key": self.key, "needs_restart": self.needs_restart})

    def restart_before_next_training(self) -> None:
        self.needs_restart = True
        self._save()

    def ready(self, exp: ExperimentRow) -> bool:
        """vLLM serving this experiment's model and stack; False while it is not ready yet."""
        if self.command is None:
            self.detail = "no vLLM managed by this coordinator (rehearsal: scripted policy)"
            return True
        cfg = exp.config
        key = [cfg["model"], cfg["stack"], json.dumps(cfg["vllm"], sort_keys=True)]
        if self._stopping is not None and self._stopping.is_alive():
            self.detail = "waiting for the previous vLLM to stop"
            return False
        if self.handle and (self.key != key or self.needs_restart or self.ws.runner.poll(self.handle) is not None):
            self._stop_in_background()
            return False
        if self.handle is None:
            self._start(exp, key)
            return False
        return self._probe(cfg)

    def _stop_in_background(self) -> None:
        handle, self.handle = self.handle, None
        self._save()
        self.detail = "stopping the previous vLLM"
        self._stopping = threading.Thread(target=self.ws.runner.stop, args=(handle, 30.0), daemon=True)
        self._stopping.start()

    def _start(self, exp: ExperimentRow, key: list[str]) -> None:
        cfg = exp.config
        command = fill_command(self.command or [], exp.id, cfg, self.ws.output_dir(exp.id), self.coordinator_url)
        launch = Launch(experiment_id=f"vllm.{cfg['stack']}", role="vllm", command=command, stack=cfg["stack"],
                        log_path=self.ws.data_dir / "outputs" / "vllm" / "coordinator.log")
        self.handle, self.key, self.needs_restart = self.ws.runner.start(launch), list(key), False
        self.healthy, self.detail = False, f"starting {cfg['model']} ({cfg['stack']})"
        with self.ws.store.transaction():
            self._save()
            self.ws.store.emit("vllm", {"status": "starting", "model": cfg["model"], "stack": cfg["stack"]})

    def _probe(self, cfg: dict) -> bool:
        if not self.url:
            return True
        ok, _ = vllm_health(self.url, timeout_s=2)
        if ok != self.healthy:
            self.ws.store.emit("vllm", {"status": "healthy" if ok else "unhealthy", "model": cfg["model"]})
        self.healthy = ok
        self.detail = f"{cfg['model']} ({cfg['stack']}) {'healthy' if ok else 'not healthy'}"
        return ok

    def stop_now(self, grace_s: float = 2.0) -> None:
        """Stop the server (tests and shutdown); waits for a stop already under way."""
        if self._stopping is not None:
            self._stopping.join(timeout=grace_s + 30)
        if self.handle:
            self.ws.runner.stop(self.handle, grace_s=grace_s)
