"""In-thread replies, pure: who a reply goes to, its subject and threading headers, the quoted
original, and the RFC 5322 bytes of the draft.

Everything here works from what capture stored (:class:`Email`): a ``gmail.compose`` token cannot
read mail (FACTS.md, section 4), so the draft is built without fetching the original.

Recipients follow Gmail's own buttons:

* ``reply``: to the original's Reply-To, else its From. When the original was sent by the drafting
  mailbox itself (From is the mailbox or one of its aliases), to the original's To (its Cc when it
  had no To), as Gmail does when you reply to your own sent message.
* ``reply_all``: that, plus every other To and Cc participant, To kept in To and Cc in Cc.
* Only the drafting mailbox and its aliases are removed (teammates stay, as in Gmail); addresses
  are deduplicated (the first occurrence wins its place, a display name is kept from whichever
  occurrence has one). Bcc is never copied.

Every header is built from what :mod:`shared.domain.headers` trusts, never from a stranger's text
as it came (mail from anyone may reach a draft once its sender is matched): recipients are only
addresses passing ``is_addr_spec`` (others are left out; no one left is the caller's 409), names
and the subject are ``header_text``, threading ids pass ``is_msg_id``. The draft carries only
:data:`DRAFT_HEADERS`, and its bytes are read back before they are handed over
(``check_written``): another header, a Bcc or other recipients refuse the draft.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime
from enum import StrEnum

from shared.domain.addresses import canonical_address
from shared.domain.headers import (
    UnsafeHeadersError,
    address_field,
    check_written,
    header_text,
    is_addr_spec,
    is_msg_id,
    read_header_text,
    write_policy,
)
from shared.domain.models import Email, Mailbox

# Prefixes that already mark a reply, in the languages mail clients use: Re (and Re[2], Re^2),
# AW (German), SV (Scandinavian), Antw (Dutch), VS (Finnish), Odp (Polish), RIF (Italian),
# RES (Portuguese), Réf, YNT (Turkish), ATB (Latvian), VÁ (Hungarian), 回复/回覆/答复 (Chinese),
# ΑΠ/ΣΧΕΤ (Greek), תשובה (Hebrew). A forward (Fwd:, WG:, TR:) is not a reply: "Re: Fwd: x".
_REPLY_WORDS = "re|aw|sv|antw|vs|odp|rif|res|réf|ref|ynt|atb|vá|回复|回覆|答复|απ|σχετ|תשובה"
_REPLY_PREFIX = re.compile(
    rf"^\s*({_REPLY_WORDS})\s*(\[\d+\]|\^\d+)?\s*[:：]\s*",  # noqa: RUF001 (full-width colon)
    re.IGNORECASE,
)
_RE_ONLY = re.compile(r"^\s*re\s*(\[\d+\]|\^\d+)?\s*:\s*", re.IGNORECASE)
_LINE_BREAKS = re.compile(r"[\r\n]+")
# Every header a draft may carry; never a Bcc.
DRAFT_HEADERS = frozenset(
    {
        "From", "To", "Cc", "Subject", "Date", "In-Reply-To", "References", "MIME-Version",
        "Content-Type", "Content-Transfer-Encoding",
    }
)  # fmt: skip
QUOTE_BODY_LIMIT = 64 * 1024  # characters of the original quoted at most


class ReplyMode(StrEnum):
    REPLY = "reply"
    REPLY_ALL = "reply_all"


@dataclass(frozen=True)
class Recipients:
    to: list[Mailbox]
    cc: list[Mailbox]

    @property
    def addresses(self) -> list[str]:
        return [m.address for m in (*self.to, *self.cc)]


def reply_subject(subject: str) -> str:
    """``Re: `` added once: a subject already starting with a reply prefix in any language is
    kept (a chain of plain ``Re:``s collapses to one); anything else gets ``Re: ``."""
    text = header_text(subject)
    if _RE_ONLY.match(text):
        while _RE_ONLY.match(text):
            text = _RE_ONLY.sub("", text, count=1)
        return f"Re: {text}".rstrip()
    if _REPLY_PREFIX.match(text):
        return text
    return f"Re: {text}".rstrip()


def is_from_mailbox(original: Email, own_addresses: Iterable[str]) -> bool:
    own = _keys(own_addresses)
    return original.sender is not None and _key(original.sender.address) in own


def reply_recipients(original: Email, own_addresses: Iterable[str], mode: ReplyMode) -> Recipients:
    """Who the reply goes to (see the module docstring). May be empty: the caller decides.

    Only strict addr-specs are kept, with their names as :func:`header_text` (a name that held
    a control character is dropped, it is no one's name)."""
    own = _keys(own_addresses)
    outbound = original.sender is not None and _key(original.sender.address) in own
    if outbound:
        primary = list(original.to) or list(original.cc)
        to, cc = (primary, []) if mode is ReplyMode.REPLY else (list(original.to), original.cc)
        if mode is ReplyMode.REPLY_ALL and not to:
            to, cc = list(original.cc), []
    else:
        author = list(original.reply_to) or ([original.sender] if original.sender else [])
        to, cc = author, []
        if mode is ReplyMode.REPLY_ALL:
            to, cc = [*author, *original.to], list(original.cc)
    seen: dict[str, Mailbox] = {}
    placed: dict[str, str] = {}
    for field_name, group in (("to", to), ("cc", cc)):
        for listed in group:
            if not is_addr_spec(listed.address):
                continue
            mailbox = Mailbox(name=_display_name(listed.name), address=listed.address)
            key = _key(mailbox.address)
            if key in own:
                continue
            if key not in seen:
                seen[key] = mailbox
                placed[key] = field_name
            elif not seen[key].name and mailbox.name:
                seen[key] = Mailbox(name=mailbox.name, address=seen[key].address)
    return Recipients(
        to=[seen[k] for k, f in placed.items() if f == "to"],
        cc=[seen[k] for k, f in placed.items() if f == "cc"],
    )


def reply_references(original: Email) -> list[str]:
    """The original's References (or, lacking them, its In-Reply-To) plus its Message-ID: only
    valid message ids (a stored value that is not one is left out)."""
    chain = list(original.references) or ([original.in_reply_to] if original.in_reply_to else [])
    if original.message_id:
        chain.append(original.message_id)
    ids = (_bare_id(ref) for ref in chain)
    return list(dict.fromkeys(ref for ref in ids if is_msg_id(ref)))


def attribution(original: Email, tz: tzinfo = UTC) -> str:
    """``On Tue, 1 Jul 2003 at 08:52 UTC, Joe Q. Public <john.q.public@example.com> wrote:``"""
    who = "someone"
    if original.sender is not None:
        name = _one_line(original.sender.name).strip()
        who = f"{name} <{original.sender.address}>" if name else original.sender.address
    if original.date is None:
        return f"{who} wrote:"
    when = original.date.astimezone(tz)
    stamp = f"{when:%a}, {when.day} {when:%b %Y} at {when:%H:%M} {when.tzname() or ''}".rstrip()
    return f"On {stamp}, {who} wrote:"


def quoted_original(original: Email, tz: tzinfo = UTC) -> str:
    """The stored body as a quotation (``> `` lines) under its attribution; "" without a body."""
    body = original.body or original.snippet
    if not body.strip():
        return ""
    body = body[:QUOTE_BODY_LIMIT]
    lines = body.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    quoted = "\n".join(f"> {line}" if line else ">" for line in lines)
    return f"{attribution(original, tz)}\n{quoted}\n"


@dataclass(frozen=True)
class ReplyDraft:
    raw: bytes
    subject: str
    recipients: Recipients
    in_reply_to: str
    references: list[str]
    quoted: bool


def build_reply(
    original: Email,
    *,
    from_mailbox: Mailbox,
    own_addresses: Sequence[str],
    mode: ReplyMode,
    text: str,
    quote: bool = True,
    now: datetime,
    tz: tzinfo = UTC,
) -> ReplyDraft:
    """The reply as RFC 5322 bytes: RFC 2047 headers, a UTF-8 quoted-printable text body.

    Raises :class:`UnsafeHeadersError` when the bytes do not read back as the draft meant (see
    the module docstring) or the drafting mailbox's own address is not a strict addr-spec."""
    if not is_addr_spec(from_mailbox.address):
        raise UnsafeHeadersError(
            "the drafting mailbox's address cannot be written as a sender", reason_code="bad_from"
        )
    recipients = reply_recipients(original, own_addresses, mode)
    subject = reply_subject(original.subject)
    references = reply_references(original)
    body = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") + "\n"
    quotation = quoted_original(original, tz) if quote else ""
    if quotation:
        body += "\n" + quotation
    in_reply_to = _bare_id(original.message_id)
    if not is_msg_id(in_reply_to):
        in_reply_to = ""
    message = EmailMessage(policy=write_policy())
    message.set_raw("From", address_field("From", [_pair(from_mailbox)]))
    if recipients.to:
        message.set_raw("To", address_field("To", [_pair(m) for m in recipients.to]))
    if recipients.cc:
        message.set_raw("Cc", address_field("Cc", [_pair(m) for m in recipients.cc]))
    message["Subject"] = subject
    message["Date"] = format_datetime(now.astimezone(UTC))
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        message["References"] = " ".join(f"<{ref}>" for ref in references)
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    raw = message.as_bytes()
    check_written(
        raw,
        allowed=DRAFT_HEADERS,
        recipients={
            "From": [from_mailbox.address],
            "To": [m.address for m in recipients.to],
            "Cc": [m.address for m in recipients.cc],
        },
        what="reply draft",
    )
    return ReplyDraft(
        raw=raw,
        subject=subject,
        recipients=recipients,
        in_reply_to=in_reply_to,
        references=references,
        quoted=bool(quotation),
    )


def _pair(mailbox: Mailbox) -> tuple[str, str]:
    return _display_name(mailbox.name), mailbox.address


def _display_name(name: str) -> str:
    """The name as header text; a name that held a control character is nobody's: dropped."""
    text, broke = read_header_text(name)
    return "" if broke else text


def _bare_id(value: str) -> str:
    return value.strip().removeprefix("<").removesuffix(">")


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text)


def _key(address: str) -> str:
    return canonical_address(address)


def _keys(addresses: Iterable[str]) -> set[str]:
    return {_key(a) for a in addresses if a}
