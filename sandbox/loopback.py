"""The lifecycle every in-process stand-in shares: serve a WSGI app on a loopback port the OS
picks, in a daemon thread, quietly (no access log line per request; errors still logged).

Subclasses provide ``_wsgi`` and a ``thread_name``; ``start``/``stop`` and the context manager
are here once, so every stand-in releases its port the same way (shutdown, close, join).
"""

from __future__ import annotations

import threading
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

# How often a stand-in's serve loop looks for a shutdown request. ``socketserver``'s default
# (0.5 s) made every stop wait about that long, and tests stop hundreds of stand-ins; the
# loop's idle wake-ups at this rate cost nothing measurable.
SHUTDOWN_POLL_S = 0.05


class QuietRequestHandler(WSGIRequestHandler):
    """Drops werkzeug's per-request access log line; errors are still logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class LoopbackServer:
    """Start with ``start()`` or ``with``; ``endpoint`` is ``http://<host>:<port>`` while up."""

    thread_name = "loopback-stand-in"

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self._host = host
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        raise NotImplementedError

    def start(self) -> Self:
        """Bind and serve; returns self so ``x = StandIn(...).start()`` reads well."""
        if self._server is None:
            server = make_server(
                self._host, 0, self._wsgi, threaded=True, request_handler=QuietRequestHandler
            )
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": SHUTDOWN_POLL_S},
                name=self.thread_name,
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``, for ``client_options={"api_endpoint": ...}``."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running: call start()")
        return f"http://{self._host}:{self._server.server_port}"
