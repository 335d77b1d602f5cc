"""A real policy on CPU, served like vLLM: chat generation plus `vf-vllm`'s weight-sync routes.

The learning rehearsal's generation engine. It loads a Hugging Face causal LM (float32,
SmolLM2-135M-Instruct from smollm.py) and speaks what both stacks' trainers use:

- `POST /v1/chat/completions`: the prompt rendered with the model's chat template, a
  sampled completion, and vLLM's shapes: `token_id:<n>` logprob tokens
  (`return_tokens_as_token_ids`), the sampled `token_ids` ending with the end-of-turn
  token, `prompt_token_ids`, `finish_reason` "stop" or "length". Concurrent requests
  with the same sampling settings are generated as one left-padded batch. Logprobs are
  those of the temperature-scaled distribution (the trainer's own definition), and
  `system_fingerprint` names the weights they came from (`weights-v<k>`: k syncs applied).
- `POST /v1/completions` with `echo: true, max_tokens: 0`: the logprob of every prompt
  token after the first (`logprobs.token_logprobs`, OpenAI's legacy shape), nothing
  generated: how the weight-sync test compares this model with the trainer's.
- `vf-vllm`'s routes: `/health`, `/get_world_size`, `/init_communicator`,
  `/update_named_param` (here the tensor's bytes arrive in the body; weight_sync.py),
  `/reset_prefix_cache` (applies the staged tensors at once, under the lock generation
  holds, so no batch ever mixes two steps' weights), `/get_num_background_tasks`,
  `/close_communicator`. A tensor of an unknown name, the wrong shape or the wrong
  byte count is refused with a 400 that says which.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..chat import vllm_messages
from .http_json import JsonHandler

log = logging.getLogger("hypolab.trainer.policy_server")
HEADER = "X-Hypolab-Param"


class BadRequest(ValueError):
    """A request this server refuses (answered 400 with the message)."""


@dataclass
class Pending:
    """One chat request waiting for its batch."""

    prompt_ids: list[int]
    sampling: tuple[float, float, int, int]  # temperature, top_p, top_k, max_tokens
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    error: str | None = None


def sampling_of(body: dict[str, Any]) -> tuple[float, float, int, int]:
    temperature = float(body.get("temperature") if body.get("temperature") is not None else 1.0)
    top_p = float(body.get("top_p") if body.get("top_p") is not None else 1.0)
    top_k = int(body.get("top_k") or 0)
    max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 256)
    if temperature < 0 or not 0 < top_p <= 1 or max_tokens < 1:
        raise BadRequest(f"sampling out of range: temperature={temperature}, top_p={top_p}, max_tokens={max_tokens}")
    return temperature, top_p, max(0, top_k), max_tokens


class PolicyServer:
    """The model behind vLLM-shaped routes on 127.0.0.1 (HTTP in threads, one generation worker)."""

    def __init__(self, model_dir: Path, host: str = "127.0.0.1", port: int = 0, seed: int = 0,
                 max_batch: int = 16, batch_wait_s: float = 0.05) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(seed)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.params = dict(self.model.state_dict(keep_vars=True))
        self.eos_id = int(self.tokenizer.eos_token_id)
        self.pad_id = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_id)
        self.max_batch, self.batch_wait_s = max_batch, batch_wait_s
        self.model_lock = threading.Lock()
        self.staged: dict[str, Any] = {}
        self.stage_lock = threading.Lock()
        self.version = 0
        self.synced_params = 0
        self.requests = 0
        self.closed = False
        self.batches = 0
        self.generated_with: list[int] = []  # the weights version of each generated batch
        self.queue: queue.Queue[Pending | None] = queue.Queue()
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self.threads = [threading.Thread(target=self.httpd.serve_forever, name="policy-http", daemon=True),
                        threading.Thread(target=self._worker, name="policy-generate", daemon=True)]

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "PolicyServer":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.closed = True  # kept-alive connections are dropped on their next request
        self.queue.put(None)
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- weights ------------------------------------------------------------------------

    def stage(self, header: dict[str, Any], body: bytes) -> None:
        """Check one parameter from the trainer and keep it until `apply`."""
        import torch

        name = str(header.get("name", ""))
        target = self.params.get(name)
        if target is None:
            raise BadRequest(f"update_named_param: the served model has no parameter {name!r}")
        shape = tuple(int(x) for x in header.get("shape", []))
        if shape != tuple(target.shape):
            raise BadRequest(f"update_named_param: {name} has shape {list(target.shape)}, the trainer sent {list(shape)}")
        dtype = getattr(torch, str(header.get("dtype", "")).removeprefix("torch."), None)
        if not isinstance(dtype, torch.dtype):
            raise BadRequest(f"update_named_param: {name}: unknown dtype {header.get('dtype')!r}")
        expected = target.numel() * torch.empty((), dtype=dtype).element_size()
        if len(body) != expected:
            raise BadRequest(f"update_named_param: {name}: {len(body)} bytes for {list(shape)} {dtype}, expected {expected}")
        tensor = torch.frombuffer(bytearray(body), dtype=dtype).reshape(shape)
        with self.stage_lock:
            self.staged[name] = tensor

    def apply(self) -> int:
        """Copy the staged tensors into the model at once; returns how many were applied."""
        import torch

        with self.stage_lock:
            staged, self.staged = self.staged, {}
        if not staged:
            return 0
        with self.model_lock, torch.no_grad():
            for name, tensor in staged.items():
                self.params[name].data.copy_(tensor.to(self.params[name].dtype))
            self.version += 1
            self.synced_params += len(staged)
        log.info("policy server: weights v%d (%d tensors)", self.version, len(staged))
        return len(staged)

    # --- scoring and generation -----------------------------------------------------------

    def score(self, ids: list[int], temperature: float = 1.0) -> list[float]:
        """log p(ids[t] | ids[:t]) for t >= 1, logits divided by `temperature` (as the trainer does)."""
        import torch

        if len(ids) < 2:
            raise BadRequest("scoring needs a prompt of at least two tokens")
        with self.model_lock, torch.no_grad():
            logits = self.model(input_ids=torch.tensor([ids])).logits[0, :-1] / (temperature or 1.0)
        logps = torch.log_softmax(logits.float(), dim=-1)
        return logps.gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1).tolist()

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """A chat completion, generated in a batch with the requests that arrived with it."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: a non-empty list is required")
        prompt_ids = list(self.tokenizer.apply_chat_template(
            vllm_messages(messages), tools=body.get("tools") or None, add_generation_prompt=True, tokenize=True))
        item = Pending(prompt_ids=prompt_ids, sampling=sampling_of(body))
        self.queue.put(item)
        item.done.wait()
        if item.error or item.result is None:
            raise RuntimeError(item.error or "generation produced nothing")
        return self._chat_response(body, item)

    def _worker(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            batch, deadline = [first], time.monotonic() + self.batch_wait_s
            while len(batch) < self.max_batch:
                try:
                    nxt = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self.queue.put(None)
                    break
                batch.append(nxt)
            for key in {p.sampling for p in batch}:
                group = [p for p in batch if p.sampling == key]
                try:
                    self._generate(group)
                except Exception as exc:  # every waiter gets the reason, none hangs
                    log.exception("policy server: generation failed")
                    for p in group:
                        p.error = f"generation failed: {type(exc).__name__}: {exc}"
                for p in group:
                    p.done.set()

    def _generate(self, group: list[Pending]) -> None:
        import torch

        temperature, top_p, top_k, max_tokens = group[0].sampling
        width = max(len(p.prompt_ids) for p in group)
        ids = torch.tensor([[self.pad_id] * (width - len(p.prompt_ids)) + p.prompt_ids for p in group])
        mask = torch.tensor([[0] * (width - len(p.prompt_ids)) + [1] * len(p.prompt_ids) for p in group])
        sample = temperature > 0
        with self.model_lock, torch.no_grad():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_tokens, do_sample=sample,
                temperature=temperature if sample else None, top_p=top_p if sample else None,
                top_k=top_k if sample else None, eos_token_id=self.eos_id, pad_token_id=self.pad_id,
                return_dict_in_generate=True, output_logits=True)
            version = self.version
        new = out.sequences[:, width:]
        logps = torch.stack([torch.log_softmax(step.float() / (temperature if sample else 1.0), dim=-1)
                             for step in out.logits], dim=1)  # (batch, steps, vocab)
        for row, p in enumerate(group):
            tokens = new[row].tolist()
            cut = tokens.index(self.eos_id) + 1 if self.eos_id in tokens else len(tokens)
            tokens = tokens[:cut]
            values = logps[row, torch.arange(len(tokens)), torch.tensor(tokens)].tolist()
            p.result = {"ids": tokens, "logprobs": values, "version": version,
                        "finish": "stop" if tokens and tokens[-1] == self.eos_id else "length"}
        self.requests += len(group)
        self.batches += 1
        self.generated_with.append(version)

    def _chat_response(self, body: dict[str, Any], item: Pending) -> dict[str, Any]:
        result = item.result or {}
        ids, values = result["ids"], result["logprobs"]
        text_ids = ids[:-1] if result["finish"] == "stop" else ids
        content = self.tokenizer.decode(text_ids, skip_special_tokens=False)
        logprobs = [{"token": f"token_id:{i}", "logprob": v, "bytes": None, "top_logprobs": []}
                    for i, v in zip(ids, values)]
        choice = {"index": 0, "finish_reason": result["finish"],
                  "message": {"role": "assistant", "content": content, "tool_calls": None},
                  "logprobs": {"content": logprobs}, "token_ids": ids}
        n_prompt = len(item.prompt_ids)
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "policy"), "system_fingerprint": f"weights-v{result['version']}",
                "choices": [choice], "prompt_token_ids": item.prompt_ids,
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": len(ids), "total_tokens": n_prompt + len(ids)}}

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        """Scoring only: `prompt` (token ids), `echo: true`, `max_tokens: 0`."""
        prompt = body.get("prompt")
        if not (isinstance(prompt, list) and prompt and all(isinstance(x, int) for x in prompt)):
            raise BadRequest("prompt: a list of token ids is required (this route scores prompts)")
        if not body.get("echo") or int(body.get("max_tokens") or 0) != 0:
            raise BadRequest("this server's /v1/completions only scores prompts: send echo=true, max_tokens=0")
        values = self.score(prompt, float(body.get("temperature") or 1.0))
        with self.model_lock:
            version = self.version
        return {"id": f"cmpl-{uuid.uuid4().hex[:16]}", "object": "text_completion", "created": int(time.time()),
                "model": body.get("model", "policy"), "system_fingerprint": f"weights-v{version}",
                "choices": [{"index": 0, "text": "", "finish_reason": "length",
                             "logprobs": {"tokens": [f"token_id:{i}" for i in prompt],
                                          "token_logprobs": [None, *values]}}]}


