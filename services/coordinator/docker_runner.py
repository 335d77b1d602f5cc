"""The Docker runner: trainer, audit and vLLM containers created through the Docker SDK.

One source of truth: the container definitions are compose.yaml's own `trainer` and
`vllm` services, as `docker compose config --format json` resolves them (variables,
overrides and all). This module only translates that JSON into the SDK's arguments —
image, environment, volumes, networks, IPC, device reservations — and adds the
experiment's command, labels and, for audits, no GPUs.

Image tags follow the compose convention `hypolab/<service>:<stack>`, so an experiment
on the `current` stack runs `hypolab/trainer:current` with the same definition.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

from .runners import AUDIT_ARGS, TRAIN_ARGS, Launch, Runner, WorkloadDescription

LABEL_PROJECT = "hypolab.project"
LABEL_EXPERIMENT = "hypolab.experiment"
LABEL_ROLE = "hypolab.role"


def load_compose_config(root: Path, files: list[str], project: str, env_file: Path | None = None) -> dict[str, Any]:
    """`docker compose config --format json` for every service, the trainer's profile included."""
    from ..stack.preflight import find_compose

    compose, _ = find_compose()
    if compose is None:
        raise RuntimeError("the docker runner needs Compose v2 (`docker compose` or `docker-compose`)")
    cmd = [*compose, *[a for f in files for a in ("-f", f)], "-p", project, "--profile", "train"]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    out = subprocess.run([*cmd, "config", "--format", "json"], cwd=root, capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"`{' '.join(cmd)} config` in {root} failed: {out.stderr.strip()[-500:] or 'no output'}")
    return json.loads(out.stdout)


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-").lower()[:60]


