"""The one-machine runtime: every entry point of ``functions/main.py`` in one local HTTP server.

Each function is loaded by functions-framework exactly as Cloud Functions would serve it
(``create_app(target, source)``) and mounted under ``/<name>``, so a request reaches the same
Flask app, the same token check and the same handler as in the cloud. Beside them: ``GET
/healthz``, a ticker that calls the scheduled functions on the catalog's cron schedules (as
Cloud Scheduler would, with an OIDC token for the scheduler identity), and the in-process queue
delivering push envelopes to subscribing functions (as a Pub/Sub push subscription would, with
a token for the push identity). Tokens for those two identities are minted by ``token_minter``:
the sandbox issuer in tests and the demo; ``embedded.serve._token_minter`` chooses it by mode.

Tests and the demo serve it with werkzeug's threaded server; ``make serve`` (``python -m
embedded.server``, the long-running process of ``embedded.serve``) with waitress.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from shared import wiring
from shared.catalog import FUNCTIONS, FunctionSpec, Topic, Trigger, subscriber_of
from shared.config import get_settings
from shared.domain.models import ServiceRole, utcnow
from shared.domain.pubsub import encode_push_envelope

logger = logging.getLogger(__name__)

MAIN_SOURCE = Path(__file__).resolve().parent.parent / "functions" / "main.py"

# (email of the identity, audience) -> signed ID token
TokenMinter = Callable[[str, str], str]


CONSOLE_PATH = "/admin_api/console/"


def _healthz_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    request = Request(environ)
    if request.path == "/":
        # The machine's front door is the console (served by admin_api, functions/console.py).
        response = Response(status=302, headers={"Location": CONSOLE_PATH})
    elif request.path in ("/healthz", "/healthz/"):
        response = Response(
            json.dumps({"status": "ok", "functions": [spec.name for spec in FUNCTIONS]}),
            mimetype="application/json",
        )
    else:
        response = Response(
            json.dumps({"error": "not_found", "reason": f"no function at {request.path}"}),
            status=404,
            mimetype="application/json",
        )
    return response(environ, start_response)


def _as_function_root(app: Any) -> Any:
    """A function's own URL is its root: ``POST /sync_poll`` must reach the function's ``/``
    (as on Cloud Functions), not a redirect to ``/sync_poll/`` that clients would not follow
    with their body."""

    def mounted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        return app(environ, start_response)

    return mounted


def build_wsgi_app(
    functions: Iterable[FunctionSpec] = FUNCTIONS, extra_mounts: Mapping[str, Any] | None = None
) -> DispatcherMiddleware:
    """One WSGI app mounting each function's functions-framework app under ``/<name>``
    (and ``extra_mounts``: the sandbox's sign-in, in sandbox mode only)."""
    import functions_framework

    mounts = {
        f"/{spec.name}": _as_function_root(
            functions_framework.create_app(spec.name, str(MAIN_SOURCE))
        )
        for spec in functions
    }
    mounts.update(extra_mounts or {})
    return DispatcherMiddleware(_healthz_app, mounts)


class _WaitressServer:
    """waitress (a production WSGI server) behind the few calls ``LocalServer`` makes of
    werkzeug's: the bound port, serve, shut down."""

    def __init__(self, host: str, port: int, app: Any, threads: int) -> None:
        from waitress.server import create_server

        self._server: Any = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="crm",
            clear_untrusted_proxy_headers=True,
        )
        self.server_port = int(self._server.effective_port)

    def serve_forever(self) -> None:
        self._server.run()

    def shutdown(self) -> None:
        """Stop accepting, let running requests end (the caller drained them first), then
        close every connection so the loop ends."""
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        for channel in list(self._server._map.values()):
            with contextlib.suppress(Exception):
                channel.close()

    def server_close(self) -> None:
        pass


