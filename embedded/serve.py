"""``make serve`` / ``python -m embedded.server``: the one-machine server, long-running.

One process serves every function (mounted as Cloud Functions would serve them), runs the
ticker (Cloud Scheduler's part) and the in-process queue (Pub/Sub's), takes the daily backups,
and logs JSON lines, each carrying the mode. HTTP is waitress, a production WSGI server.

The mode is explicit (``CRM_MODE``; ``embedded.instance`` refuses anything it should not run):

- ``sandbox``: the Gmail sandbox with the demo's fund, the sandbox issuer and its sign-in
  (``POST /sandbox/sign-in``), a database of its own under ``var/sandbox/``, loopback only;
  every reply carries ``X-CRM-Mode: sandbox``.
- ``real``: the fund's Gmail; nothing of the sandbox is started or mounted.

SIGTERM and Ctrl-C stop it gracefully, within 20 s: new requests get 503, the ticker and the
queue take no more work, a running sync sees its deadline as passed (``shared.lifecycle``),
finishes the page it is on, keeps its checkpoint and releases its lease. The next start polls
once at once, so every mailbox resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from embedded.backup_schedule import BackupSchedule
from embedded.instance import StartRefused, check_settings, claim_mode, prepare
from embedded.sandbox_sign_in import MOUNT
from embedded.server import LocalServer, TokenMinter
from shared import lifecycle, wiring
from shared.logging import configure_logging, log_event

if TYPE_CHECKING:
    from embedded.sandbox_fund import SandboxWorld
    from shared.config import Settings

logger = logging.getLogger(__name__)

# SIGTERM to exit: Cloud Run and systemd wait 10 and 90 s; the issue asks for 20.
STOP_WITHIN_S = 20.0
# Of which the sync under way may use this much to finish its page and checkpoint.
DRAIN_S = 15.0

# A loop beside the server (the Pub/Sub pull of Gmail notifications), ended by the event.
BackgroundLoop = Callable[[threading.Event], None]


def _token_minter(
    settings: Settings, sandbox: SandboxWorld | None
) -> tuple[TokenMinter, BackgroundLoop | None]:
    """How the local ticker and queue sign their calls, and the loop that runs beside them:
    chosen here and only here, by mode."""
    # Both local modes: only the runtime's own key may vouch for the ticker and the queue
    # (shared.adapters.auth), and Gmail's notifications are pulled from Pub/Sub when a
    # subscription is configured (the loop returns at once otherwise; polling never stops).
    return wiring.local_token_minter, wiring.run_gmail_pull_loop


class _ModeAndStop:
    """Every reply says the mode (``X-CRM-Mode``); once stopping, new requests get 503."""

    def __init__(self, app: Any, mode: str) -> None:
        self._app = app
        self._mode = mode

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def with_mode(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            return start_response(status, [*headers, ("X-CRM-Mode", self._mode)], *exc)

        if lifecycle.stopping():
            body = b'{"error": "unavailable", "reason": "the server is stopping"}'
            with_mode(
                "503 Service Unavailable",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Retry-After", "10"),
                ],
            )
            return [body]
        return self._app(environ, with_mode)


class _ModeField(logging.Filter):
    """Adds the mode to every log line's structured fields."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self._mode = mode

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", None)
        record.fields = (
            {**fields, "mode": self._mode} if isinstance(fields, dict) else {"mode": self._mode}
        )
        return True


