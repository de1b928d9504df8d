"""Sending the daily digest: Gmail-DWD ``users.messages.send`` first, SMTP as the fallback.

The one automated send path, and only ever to the fund's active admins (seed spec, "Outbound
mail"; never extend it to investors). :func:`send_digest` builds one multipart/alternative
message (plain text and HTML, UTF-8, the subject RFC 2047-encoded when it needs to be), From
the digest sender (``CRM_DIGEST_SENDER``, else the first active admin by address), and hands
it to a transport. Right before each transport call the active admins are read again from
the store and the transport itself parses To/Cc/Bcc back from the bytes and refuses any
address that is not one of them (``require_admin_recipients``), so an admin deactivated
between the two attempts is not mailed by the fallback either.

A transport failure is logged with its kind (error class, code, HTTP or SMTP status) only,
never its text: an authentication error can carry a credential.

A Gmail answer of 5xx, or no answer, is ambiguous (Gmail may have sent it), and the SMTP
fallback then runs anyway: the admins may get the day's digest twice, never no digest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any, Literal

from shared.domain.digest_recipients import (
    NotAnAdminError,
    not_admins_error,
    require_team_recipients,
)
from shared.domain.headers import (
    address_field,
    check_written,
    header_text,
    is_addr_spec,
    write_policy,
)
from shared.domain.tenancy import OutsideTeamError, TeamDomains
from shared.errors import AppError, ConfigurationError, UpstreamError
from shared.logging import log_event

if TYPE_CHECKING:
    from shared.ports import GmailTransport, SmtpTransport, UserStore

logger = logging.getLogger(__name__)

Transport = Literal["gmail", "smtp"]
# Every header the digest writes: none of them carries a stranger's text (the subject is the
# digest's own counts and date), and each is still written as header text and read back.
DIGEST_HEADERS = frozenset(
    {
        "From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version",
        "Content-Type",
    }
)  # fmt: skip
# Only these details of a transport error are logged: kinds and codes, never free text.
_SAFE_DETAILS = ("http_status", "reason", "smtp_code", "stage", "method")


@dataclass(frozen=True)
class SendResult:
    transport: Transport
    message_id: str


class DigestNotSentError(UpstreamError):
    """Every configured transport failed; the reasons were logged (kinds only)."""

    code = "digest_not_sent"


def active_admin_addresses(store: UserStore) -> list[str]:
    """The active admins' addresses, lower-cased and sorted: the only allowed recipients."""
    return sorted({u.email.strip().lower() for u in store.list_active_admins()})


def build_digest_message(
    sender: str,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str,
    *,
    now: datetime | None = None,
) -> bytes:
    """RFC 5322 bytes (CRLF): multipart/alternative with a text/plain and a text/html part,
    both UTF-8; the subject as header text (one decoded line, no controls), RFC 2047-encoded
    when not ASCII. Sender and recipients must be strict addr-specs, and the bytes are read back
    before they are returned: :class:`UnsafeHeadersError` (nothing is sent) when they carry a
    header outside :data:`DIGEST_HEADERS` or other recipients than ``to``."""
    if not is_addr_spec(sender):
        raise ConfigurationError(
            "The digest sender is not a plain e-mail address (CRM_DIGEST_SENDER, CRM_SMTP_FROM)",
            variable="CRM_DIGEST_SENDER",
        )
    if not all(is_addr_spec(address) for address in to):
        raise NotAnAdminError("A digest recipient is not a plain e-mail address; nothing was sent.")
    message = EmailMessage(policy=write_policy())
    message.set_raw("From", address_field("From", [("", sender)]))
    message.set_raw("To", address_field("To", [("", address) for address in to]))
    message["Subject"] = header_text(subject)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    raw = message.as_bytes()
    check_written(
        raw, allowed=DIGEST_HEADERS, recipients={"From": [sender], "To": to}, what="digest"
    )
    return raw


