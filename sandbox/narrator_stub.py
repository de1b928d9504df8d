"""A stand-in for the fund's OpenAI-compatible chat endpoint, on a loopback port.

``NarratorStub.mode`` says how it answers ``POST /v1/chat/completions``:

- ``answer``: 200 with ``choices[0].message.content`` = ``reply`` (``reply`` may be a callable
  of the request's JSON, to answer per user);
- ``stall``: waits ``stall_seconds`` (or until the server stops) before answering;
- ``error``: 500;
- ``garbage``: 200 with a body that is not JSON;
- ``empty``: 200 with ``{"choices": []}``.

Every request's JSON body and Authorization header are recorded in ``requests``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.loopback import SHUTDOWN_POLL_S

MODES = ("answer", "stall", "error", "garbage", "empty")
SANDBOX_SIGNATURE = "(Written by the sandbox narrator.)"


def facts_paragraph(request: dict[str, Any]) -> str:
    """A ``reply`` that writes the paragraph from the facts the digest sends (its prompt names the
    team member, the counts and each subject), as a model would, and signs it: the demo and the
    sandbox show a narrated digest without the fund's own endpoint, and nobody mistakes it."""
    messages = request.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else {}
    lines = str(last.get("content", "") if isinstance(last, dict) else "").splitlines()
    name = lines[0].removeprefix("Team member: ") if lines else "The team member"
    subjects = [line.split("subject ", 1)[1].split(";")[0] for line in lines if "subject " in line]
    count, _, split = (lines[1].split(": ", 1)[-1] if len(lines) > 1 else "").partition(" ")
    return (
        f"{name} exchanged {count or 'no'} emails with investors {split}, on"
        f" {', '.join(subjects) or 'nothing listed'}. {SANDBOX_SIGNATURE}"
    ).replace("  ", " ")


@dataclass
class NarratorStub:
    mode: str = "answer"
    reply: str | Callable[[dict[str, Any]], str] = "A quiet day with investors."
    stall_seconds: float = 5.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer_for(self, request: dict[str, Any]) -> str:
        return self.reply(request) if callable(self.reply) else self.reply


@dataclass(frozen=True)
class RunningNarrator:
    stub: NarratorStub
    base_url: str


def _handler(stub: NarratorStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up (timeout): nothing to do
                pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                request = json.loads(raw or b"{}")
            except ValueError:
                request = {"_unparsed": raw.decode("utf-8", "replace")}
            with stub._lock:
                stub.requests.append(
                    {
                        "path": self.path,
                        "authorization": self.headers.get("Authorization", ""),
                        "json": request,
                    }
                )
            if not self.path.rstrip("/").endswith("/v1/chat/completions"):
                self._reply(404, b'{"error": "not found"}', "application/json")
                return
            mode = stub.mode
            if mode == "stall":
                stub._stop.wait(stub.stall_seconds)
            if mode == "error":
                self._reply(500, b'{"error": "model crashed"}', "application/json")
            elif mode == "garbage":
                self._reply(200, b"<html>not json at all", "application/json")
            elif mode == "empty":
                self._reply(200, b'{"choices": []}', "application/json")
            else:
                content = stub.answer_for(request if isinstance(request, dict) else {})
                answer = {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion",
                    "model": request.get("model", "") if isinstance(request, dict) else "",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                }
                self._reply(200, json.dumps(answer).encode(), "application/json")

    return Handler


@contextlib.contextmanager
def serve_narrator_stub(
    stub: NarratorStub | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningNarrator]:
    """Serve the stub on a loopback port (0: the OS picks); stopped and closed on exit."""
    stub = stub or NarratorStub()
    stub._stop.clear()
    server = ThreadingHTTPServer((host, port), _handler(stub))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SHUTDOWN_POLL_S},
        name=f"narrator-stub:{server.server_port}",
        daemon=True,
    )
    thread.start()
    try:
        yield RunningNarrator(stub=stub, base_url=f"http://{host}:{server.server_port}")
    finally:
        stub._stop.set()  # release stalled handlers
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