class Ticker:
    """Calls each scheduled function when its cron schedule fires, like Cloud Scheduler.

    Fire times are computed from the catalog's cron expression in its time zone; a tick that
    comes late still fires once (Cloud Scheduler never overlaps runs of a job either).
    """

    def __init__(
        self,
        call: Callable[[FunctionSpec], int],
        *,
        now: Callable[[], datetime] = utcnow,
        interval_s: float = 1.0,
        functions: Iterable[FunctionSpec] = FUNCTIONS,
    ) -> None:
        self._call = call
        self._now = now
        self.interval_s = interval_s
        self.scheduled = [spec for spec in functions if spec.trigger is Trigger.SCHEDULE]
        self._next: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.calls: list[tuple[str, datetime, int]] = []

    def next_fire(self, spec: FunctionSpec, after: datetime) -> datetime:
        from croniter import croniter

        local = after.astimezone(ZoneInfo(spec.time_zone))
        fire: datetime = croniter(spec.schedule, local).get_next(datetime)
        return fire.astimezone(after.tzinfo)

    def tick(self) -> list[str]:
        """Fire every job that is due now; returns the names fired."""
        now = self._now()
        fired = []
        for spec in self.scheduled:
            due = self._next.setdefault(spec.name, self.next_fire(spec, now - timedelta(seconds=1)))
            if due <= now:
                status = self._call(spec)
                self.calls.append((spec.name, now, status))
                fired.append(spec.name)
                self._next[spec.name] = self.next_fire(spec, now)
        return fired

    def fire_now(self, name: str) -> int:
        """Run one scheduled job at once (the demo; Cloud Scheduler's "force run")."""
        spec = next(s for s in self.scheduled if s.name == name)
        status = self._call(spec)
        self.calls.append((spec.name, self._now(), status))
        return status

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:
                logger.exception("ticker failed", extra={"fields": {"event": "ticker_error"}})


_SHUTDOWN_POLL_S = 0.05


class LocalServer:
    """The local server: functions, health, ticker and queue delivery, on a loopback port."""

    def __init__(
        self,
        *,
        token_minter: TokenMinter,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_interval_s: float = 1.0,
        start_ticker: bool = True,
        http: Literal["werkzeug", "waitress"] = "werkzeug",
        extra_mounts: Mapping[str, Any] | None = None,
        middleware: Callable[[Any], Any] | None = None,
        threads: int = 8,
    ) -> None:
        self.token_minter = token_minter
        self.app = build_wsgi_app(extra_mounts=extra_mounts)
        served = middleware(self.app) if middleware is not None else self.app
        self._server: BaseWSGIServer | _WaitressServer
        if http == "waitress":
            self._server = _WaitressServer(host, port, served, threads)
        else:
            self._server = make_server(host, port, served, threaded=True)
        # Bound to every address, it calls itself on loopback.
        url_host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host)  # noqa: S104
        url_host = url_host or (f"[{host}]" if ":" in host else host)
        self.base_url = f"http://{url_host}:{self._server.server_port}"
        self._thread: threading.Thread | None = None
        self.ticker = Ticker(self.call_scheduled, interval_s=tick_interval_s)
        self._start_ticker = start_ticker
        self._http = threading.local()

    # -- calling functions as Google's services would ------------------------------------------

    def _session(self) -> Any:
        import requests

        session = getattr(self._http, "session", None)
        if session is None:
            session = self._http.session = requests.Session()
        return session

    def post(self, name: str, identity: str, body: Mapping[str, Any]) -> int:
        """POST to a function with an OIDC token for ``identity``, audience = its URL."""
        settings = get_settings()
        token = self.token_minter(identity, settings.function_url(name))
        response = self._session().post(
            f"{self.base_url}/{name}",
            json=dict(body),
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        )
        return int(response.status_code)

    def call_scheduled(self, spec: FunctionSpec) -> int:
        identity = wiring.local_service_identity(ServiceRole.SCHEDULER)
        return self.post(spec.name, identity, {"job": spec.name})

    def deliver(self, topic: str, message: Mapping[str, Any], message_id: str) -> int:
        spec = subscriber_of(Topic(topic))
        envelope = encode_push_envelope(
            message,
            message_id=message_id,
            subscription=f"projects/local/subscriptions/{topic}-push",
            published_at=utcnow(),
        )
        return self.post(
            spec.name, wiring.local_service_identity(ServiceRole.PUBSUB_PUSH), envelope
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalServer:
        # werkzeug's loop (the local stack's) checks for shutdown every 0.5 s by default, so
        # each stop waited that long; waitress's loop ends when stop closes its sockets.
        poll = (
            {"poll_interval": _SHUTDOWN_POLL_S} if isinstance(self._server, BaseWSGIServer) else {}
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs=poll, name="local-server", daemon=True
        )
        self._thread.start()
        wiring.local_queue().attach(self.deliver)
        if self._start_ticker:
            self.ticker.start()
        logger.info(
            "local server listening",
            extra={"fields": {"url": self.base_url, "functions": [s.name for s in FUNCTIONS]}},
        )
        return self

    def stop_taking_work(self, timeout: float) -> bool:
        """Graceful stop, first half: no more ticks and no more queue deliveries; waits (up to
        ``timeout``) for the delivery under way, e.g. a sync run finishing its page. True if
        nothing is left running."""
        self.ticker.stop()
        return wiring.local_queue().stop_delivering(timeout)

    def stop(self) -> None:
        self.ticker.stop()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    # ``python -m embedded.server``: the long-running server (``make serve``).
    import sys

    from embedded.serve import main

    sys.exit(main())
