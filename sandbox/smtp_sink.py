"""A loopback SMTP server that requires AUTH and records every message it accepts.

The stand-in for the fund's SMTP submission server in tests and the demo: aiosmtpd on
``127.0.0.1`` (port 0: the OS picks), AUTH LOGIN/PLAIN checked against one configured
user and password (plaintext allowed: loopback only), and ``MAIL FROM`` refused with 530 until
the client has authenticated. Every accepted message is kept as a :class:`SinkMessage`
(envelope sender, RCPT TO list, raw bytes, the user who sent it), and failed logins are counted.

The test session's send guard (``tests/support/send_guard.py``) tracks every sink, as it does every
Gmail sandbox, and fails the run if a recorded message had a recipient that is not an admin.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import compat32
from email.utils import getaddresses
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

LOOPBACK = "127.0.0.1"
# aiosmtpd's own logger: it warns on every login about a deprecated attribute it sets itself,
# and at DEBUG it would echo the AUTH exchange. Only its errors are worth seeing here.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class SinkMessage:
    """One accepted message: the envelope as the client gave it and the raw bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    auth_user: str
    at: float

    def header_recipients(self) -> tuple[str, ...]:
        """To, Cc and Bcc of the message, lower-cased."""
        message = message_from_bytes(self.data, policy=compat32)
        values = [str(v) for h in ("To", "Cc", "Bcc") for v in message.get_all(h, [])]
        return tuple(a.strip().lower() for _, a in getaddresses(values) if a.strip())

    @property
    def recipients(self) -> tuple[str, ...]:
        """Everyone this message would reach: the envelope and the headers, once each."""
        seen = dict.fromkeys([r.strip().lower() for r in self.rcpt_tos])
        seen.update(dict.fromkeys(self.header_recipients()))
        return tuple(seen)

    @property
    def subject(self) -> str:
        return str(message_from_bytes(self.data, policy=compat32).get("Subject", "") or "")


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        auth = session.auth_data
        user = auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else ""
        self._sink._record(
            SinkMessage(
                mail_from=str(envelope.mail_from or ""),
                rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
                data=bytes(data),
                auth_user=user,
                at=time.time(),
            )
        )
        return "250 Message accepted for delivery"


class _LoopbackController(Controller):
    """aiosmtpd's threaded controller, with port 0 resolved to the port the OS picked."""

    def _trigger_server(self) -> None:
        sockets = getattr(self.server, "sockets", None)
        if self.port == 0 and sockets:
            self.port = int(sockets[0].getsockname()[1])
        super()._trigger_server()


class SmtpSink:
    """``with SmtpSink(user, password) as sink:`` serves on ``sink.host``:``sink.port``."""

    def __init__(
        self,
        user: str = "digest@fund.example",
        password: str = "sink-password",  # noqa: S107 (a loopback test server)
        *,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        self.user = user
        self.password = password
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._messages: list[SinkMessage] = []
        self._auth_failures = 0
        self._controller: _LoopbackController | None = None
        self._send_allowed: set[str] = set()

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> SmtpSink:
        if self._controller is not None:
            return self
        controller = _LoopbackController(
            _Handler(self),
            hostname=self.host,
            port=self._requested_port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            auth_exclude_mechanism=["CRAM-MD5"],
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("the SMTP sink is not running")
        return int(self._controller.port)

    # ---------------------------------------------------------------- what it saw
    @property
    def messages(self) -> list[SinkMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def auth_failures(self) -> int:
        with self._lock:
            return self._auth_failures

    def allow_send_to(self, addresses: Iterable[str]) -> None:
        """Mark addresses as the fund's admins (as ``GmailSandbox.allow_send_to``)."""
        with self._lock:
            self._send_allowed.update(a.strip().lower() for a in addresses)

    @property
    def send_allowed(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._send_allowed)

    # ---------------------------------------------------------------- internals
    def _record(self, message: SinkMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and mechanism in ("LOGIN", "PLAIN")
            and auth_data.login == self.user.encode()
            and auth_data.password == self.password.encode()
        )
        if not ok:
            with self._lock:
                self._auth_failures += 1
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data)
