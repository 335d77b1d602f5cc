"""A scripted policy served over the OpenAI chat API, shaped like vLLM's answers.

The CPU rehearsal and `hypolab audit --scripted` replace only the generation engine:
verifiers' environments call this server through their own OpenAI client exactly as
they call vLLM. Like vLLM (with the hermes tool parser) it renders the prompt with the
model's chat template and tools, returns the sampled ids as `token_id:<n>` logprob
tokens (`return_tokens_as_token_ids`), the ids themselves and the prompt ids
(`return_token_ids`, what verifiers 0.1.8+ trains on), ends a turn with `<|im_end|>`,
cuts at `max_tokens` with `finish_reason="length"`, and parses `<tool_call>` blocks
into OpenAI tool calls.

The policy itself: per environment, a plausible trajectory (python tool call then a
boxed answer; retrieve calls then a cited answer; a boxed answer in one turn), right
or wrong at random (seeded), so that groups have reward variance as in real runs.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from ..chat import vllm_messages
from .http_json import JsonHandler

TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)


@dataclass
class Example:
    """What the policy knows about a question: its answer and (MuSiQue) the document ids."""

    answer: str
    supporting: list[int] = field(default_factory=list)


class ScriptedPolicy:
    """Chooses the assistant text for a conversation; right with probability `p_correct`."""

    def __init__(self, examples: dict[str, Example] | None = None, seed: int = 0,
                 p_correct: float = 0.5, verbosity: int = 1) -> None:
        self.examples = examples or {}
        self.seed = seed
        self.p_correct = p_correct
        self.verbosity = max(1, verbosity)
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}

    def draws(self, messages: list[dict[str, Any]]) -> random.Random:
        """The random draws of one request, fixed by the seed, the conversation and how many
        times that same conversation was asked before -- not by the order in which concurrent
        requests arrive, so that identical inputs give identical rollouts and reports."""
        key = hashlib.sha256(json.dumps(messages, sort_keys=True, default=str).encode()).hexdigest()
        with self.lock:
            n = self.seen[key] = self.seen.get(key, -1) + 1
        return random.Random(f"{self.seed}:{key}:{n}")

    def _coin(self, rng: random.Random) -> bool:
        return rng.random() < self.p_correct

    def _filler(self, question: str) -> str:
        words = re.findall(r"\w+", question)[:12]
        line = "Let me restate what is given: " + " ".join(words) + "."
        return " ".join([line] * self.verbosity)

    def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
        """The raw assistant text (tool calls written as hermes `<tool_call>` blocks)."""
        rng = self.draws(messages)
        question = next((str(m.get("content") or "") for m in messages if m.get("role") == "user"), "")
        example = self.examples.get(question, Example(answer="0"))
        tool_names = {t.get("function", {}).get("name") for t in tools or []}
        tool_turns = [m for m in messages if m.get("role") == "tool"]
        if "python" in tool_names:
            return self._math_python(example, tool_turns, question, rng)
        if "retrieve" in tool_names:
            return self._musique(example, tool_turns, question, rng)
        answer = example.answer if self._coin(rng) else _wrong(example.answer)
        return f"{self._filler(question)}\nWorking through the steps, the result is {answer}.\n\\boxed{{{answer}}}"

    def _math_python(self, example: Example, tool_turns: list[dict[str, Any]], question: str,
                     rng: random.Random) -> str:
        if not tool_turns:
            value = example.answer if self._coin(rng) else _wrong(example.answer)
            call = {"name": "python", "arguments": {"code": f"result = {value}\nprint(result)"}}
            check = {"name": "python", "arguments": {"code": f"print(type({value}).__name__)"}}
            calls = [call, check] if rng.randrange(3) == 0 else [call]  # sometimes two calls: consecutive tool turns
            blocks = "\n".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)
            return f"{self._filler(question)}\nI will compute this with Python.\n{blocks}"
        result = str(tool_turns[0].get("content", "")).strip().splitlines()[0] if tool_turns else "0"
        return f"The computation printed {result}.\n\\boxed{{{result}}}"

    def _musique(self, example: Example, tool_turns: list[dict[str, Any]], question: str,
                 rng: random.Random) -> str:
        if len(tool_turns) < 2:
            query = question if not tool_turns else f"{example.answer if self._coin(rng) else 'unknown'} {question[:40]}"
            call = {"name": "retrieve", "arguments": {"query": query}}
            return f"<think>{self._filler(question)}</think>\n<tool_call>\n{json.dumps(call)}\n</tool_call>"
        right = self._coin(rng)
        answer = example.answer if right else _wrong(example.answer)
        cites = ", ".join(str(i) for i in (example.supporting if right else example.supporting[:1]))
        return (f"<think>{self._filler(question)} The documents connect the two facts.</think>\n"
                f"<cite>{cites}</cite>\n<answer>{answer}</answer>")


def _wrong(answer: str) -> str:
    try:
        return str(int(float(answer)) + 1)
    except ValueError:
        return "unknown"


def parse_tool_calls(text: str, rng: random.Random) -> tuple[str | None, list[dict[str, Any]]]:
    """vLLM's hermes parser, as seen by the client: content before the first call, the calls."""
    calls = []
    for match in TOOL_CALL.finditer(text):
        try:
            body = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        calls.append({
            "id": f"chatcmpl-tool-{rng.getrandbits(64):016x}", "type": "function",
            "function": {"name": body.get("name", ""), "arguments": json.dumps(body.get("arguments", {}), ensure_ascii=False)},
        })
    if not calls:
        return text, []
    content = text[: text.find("<tool_call>")].rstrip("\n")
    return (content or None), calls


