"""The digest's Gmail transport: the ONE module allowed to call ``users.messages.send``.

The hard rule ("agents draft; humans send") has one exception, the internal daily digest to
the fund's own admins (seed spec, "Outbound mail"). This module is that exception's Gmail half
(``shared/adapters/smtp.py`` is the other), and ``tests/unit/test_no_send.py`` allow-lists
exactly these two paths.

The send-capable code refuses by itself: :meth:`GmailSender.deliver` takes the set of active
admins as a required argument and, right before the call, parses To/Cc/Bcc (and Resent-*) back
from the raw bytes with :func:`require_admin_recipients`; one address that is not an admin, an
unparseable address, or no recipient at all raises :class:`NotAnAdminError` and nothing is
sent. The same guard runs inside ``SmtpSender.deliver``.

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
from collections.abc import Collection, Iterable
from email import message_from_bytes
from email.policy import compat32
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

from shared.domain.tenancy import OutsideTeamError, TeamDomains
from shared.errors import AppError, BadRequestError, RetryableError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials as GoogleCredentials

DEFAULT_ENDPOINT = "https://gmail.googleapis.com/"
# Every header a mail system may deliver to. Gmail sends to To/Cc/Bcc; Resent-* are checked
# too so no header can smuggle in a recipient a stricter reader would miss.
RECIPIENT_HEADERS = ("To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc")


class NotAnAdminError(BadRequestError):
    """A digest recipient is not an active admin (or cannot be read): nothing was sent."""

    code = "not_an_admin"


class GmailSendError(AppError):
    """Gmail refused or failed ``messages.send`` (401/403/4xx/5xx); the reason, no credential."""

    status = 502
    code = "gmail_send_failed"


def header_recipients(raw: bytes) -> list[str]:
    """Every address in the recipient headers of ``raw``, lower-cased, in order.

    Raises :class:`NotAnAdminError` when a header holds something that is not an address
    (``undisclosed``, a bare name, an empty group is fine): what cannot be read is refused.
    """
    message = message_from_bytes(raw, policy=compat32)
    found: list[str] = []
    for header in RECIPIENT_HEADERS:
        values = [str(value) for value in message.get_all(header, [])]
        if not values:
            continue
        for name, address in getaddresses(values):
            address = address.strip().lower()
            if not address and not name:
                continue  # an empty group ("undisclosed-recipients:;") or a trailing comma
            if not _is_address(address):
                raise NotAnAdminError(
                    f"The message's {header} header holds something that is not an e-mail "
                    "address; nothing was sent.",
                    header=header,
                )
            found.append(address)
    return found


def require_admin_recipients(
    raw: bytes, admins: Collection[str], *, envelope: Iterable[str] = ()
) -> list[str]:
    """The guard both transports run right before sending: every recipient of ``raw`` (To, Cc,
    Bcc, Resent-*) and every ``envelope`` recipient (SMTP RCPT TO) must be in ``admins`` (the
    active admins' addresses), and there must be at least one. Returns the header recipients;
    raises :class:`NotAnAdminError` otherwise."""
    allowed = {a.strip().lower() for a in admins if a and a.strip()}
    recipients = header_recipients(raw)
    if not recipients:
        raise NotAnAdminError("The message has no recipient; nothing was sent.")
    envelope_addresses = [e.strip().lower() for e in envelope]
    outsiders = sorted(
        {r for r in [*recipients, *envelope_addresses] if not _is_address(r) or r not in allowed}
    )
    if outsiders:
        raise not_admins_error(outsiders)
    return recipients


def require_team_recipients(recipients: Iterable[str], team: TeamDomains) -> None:
    """Every recipient at one of the fund's own domains (exact match), else
    :class:`OutsideTeamError` and nothing is sent: an admin added at another domain does not
    take the digest (investors' names) out of the fund."""
    outsiders = team.outsiders(recipients)
    if outsiders:
        raise OutsideTeamError(
            "The digest goes only to the fund's own domains; refused: " + ", ".join(outsiders),
            refused=outsiders,
            team_domains=sorted(team.domains),
        )


def not_admins_error(outsiders: list[str]) -> NotAnAdminError:
    """The one refusal for recipients who are not active admins (nothing is sent)."""
    return NotAnAdminError(
        "Only the fund's active admins may receive the digest; refused: "
        + ", ".join(outsiders)
        + ". Nothing was sent.",
        refused=outsiders,
    )


def _is_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain and "." in domain) and not any(
        c.isspace() or c in ',;<>"()[]\\' for c in address
    )


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