class DockerRunner(Runner):
    name = "docker"

    def __init__(self, compose_config: dict[str, Any], project: str, client=None):
        import docker

        self.config = compose_config
        self.project = project
        self.client = client or docker.from_env()
        self._log_threads: dict[str, threading.Thread] = {}

    # -- translation from compose JSON ----------------------------------------------------

    def service(self, role: str) -> dict[str, Any]:
        name = "vllm" if role == "vllm" else "trainer"
        return self.config["services"][name]

    def trainer_gpus(self) -> list[int]:
        return [int(g) for g in self._device_ids(self.service("trainer"))]

    @staticmethod
    def _device_ids(svc: dict[str, Any]) -> list[str]:
        devices = (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
        return [str(i) for d in devices for i in (d.get("device_ids") or [])]

    def image_for(self, role: str, stack: str) -> str:
        """compose's image for the service, tagged for the stack; never anything else."""
        from ..contracts import STACKS

        if stack not in STACKS:
            raise ValueError(f"unknown stack {stack!r}")
        image = self.service(role)["image"]
        repo, _, _tag = image.rpartition(":")
        return f"{repo}:{stack}" if repo else image

    def container_kwargs(self, launch: Launch) -> dict[str, Any]:
        from docker.types import DeviceRequest, Mount

        svc = self.service(launch.role)
        env = {k: v for k, v in (svc.get("environment") or {}).items() if v is not None}
        env.update(launch.env)
        mounts = []
        for vol in svc.get("volumes") or []:
            source = vol.get("source")
            if vol.get("type") == "volume":
                source = (self.config.get("volumes") or {}).get(source, {}).get("name", source)
            mounts.append(Mount(target=vol["target"], source=source, type=vol.get("type", "volume"),
                                read_only=bool(vol.get("read_only"))))
        kwargs: dict[str, Any] = {
            "image": self.image_for(launch.role, launch.stack),
            "command": launch.command,
            "environment": env,
            "mounts": mounts,
            "labels": {LABEL_PROJECT: self.project, LABEL_EXPERIMENT: launch.experiment_id,
                       LABEL_ROLE: launch.role},
            "name": f"{self.project}-{launch.role}-{_slug(launch.experiment_id)}",
            "detach": True,
        }
        if svc.get("working_dir"):
            kwargs["working_dir"] = svc["working_dir"]
        if svc.get("ipc"):
            kwargs["ipc_mode"] = svc["ipc"]
        if svc.get("shm_size"):
            kwargs["shm_size"] = svc["shm_size"]
        if svc.get("network_mode"):
            kwargs["network_mode"] = svc["network_mode"]
        elif svc.get("networks"):
            net = next(iter(svc["networks"]))
            kwargs["network"] = (self.config.get("networks") or {}).get(net, {}).get("name", net)
        if launch.role != "audit":  # audits run on CPU alongside training
            ids = self._device_ids(svc)
            if ids:
                kwargs["device_requests"] = [DeviceRequest(driver="nvidia", device_ids=ids, capabilities=[["gpu"]])]
        if launch.role == "vllm":  # it stands in for compose's vllm: same port, same name on the network
            kwargs["ports"] = {f"{p['target']}/{p.get('protocol', 'tcp')}": (p.get("host_ip") or "127.0.0.1",
                                                                            int(p["published"]))
                               for p in svc.get("ports") or []}
            if "network" in kwargs:
                kwargs["networking_config"] = {
                    kwargs["network"]: self.client.api.create_endpoint_config(aliases=["vllm"])}
            kwargs["name"] = f"{self.project}-vllm-{_slug(launch.stack)}"
        return kwargs

    def default_commands(self) -> tuple[list[str], list[str]]:
        """compose.yaml's trainer command up to `-m hypolab` (accelerate launch with ZeRO-3)."""
        base = self.service("trainer")["command"]
        prefix = base[: base.index("hypolab") + 1]
        return [*prefix, *TRAIN_ARGS], ["python3", "-m", "hypolab", *AUDIT_ARGS]

    def vllm_command(self) -> list[str]:
        """compose.yaml's vLLM command with the model as a placeholder, filled per experiment."""
        cmd = list(self.service("vllm")["command"])
        if "--model" in cmd:
            cmd[cmd.index("--model") + 1] = "{model}"
        return cmd

    # -- Runner --------------------------------------------------------------------------

    def describe(self, launch: Launch) -> WorkloadDescription:
        gpus = [] if launch.role == "audit" else [int(g) for g in self._device_ids(self.service(launch.role))]
        return WorkloadDescription(runner=self.name, image=self.image_for(launch.role, launch.stack), gpus=gpus,
                                   command=launch.command)

    def start(self, launch: Launch) -> str:
        kwargs = self.container_kwargs(launch)
        if launch.role == "vllm":  # one vLLM on its GPU: the one `make up` started gives way
            for other in self.client.containers.list(all=True, filters={"label": [
                    f"com.docker.compose.project={self.project}", "com.docker.compose.service=vllm"]}):
                other.remove(force=True)
        if "network" in kwargs:
            self._ensure_network(kwargs["network"])
        stale = self.client.containers.list(all=True, filters={"name": f"^{kwargs['name']}$"})
        for old in stale:  # a retry reuses the name; the old attempt's exit is already recorded
            old.remove(force=True)
        container = self.client.containers.run(**kwargs)
        self._follow_logs(container.id, launch.log_path)
        return container.id

    def _ensure_network(self, name: str) -> None:
        """The service's network, created as Compose would if `make up` has not made it yet."""
        if self.client.networks.list(names=[name]):
            return
        key = next((k for k, v in (self.config.get("networks") or {}).items() if v.get("name", k) == name), name)
        self.client.networks.create(name, driver="bridge", labels={
            "com.docker.compose.project": self.project, "com.docker.compose.network": key})

    def _follow_logs(self, container_id: str, log_path: Path, rewrite: bool = False) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)

        def pump() -> None:
            try:
                container = self.client.containers.get(container_id)
                with open(log_path, "wb" if rewrite else "ab") as log:
                    for chunk in container.logs(stream=True, follow=True):
                        log.write(chunk)
                        log.flush()
            except Exception:  # the container went away: its exit is read by poll()
                pass

        thread = threading.Thread(target=pump, name=f"logs-{container_id[:12]}", daemon=True)
        thread.start()
        self._log_threads[container_id] = thread

    def poll(self, handle: str) -> int | None:
        import docker

        try:
            container = self.client.containers.get(handle)
        except docker.errors.NotFound:
            return -1
        if container.status in ("created", "running", "restarting", "paused"):
            return None
        return int(container.attrs["State"]["ExitCode"])

    def stop(self, handle: str, grace_s: float = 30.0) -> None:
        import docker

        try:
            self.client.containers.get(handle).stop(timeout=int(grace_s))
        except docker.errors.NotFound:
            pass

    def live(self) -> dict[str, str]:
        found = self.client.containers.list(filters={"label": f"{LABEL_PROJECT}={self.project}"})
        return {c.labels[LABEL_EXPERIMENT]: c.id for c in found if LABEL_EXPERIMENT in c.labels}

    def attach_logs(self, handle: str, log_path: Path) -> None:
        """Follow a container found again after a restart: its whole log, rewritten, then live."""
        if handle not in self._log_threads:
            self._follow_logs(handle, log_path, rewrite=True)
