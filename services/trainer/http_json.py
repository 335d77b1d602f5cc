"""The JSON HTTP handler shared by the rehearsals' generation servers.

`ScriptedServer` (scripted_policy.py) and `PolicyServer` (policy_server.py) answer every
request with a JSON body and keep the test and training logs free of per-request lines.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler that answers in JSON and logs nothing."""

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
