"""A real chat-completions server on 127.0.0.1 with scripted answers.

For tests and dry runs of a benchmark without a paid API: it speaks the wire protocol of
``POST /v1/chat/completions`` (the JSON the ``openai`` library sends and parses, with
``usage``), and the script decides each reply, including failures: an HTTP status with a JSON
error and ``Retry-After``, a delay past the client's timeout, a body cut short, or invalid JSON.
It records every request it receives, so a test can count what was asked (and paid for).

    def answer(body, n):       # body: the request JSON; n: how often this prompt was asked
        return Reply(status=429, headers={"Retry-After": "1"}) if n == 1 else "42"

    with ScriptedChatServer(answer, latency=0.1) as server:
        client = ChatClient(model="judge", base_url=server.url, api_key="EMPTY")
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Reply", "ScriptedChatServer", "prompt_text"]


@dataclass
class Reply:
    """One scripted reply. ``content``: the answer text (a list: one per choice, for ``n`` > 1);
    ``raw``: a body sent as is instead (malformed or truncated JSON); ``status`` != 200 sends
    ``{"error": {"message": error}}``."""

    content: str | list[str] | None = None
    status: int = 200
    error: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5


def prompt_text(body: dict[str, Any]) -> str:
    """The text of the request's last user message (text parts joined)."""
    content = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")


class ScriptedChatServer:
    def __init__(
        self, answer: Callable[[dict[str, Any], int], Reply | str], latency: float = 0.0
    ) -> None:
        self.answer, self.latency = answer, latency
        self.requests: list[dict[str, Any]] = []  # bodies, in arrival order
        self.headers: list[dict[str, str]] = []
        self.asked: Counter[str] = Counter()  # prompt text -> requests
        self.in_flight: Counter[str] = Counter()  # prompt text -> requests not yet answered
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints
            # Headers and body go out in two writes; with Nagle's algorithm and the client's
            # delayed ACK each answer would wait ~40 ms more than its scripted latency.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                key = prompt_text(body)
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    server.asked[key] += 1
                    n = server.asked[key]
                    server.in_flight[key] += 1
                    server.max_in_flight = max(server.max_in_flight, sum(server.in_flight.values()))
                try:
                    self._reply(body, n)
                finally:
                    with server._lock:
                        server.in_flight[key] -= 1
                        if not server.in_flight[key]:
                            del server.in_flight[key]

            def _reply(self, body: dict[str, Any], n: int) -> None:
                reply = server.answer(body, n)
                if isinstance(reply, str):
                    reply = Reply(content=reply)
                time.sleep(server.latency + reply.delay)
                if reply.raw is not None:
                    return self._send(reply.status, raw=reply.raw, extra=reply.headers)
                if reply.status != 200:
                    error = {"error": {"message": reply.error, "type": "scripted"}}
                    return self._send(reply.status, error, extra=reply.headers)
                contents = reply.content if isinstance(reply.content, list) else [reply.content]
                if len(contents) == 1 and body.get("n", 1) > 1:
                    contents = contents * body["n"]
                payload = {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {
                            "index": i,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": c},
                        }
                        for i, c in enumerate(contents)
                    ],
                    "usage": {
                        "prompt_tokens": reply.prompt_tokens,
                        "completion_tokens": reply.completion_tokens * len(contents),
                        "total_tokens": reply.prompt_tokens
                        + reply.completion_tokens * len(contents),
                    },
                }
                self._send(200, payload, extra=reply.headers)

            def _send(self, status: int, payload: Any = None, raw: bytes | None = None,
                      extra: dict[str, str] | None = None) -> None:  # fmt: skip
                data = raw if raw is not None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (extra or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # clients open dozens of connections at once

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