class ScriptedServer:
    """The policy behind an OpenAI-compatible HTTP server on 127.0.0.1 (a thread)."""

    def __init__(self, tokenizer: Any, policy: ScriptedPolicy, host: str = "127.0.0.1", port: int = 0) -> None:
        self.tokenizer = tokenizer
        self.policy = policy
        self.requests = 0
        self.tokenize_lock = threading.Lock()
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/health":
                    self._send(200, {"status": "ok"})
                elif self.path.startswith("/v1/models"):
                    self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    return self._send(400, {"error": {"message": "body is not JSON"}})
                if self.path.startswith("/v1/chat/completions"):
                    return self._send(200, server.chat(body))
                self._send(404, {"error": {"message": f"{self.path}: the scripted policy serves chat only"}})

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="scripted-policy", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages") or []
        tools = body.get("tools") or None
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 1024
        text = self.policy.respond(messages, tools)
        with self.tokenize_lock:  # fast tokenizers are not safe across threads for padding state
            prompt_ids = self.tokenizer.apply_chat_template(
                vllm_messages(messages), tools=tools, add_generation_prompt=True, tokenize=True)
            ids = self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.eos_token_id]
            finish = "stop"
            if len(ids) > max_tokens:
                ids, finish = ids[:max_tokens], "length"
                text = self.tokenizer.decode(ids)
            self.requests += 1
        rng = random.Random(hashlib.sha256((json.dumps(messages, sort_keys=True, default=str) + text).encode()).digest())
        content, calls = parse_tool_calls(text, rng) if finish == "stop" else (text, [])  # ids fixed by the content
        logprobs = [{"token": f"token_id:{i}", "logprob": -0.5, "bytes": None, "top_logprobs": []} for i in ids]
        choice: dict[str, Any] = {
            "index": 0, "finish_reason": "tool_calls" if calls else finish,
            "message": {"role": "assistant", "content": content, "tool_calls": calls or None},
            "logprobs": {"content": logprobs},
            "token_ids": ids,
        }
        return {
            "id": f"chatcmpl-{rng.getrandbits(64):016x}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "scripted"), "choices": [choice], "prompt_token_ids": list(prompt_ids),
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": len(ids), "total_tokens": len(prompt_ids) + len(ids)},
        }


def examples_from_dataset(dataset: Any) -> dict[str, Example]:
    """Question -> answer (and supporting document ids) from an environment's dataset."""
    out = {}
    for row in dataset:
        prompt = row.get("prompt") or []
        question = next((m["content"] for m in prompt if m.get("role") == "user"), row.get("question", ""))
        info = row.get("info") or {}
        if isinstance(info, str):
            info = json.loads(info or "{}")
        supporting = [p["idx"] for p in info.get("paragraphs", []) if p.get("is_supporting")]
        out[question] = Example(answer=str(row.get("answer", "")), supporting=supporting)
    return out
