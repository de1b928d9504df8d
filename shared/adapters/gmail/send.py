"""The digest's Gmail transport: the ONE module allowed to call ``users.messages.send``.

The hard rule ("agents draft; humans send") has one exception, the internal daily digest to
the fund's own admins (seed spec, "Outbound mail"). This module is that exception's Gmail half
(``shared/adapters/smtp.py`` is the other), and ``tests/unit/test_no_send.py`` allow-lists
exactly these two paths.

The send-capable code refuses by itself: :meth:`GmailSender.deliver` takes the set of active
admins as a required argument and, right before the call, parses To/Cc/Bcc (and Resent-*) back
from the raw bytes with :func:`require_admin_recipients` (``shared.domain.digest_recipients``);
one address that is not an admin, an unparseable address, or no recipient at all raises
:class:`NotAnAdminError` and nothing is sent. The same guard runs inside ``SmtpSender.deliver``.

The method is called ``deliver``, not ``send``: ``tests/unit/test_no_send.py`` fails on any
``.send(`` call outside the two transport modules, and the digest service (which only
orchestrates) has to call it.

The message goes as JSON ``{"raw": base64url}`` (FACTS.md, section 4: never a media upload,
google-api-python-client sends uploads to ``https://`` whatever the endpoint). Credentials are
domain-wide delegated with ``gmail.compose`` (the deployment's grant has compose, not the
narrow ``gmail.send``). Sending is not idempotent, so nothing here retries.

Errors never quote a token or credential: Gmail's HTTP status and its ``reason`` code only
(a refused token mint is already translated by ``DelegatedCredentials``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

# The recipient guard is the domain's; imported here by name too (tests and the SMTP half).
from shared.domain.digest_recipients import (
    RECIPIENT_HEADERS,
    NotAnAdminError,
    header_recipients,
    not_admins_error,
    require_admin_recipients,
    require_team_recipients,
)
from shared.domain.tenancy import TeamDomains
from shared.errors import AppError, RetryableError, UpstreamError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials as GoogleCredentials

__all__ = [
    "DEFAULT_ENDPOINT",
    "RECIPIENT_HEADERS",
    "GmailSendError",
    "GmailSender",
    "NotAnAdminError",
    "header_recipients",
    "not_admins_error",
    "require_admin_recipients",
    "require_team_recipients",
]

DEFAULT_ENDPOINT = "https://gmail.googleapis.com/"


class GmailSendError(UpstreamError):
    """Gmail refused or failed ``messages.send`` (401/403/4xx/5xx); the reason, no credential."""

    code = "gmail_send_failed"


class GmailSender:
    """``messages.send`` as one mailbox, with credentials acting as it (``gmail.compose``).

    Built by wiring per sender address: ``GmailSender(_delegated_credentials(address,
    SCOPE_COMPOSE), endpoint=settings.gmail_api_endpoint)``.
    """

    def __init__(
        self,
        credentials: GoogleCredentials,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        http_timeout: float = 60.0,
    ) -> None:
        self._credentials = credentials
        self._mailbox = str(getattr(credentials, "mailbox", "") or "") or "me"
        self._endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self._http_timeout = http_timeout

    @property
    def mailbox(self) -> str:
        return self._mailbox

    def deliver(self, raw: bytes, *, admins: Collection[str], team: TeamDomains) -> str:
        """Send ``raw`` (RFC 5322 bytes) after checking every recipient is in ``admins`` and at
        one of the ``team``'s domains; Gmail's message id."""
        require_team_recipients(require_admin_recipients(raw, admins), team)

        import google_auth_httplib2
        import httplib2
        from googleapiclient.discovery import build
        from googleapiclient.errors import HttpError

        body = {"raw": base64.urlsafe_b64encode(raw).decode("ascii")}
        service = build(
            "gmail",
            "v1",
            credentials=self._credentials,
            client_options={"api_endpoint": self._endpoint},
            static_discovery=True,
            cache_discovery=False,
        )
        http = google_auth_httplib2.AuthorizedHttp(
            self._credentials, http=httplib2.Http(timeout=self._http_timeout)
        )
        try:
            request = service.users().messages().send(userId="me", body=body)
            answer = request.execute(http=http, num_retries=0)
        except HttpError as exc:
            raise self._translate(int(exc.resp.status), exc.content) from None
        except (httplib2.HttpLib2Error, OSError) as exc:
            raise RetryableError(
                f"Gmail messages.send as {self._mailbox}: no answer ({type(exc).__name__}); "
                "the message may or may not have been sent",
                mailbox=self._mailbox,
                method="messages.send",
            ) from None
        finally:
            http.close()
        message_id = str((answer or {}).get("id") or "")
        if not message_id:
            raise GmailSendError(
                f"Gmail messages.send as {self._mailbox} answered without a message id",
                mailbox=self._mailbox,
                method="messages.send",
            )
        return message_id

    def _translate(self, status: int, content: Any) -> AppError:
        reason = _reason(content)
        said = f"HTTP {status}" + (f" {reason}" if reason else "")
        details: dict[str, Any] = {
            "mailbox": self._mailbox,
            "method": "messages.send",
            "http_status": status,
            "reason": reason,
        }
        if status in (401, 403):
            return GmailSendError(
                f"Gmail refused messages.send as {self._mailbox} ({said}): the domain-wide "
                "delegation grant needs gmail.compose for this mailbox",
                **details,
            )
        return GmailSendError(f"Gmail messages.send as {self._mailbox} failed: {said}", **details)


def _reason(content: Any) -> str:
    """Gmail's machine reason (``backendError``, ``insufficientPermissions``), nothing more."""
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    try:
        body = json.loads(content) if content else {}
        reason = str(body["error"]["errors"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    return reason if reason.isalnum() and len(reason) <= 64 else ""