@contextlib.contextmanager
def serving(settings: Settings, *, tick_interval_s: float = 1.0) -> Iterator[LocalServer]:
    """Everything running, until the block exits; the graceful stop is ``stop_gracefully``.
    Raises StartRefused (before anything listens) when the instance must not start."""
    check_settings(settings)
    instance = prepare(settings)
    saved = os.environ.copy()
    try:
        with contextlib.ExitStack() as stack:
            world = None
            os.environ.update(
                {
                    "CRM_SQLITE_PATH": str(instance.database),
                    "CRM_STORE_BACKEND": "sqlite",
                    "CRM_QUEUE_BACKEND": "local",
                }
            )
            if settings.mode == "sandbox":
                from embedded.sandbox_fund import sandbox_world, seed_crm_once

                world = stack.enter_context(
                    sandbox_world(
                        extra_messages=settings.sandbox_extra_messages,
                        list_delay_ms=settings.sandbox_list_delay_ms,
                    )
                )
                os.environ.update(world.environment)
            wiring.reset()
            lifecycle.reset()
            claim_mode(wiring.store(), settings.mode, instance.database)
            if world is not None and seed_crm_once(wiring.store()):
                log_event(logger, logging.INFO, "sandbox fund seeded", event="sandbox_seeded")
            minter, background = _token_minter(settings, world)
            server = LocalServer(
                token_minter=minter,
                host=settings.host,
                port=settings.port,
                tick_interval_s=tick_interval_s,
                http="waitress",
                extra_mounts={MOUNT: world.sign_in_app()} if world is not None else None,
                middleware=lambda app: _ModeAndStop(app, settings.mode),
            )
            # Service callers' audience is the function's URL, known once the port is bound.
            os.environ["CRM_FUNCTIONS_BASE_URL"] = settings.public_url or server.base_url
            wiring.reset()
            # Built here, before any thread or request needs them at once.
            wiring.store()
            wiring.local_key()
            if world is not None:
                world.push_to(server.base_url)
            backups = BackupSchedule(instance.database, instance.backups, keep=settings.backup_keep)
            background_stop = threading.Event()
            server.start()
            backups.start()
            if background is not None:
                threading.Thread(
                    target=background, args=(background_stop,), name="background", daemon=True
                ).start()
            # A restart resumes at once: every mailbox's sync continues from its checkpoint.
            threading.Thread(
                target=_poll_once, args=(server,), name="first-poll", daemon=True
            ).start()
            log_event(
                logger,
                logging.INFO,
                "serving",
                event="serving",
                url=server.base_url,
                database=str(instance.database),
                backups=str(instance.backups),
            )
            try:
                yield server
            finally:
                background_stop.set()
                backups.stop()
                server.stop()
    finally:
        wiring.reset()
        os.environ.clear()
        os.environ.update(saved)
        instance.release()


def _poll_once(server: LocalServer) -> None:
    try:
        server.ticker.fire_now("sync_poll")
    except Exception:
        logger.exception("first poll failed", extra={"fields": {"event": "first_poll_failed"}})


def stop_gracefully(server: LocalServer) -> bool:
    """Stop taking work and let the sync under way checkpoint; True if it finished in time."""
    lifecycle.begin_stopping()
    started = time.monotonic()
    log_event(logger, logging.INFO, "stopping", event="stopping")
    drained = server.stop_taking_work(DRAIN_S)
    log_event(
        logger,
        logging.INFO if drained else logging.WARNING,
        "work drained" if drained else "work still running at the drain deadline",
        event="drained",
        drained=drained,
        seconds=round(time.monotonic() - started, 3),
    )
    return drained


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from shared.config import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    handler = configure_logging(settings.log_level)
    handler.addFilter(_ModeField(settings.mode))
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        with serving(settings) as server:
            while not stop.wait(0.5):
                pass
            # Whatever happens below, the process is gone within STOP_WITHIN_S.
            watchdog = threading.Timer(STOP_WITHIN_S - 1, _exit_now)
            watchdog.daemon = True
            watchdog.start()
            stop_gracefully(server)
    except StartRefused as exc:
        log_event(
            logger, logging.ERROR, "server refused to start", event="start_refused", reason=str(exc)
        )
        print(f"not starting: {exc}", file=sys.stderr)
        return 2
    log_event(logger, logging.INFO, "stopped", event="stopped")
    return 0


def _exit_now() -> None:
    log_event(logger, logging.ERROR, "stop took too long; exiting", event="stop_timeout")
    logging.shutdown()
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
