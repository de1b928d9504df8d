"""Hostile mail whose header values Gmail hands over decoded with control characters in them,
and rows written the way capture wrote them before it distrusted those values (for the repair
tests): the old code path is kept here, verbatim in effect, as the fixture of what is stored.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime, parseaddr

from shared.domain.models import Email, Mailbox, Sighting, email_id_for
from shared.domain.parser import parse_message
from shared.ports import GmailClient, GmailMessage, Store
from shared.services.capture import METADATA_HEADERS

CONTACT = "zoe@zeta.vc"  # seed_crm's contact (investor inv-zeta-fund-1)
STRANGER = "stan@nowhere.example"
# Encoded words whose decoded text holds CR LF and a header, or a NUL.
ZOE_CRLF_BCC = "=?utf-8?q?Zoe=0D=0ABcc=3A_evil=40y?= <zoe@zeta.vc>"
ZOE_NUL = "=?utf-8?q?Zoe=00?= <zoe@zeta.vc>"
MAX_CRLF_CC = "=?utf-8?q?Max=0D=0ACc=3A_x=40z.example?= <max@other.example>"
STAN_CRLF_BCC = "=?utf-8?q?Stan=0D=0ABcc=3A_evil=40y?= <stan@nowhere.example>"
STAN_NUL = "=?utf-8?q?Stan=00?= <stan@nowhere.example>"
STAN_ONLY_TEXT = "=?utf-8?q?Stan=00_stan=40nowhere.example?="  # no <addr-spec> left at all
INVENTED = {"evil@y", "x@z.example"}


def raw_message(
    message_id: str,
    *,
    sender: str,
    to: str,
    date: datetime,
    cc: str = "",
    subject: str = "Quarterly numbers",
    body: str = "We'd like to see the deck & the <b>numbers</b>.",
) -> bytes:
    """RFC 5322 bytes written by hand (the ``email`` package would re-encode the names)."""
    lines = [f"Message-ID: {message_id}", f"From: {sender}", f"To: {to}"]
    if cc:
        lines.append(f"Cc: {cc}")
    lines += [
        f"Subject: {subject}",
        f"Date: {format_datetime(date)}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def old_header_block(message: GmailMessage) -> bytes:
    """Capture's header block before the fix: decoded values joined, CR/LF made spaces."""
    lines = []
    for raw_name, raw_value in message.headers:
        name = raw_name.strip()
        value = raw_value.replace("\r", " ").replace("\n", " ")
        if name:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def write_old_row(
    store: Store, gmail: GmailClient, account_id: str, gmail_id: str, *, snippet: str = ""
) -> Email:
    """Store one message as capture did before the fix (from its metadata, unmatched, the
    snippet as Gmail sent it), with its sighting; the email as stored."""
    fetched = gmail.get_messages([gmail_id], format="metadata", metadata_headers=METADATA_HEADERS)
    message = fetched.messages[gmail_id]
    parsed = parse_message(old_header_block(message))
    written = sorted(parsed.participant_addresses)
    sender = parsed.sender
    if sender is not None and not sender.name:
        # The parser before its own fix kept a display name holding a NUL as it was decoded.
        sender = Mailbox(name=parseaddr(message.header("From"))[0], address=sender.address)
    email = Email(
        id=email_id_for(parsed.message_id),
        message_id=parsed.message_id,
        subject=parsed.subject,
        sender=sender,
        reply_to=list(parsed.reply_to),
        to=list(parsed.to),
        cc=list(parsed.cc),
        bcc=list(parsed.bcc),
        date=parsed.date or message.internal_date,
        size=message.size_estimate,
        participant_addresses=written,
        participant_domains=list(parsed.participant_domains),
        is_bulk=parsed.is_bulk,
        snippet=snippet,
    )
    store.upsert_email(email)
    store.record_sighting(
        Sighting.new(
            account_id,
            gmail_id,
            email.id,
            thread_id=message.thread_id,
            label_ids=list(message.label_ids),
        )
    )
    stored = store.get_email(email.id)
    assert stored is not None
    return stored
