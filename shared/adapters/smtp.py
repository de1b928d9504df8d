"""The digest's SMTP transport: the ONE module allowed to import ``smtplib``.

The fallback half of the digest's only automated send path (``gmail/send.py`` is the
preferred half). Like the Gmail half, :meth:`SmtpSender.deliver` refuses by itself: it takes the
active admins as a required argument and runs the domain's
:func:`shared.domain.digest_recipients.require_admin_recipients` over the message's To/Cc/Bcc
and the envelope's RCPT TO list right before talking to the server.

Security: ``starttls`` (submission, port 587), ``tls`` (implicit TLS, port 465), or ``none``,
which is only accepted for a loopback host (tests, a local relay): a password never crosses
the network in clear. Errors never carry the password or the server's reply text (a server may
echo what it was sent): only the SMTP status code and the kind of failure.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Collection
from email import message_from_bytes
from email.policy import compat32
from enum import StrEnum

from shared.domain.digest_recipients import require_admin_recipients, require_team_recipients
from shared.domain.tenancy import TeamDomains
from shared.errors import ConfigurationError, UpstreamError
from shared.logging import register_secret

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


class SmtpSendError(UpstreamError):
    """The SMTP server could not be reached, refused the login or the message."""

    code = "smtp_send_failed"


class SmtpSender:
    """Sends raw RFC 5322 bytes through one SMTP server, logging in when ``user`` is set."""

    def __init__(
        self,
        host: str,
        port: int,
        security: SmtpSecurity | str = SmtpSecurity.STARTTLS,
        user: str = "",
        password: str = "",
        timeout: float = 30.0,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not host:
            raise ConfigurationError(
                "SMTP host is not set (CRM_SMTP_HOST)", variable="CRM_SMTP_HOST"
            )
        try:
            self._security = SmtpSecurity(str(security).strip().lower())
        except ValueError:
            raise ConfigurationError(
                "CRM_SMTP_SECURITY must be starttls, tls or none", variable="CRM_SMTP_SECURITY"
            ) from None
        if self._security is SmtpSecurity.NONE and host.strip().lower() not in _LOOPBACK:
            raise ConfigurationError(
                f"SMTP security 'none' is only allowed for a loopback host, not {host}: use "
                "starttls or tls",
                variable="CRM_SMTP_SECURITY",
            )
        if user and not password:
            raise ConfigurationError(
                "An SMTP user is set but its password secret is empty (CRM_SMTP_PASSWORD_SECRET)",
                variable="CRM_SMTP_PASSWORD_SECRET",
            )
        register_secret(password)
        self._host = host
        self._port = int(port)
        self._user = user
        self._password = password
        self._timeout = timeout
        self._ssl_context = ssl_context

    @property
    def where(self) -> str:
        return f"{self._host}:{self._port}"

    def __repr__(self) -> str:  # never the password
        return f"SmtpSender({self.where}, security={self._security.value!r}, user={self._user!r})"

    def check_login(self) -> None:
        """Connect, secure and log in, then quit without sending (``doctor``); SmtpSendError
        says at which stage it failed, never with the password."""
        self._session(None)

    def deliver(
        self,
        raw: bytes,
        sender: str,
        recipients: list[str],
        *,
        admins: Collection[str],
        team: TeamDomains,
    ) -> str:
        """Send ``raw`` from ``sender`` to ``recipients`` (the envelope) after checking every
        header and envelope recipient is in ``admins`` and at one of the ``team``'s domains;
        the message's Message-ID."""
        headers = require_admin_recipients(raw, admins, envelope=recipients)
        require_team_recipients([*headers, *recipients], team)
        refused = self._session(lambda client: client.sendmail(sender, recipients, raw))
        if refused:
            raise SmtpSendError(
                f"The SMTP server at {self.where} refused some recipients; the others got it",
                stage="send",
                refused=sorted(refused),
            )
        message = message_from_bytes(raw, policy=compat32)
        return str(message.get("Message-ID", "") or "")

    def _session(
        self, send: Callable[[smtplib.SMTP], dict[str, tuple[int, bytes]]] | None
    ) -> dict[str, tuple[int, bytes]]:
        """Connect, secure and log in, then ``send`` (if any) and quit: the one path for the
        login check and the delivery, so both fail alike, naming the stage, never the password.
        Returns the recipients the server refused."""
        context = self._ssl_context or ssl.create_default_context()
        stage = "connect"
        try:
            client: smtplib.SMTP
            if self._security is SmtpSecurity.TLS:
                client = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self._timeout, context=context
                )
            else:
                client = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            with client:
                stage = "ehlo"
                client.ehlo()
                if self._security is SmtpSecurity.STARTTLS:
                    stage = "starttls"
                    client.starttls(context=context)
                    client.ehlo()
                if self._user:
                    stage = "login"
                    client.login(self._user, self._password)
                if send is None:
                    return {}
                stage = "send"
                return send(client)
        except smtplib.SMTPAuthenticationError as exc:
            raise SmtpSendError(
                f"The SMTP server at {self.where} refused the login (SMTP {exc.smtp_code}): "
                "check the user and the password secret",
                stage="login",
                smtp_code=exc.smtp_code,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise SmtpSendError(
                f"The SMTP server at {self.where} refused every recipient",
                stage=stage,
                refused=sorted(exc.recipients),
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise SmtpSendError(
                f"The SMTP server at {self.where} answered {exc.smtp_code} during {stage}",
                stage=stage,
                smtp_code=exc.smtp_code,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SmtpSendError(
                f"SMTP to {self.where} failed during {stage} ({type(exc).__name__})",
                stage=stage,
            ) from None