def send_digest(
    store: UserStore,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str,
    *,
    gmail_sender_for: Callable[[str], GmailTransport] | None,
    smtp: SmtpTransport | None,
    team_domains: Callable[[], TeamDomains],
    digest_sender: str = "",
    smtp_from: str = "",
) -> SendResult:
    """Send the digest to ``to`` (every one an active admin at one of ``team_domains``, read
    again right before each transport, else nothing is sent).

    Gmail first, acting as ``digest_sender`` (else the first active admin); on any Gmail
    failure, SMTP when configured (From ``smtp_from`` when set, since an SMTP account may only
    send as itself). Raises :class:`NotAnAdminError` (nothing sent) for a recipient that is not
    an active admin, :class:`DigestNotSentError` when every transport failed, and
    ``ConfigurationError`` when none is configured or there is no sender.
    """
    # Each address once: a repeated recipient is one person, not one more copy.
    recipients = list(
        dict.fromkeys(address.strip().lower() for address in to if address and address.strip())
    )
    if not recipients:
        raise NotAnAdminError("The digest has no recipient; nothing was sent.")
    admins = active_admin_addresses(store)
    outsiders = sorted(set(recipients) - set(admins))
    if outsiders:
        raise not_admins_error(outsiders)
    require_team_recipients(recipients, team_domains())
    sender = digest_sender.strip().lower() or (admins[0] if admins else "")
    if not sender:
        raise ConfigurationError(
            "No digest sender: set CRM_DIGEST_SENDER or create an active admin",
            variable="CRM_DIGEST_SENDER",
        )
    if gmail_sender_for is None and smtp is None:
        raise ConfigurationError(
            "No digest transport is configured: Gmail delegation or CRM_SMTP_HOST",
            variable="CRM_SMTP_HOST",
        )

    failures: list[str] = []
    if gmail_sender_for is not None:
        raw = build_digest_message(sender, recipients, subject, text, html)
        try:
            client = gmail_sender_for(sender)
            message_id = client.deliver(
                raw, admins=active_admin_addresses(store), team=team_domains()
            )
        except (NotAnAdminError, OutsideTeamError):
            raise
        except Exception as exc:  # any Gmail failure falls back; only its kind is logged
            failures.append(f"gmail ({_log_failure('gmail', exc, sender=sender)})")
        else:
            _log_sent("gmail", message_id, sender, recipients)
            return SendResult("gmail", message_id)

    if smtp is not None:
        envelope_from = smtp_from.strip().lower() or sender
        raw = build_digest_message(envelope_from, recipients, subject, text, html)
        try:
            message_id = smtp.deliver(
                raw,
                envelope_from,
                recipients,
                admins=active_admin_addresses(store),
                team=team_domains(),
            )
        except (NotAnAdminError, OutsideTeamError):
            raise
        except Exception as exc:
            failures.append(f"smtp ({_log_failure('smtp', exc, sender=envelope_from)})")
        else:
            _log_sent("smtp", message_id, envelope_from, recipients)
            return SendResult("smtp", message_id)

    raise DigestNotSentError(
        "The digest could not be sent: " + ", ".join(failures) + " failed; see the logs",
        transports=[f.split(" ")[0] for f in failures],
    )


def _log_failure(transport: Transport, exc: Exception, *, sender: str) -> str:
    """Log a transport failure by kind (class, code, status codes), never by text; its code."""
    details = exc.details if isinstance(exc, AppError) else {}
    code = exc.code if isinstance(exc, AppError) else "unexpected"
    safe: dict[str, Any] = {k: details[k] for k in _SAFE_DETAILS if k in details}
    log_event(
        logger,
        logging.WARNING,
        "digest transport failed",
        event="digest_transport_failed",
        transport=transport,
        sender=sender,
        error=type(exc).__name__,
        code=code,
        **safe,
    )
    return code


def _log_sent(transport: Transport, message_id: str, sender: str, to: Sequence[str]) -> None:
    log_event(
        logger,
        logging.INFO,
        "digest sent",
        event="digest_sent",
        transport=transport,
        message_id=message_id,
        sender=sender,
        recipients=len(to),
    )