def _handler(server: PolicyServer) -> type[JsonHandler]:
    class Handler(JsonHandler):
        protocol_version = "HTTP/1.1"

        def _gone(self) -> bool:
            """A stopped server answers nothing, like a dead one (kept-alive connections included)."""
            if server.closed:
                self.close_connection = True
            return server.closed

        def do_GET(self) -> None:
            if self._gone():
                return
            path = self.path.rstrip("/")
            if path == "/health":
                self._send(200, {"status": "ok", "weights_version": server.version, "synced_params": server.synced_params,
                                 "requests": server.requests, "batches": server.batches})
            elif path == "/get_world_size":
                self._send(200, {"world_size": 1})
            elif path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "policy", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"{self.path}: no such route"}})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self._gone():
                return
            path = self.path.rstrip("/")
            try:
                self._send(200, self._route(path, raw))
            except BadRequest as exc:
                self._send(400, {"error": {"message": str(exc)}})
            except Exception as exc:  # the client gets the reason instead of a dropped connection
                self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})

        def _route(self, path: str, raw: bytes) -> dict[str, Any]:
            if path == "/update_named_param":
                try:
                    header = json.loads(self.headers.get(HEADER) or "")
                except json.JSONDecodeError as exc:
                    raise BadRequest(f"update_named_param: header {HEADER} must be JSON (name, dtype, shape)") from exc
                server.stage(header, raw)
                return {"message": "staged"}
            if path == "/reset_prefix_cache":
                return {"message": "applied", "tensors": server.apply(), "weights_version": server.version}
            if path == "/get_num_background_tasks":
                return {"num_background_tasks": 0}
            if path in ("/init_communicator", "/close_communicator"):
                return {"message": "ok (weights arrive over HTTP)"}
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                raise BadRequest("body is not JSON") from exc
            if path == "/v1/chat/completions":
                return server.submit(body)
            if path == "/v1/completions":
                return server.completions(body)
            raise BadRequest(f"{path}: no such route")

    return Handler
