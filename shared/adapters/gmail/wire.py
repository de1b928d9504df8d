"""Gmail's JSON decoded into the port's types: the only module that reads Gmail field names.

Why each decoding is here and not in capture:

- **A decoded value is never re-read as structure.** Gmail hands ``metadata`` (and ``full``)
  header values over already decoded, so a display name may hold CR LF ``Bcc: ...`` or a NUL.
  Before any header reaches the one parser, such a value keeps only its valid ``<addr-spec>``
  addresses (address headers; names dropped, none made up) or is flattened to one line (any
  other header), and the message says so (``GmailMessage.header_notes``).
- **Bodies are bytes for the parser.** ``raw`` is base64url without padding; ``full`` is a tree
  of parts whose text parts are decoded here and joined to the safe headers as MIME (attachment
  parts come without data and are never downloaded).
- **Snippets are text.** Gmail's snippet is HTML-escaped (``We&#39;d``): unescaped once here.
- ``internalDate`` is epoch milliseconds as a string; history ids are strings.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.domain.headers import angle_addr_specs, has_control, one_line
from shared.ports.gmail import (
    CreatedDraft,
    GmailMessage,
    HistoryChange,
    HistoryChangeKind,
    HistoryRecord,
    MailboxProfile,
    WatchAnswer,
)

# Headers whose decoded value the parser reads as an address list.
ADDRESS_HEADER_NAMES = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})
# A history record's lists, in the order capture has always walked them.
_HISTORY_LISTS: tuple[tuple[str, HistoryChangeKind], ...] = (
    ("messagesAdded", HistoryChangeKind.MESSAGE_ADDED),
    ("messagesDeleted", HistoryChangeKind.MESSAGE_DELETED),
    ("labelsAdded", HistoryChangeKind.LABELS_ADDED),
    ("labelsRemoved", HistoryChangeKind.LABELS_REMOVED),
)


def decode_message(resource: Mapping[str, Any], fmt: str) -> GmailMessage:
    """A ``users.messages`` resource fetched in format ``fmt``, typed."""
    payload = resource.get("payload") or {}
    headers = tuple(
        (str(h.get("name", "")), str(h.get("value", ""))) for h in payload.get("headers") or ()
    )
    block = b""
    notes: list[str] = []
    if fmt in ("metadata", "full"):
        pairs, notes = decoded_headers(headers)
        block = header_block(pairs)
    mime = b""
    if fmt == "raw":
        mime = _b64url(str(resource.get("raw", "")))
    elif fmt == "full":
        mime = full_to_mime(payload)
    escaped = str(resource.get("snippet", ""))
    return GmailMessage(
        id=str(resource["id"]),
        thread_id=str(resource.get("threadId", "") or ""),
        label_ids=tuple(str(label) for label in resource.get("labelIds") or ()),
        internal_date=internal_date(resource.get("internalDate")),
        size_estimate=int(resource.get("sizeEstimate", 0) or 0),
        snippet=html.unescape(escaped),
        snippet_escaped=escaped,
        headers=headers,
        header_block=block,
        header_notes=tuple(notes),
        control_header_names=tuple(
            dict.fromkeys(one_line(name) for name, value in headers if has_control(value))
        ),
        mime=mime,
    )


def decode_history_record(record: Mapping[str, Any]) -> HistoryRecord:
    """One ``users.history`` record, typed (its changes in Gmail's list order)."""
    changes: list[HistoryChange] = []
    for key, kind in _HISTORY_LISTS:
        for item in record.get(key) or ():
            message = item.get("message") or {}
            # An added message carries its own labels; a label change names the labels changed.
            labels = message.get("labelIds") if kind is HistoryChangeKind.MESSAGE_ADDED else None
            if kind in (HistoryChangeKind.LABELS_ADDED, HistoryChangeKind.LABELS_REMOVED):
                labels = item.get("labelIds")
            changes.append(
                HistoryChange(
                    kind=kind,
                    message_id=str(message["id"]),
                    label_ids=tuple(str(label) for label in labels or ()),
                )
            )
    return HistoryRecord(id=int(record.get("id", 0) or 0), changes=tuple(changes))


def decode_profile(resource: Mapping[str, Any]) -> MailboxProfile:
    """``users.getProfile``'s answer (its counts and history id are strings), typed."""
    return MailboxProfile(
        email_address=str(resource.get("emailAddress", "")),
        messages_total=int(resource.get("messagesTotal", 0) or 0),
        threads_total=int(resource.get("threadsTotal", 0) or 0),
        history_id=int(resource.get("historyId", 0) or 0),
    )


def decode_watch(resource: Mapping[str, Any]) -> WatchAnswer:
    """``users.watch``'s answer: ``expiration`` is epoch milliseconds as a string."""
    expiration = internal_date(resource["expiration"])
    if expiration is None:
        raise ValueError("users.watch answered without an expiration")
    return WatchAnswer(history_id=int(resource["historyId"]), expiration=expiration)


def decode_created_draft(resource: Mapping[str, Any]) -> CreatedDraft:
    """A ``users.drafts`` resource as ``drafts.create`` answers it, typed."""
    message = resource.get("message") or {}
    return CreatedDraft(
        draft_id=str(resource.get("id") or ""),
        message_id=str(message.get("id") or ""),
        thread_id=str(message.get("threadId") or ""),
    )


def internal_date(value: Any) -> datetime | None:
    """Gmail's epoch milliseconds (``internalDate``, a watch's ``expiration``; a string) as a
    UTC datetime."""
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)


def decoded_header(name: str, value: str) -> tuple[str, str]:
    """A header value Gmail decoded, made safe to hand to the parser again, and the problem
    found in it ("" if none).

    A value without control characters is as it came. One with them was shaped by the
    sender's display-name text (decoded encoded words): an address header keeps only its
    valid ``<addr-spec>`` addresses and drops the names (no address is ever read out of name
    text, and none is made up: with none left the header is empty); any other header becomes
    one line.
    """
    if not has_control(value):
        return value, ""
    if name.strip().lower() in ADDRESS_HEADER_NAMES:
        kept = angle_addr_specs(value)
        safe = ", ".join(f"<{address}>" for address in kept)
        return safe, (
            f"{name}: held control characters; kept only its {len(kept)} <address>"
            f" value(s), display names dropped"
        )
    return one_line(value), f"{name}: held control characters; flattened to one line"


def decoded_headers(headers: Iterable[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """Gmail's decoded header values (metadata, or a ``full`` payload's) as safe
    ``(name, value)`` pairs, and the problems found in them."""
    pairs: list[tuple[str, str]] = []
    notes: list[str] = []
    for raw_name, raw_value in headers:
        name = one_line(raw_name).replace(" ", "").rstrip(":")
        if not name:
            continue
        value, note = decoded_header(name, raw_value)
        pairs.append((name, value))
        if note and note not in notes:
            notes.append(note)
    return pairs, notes


def header_block(pairs: Iterable[tuple[str, str]]) -> bytes:
    """Safe ``(name, value)`` pairs as an RFC 5322 header block, for the one parser."""
    lines = [f"{name}: {value}" for name, value in pairs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def full_to_mime(payload: Mapping[str, Any]) -> bytes:
    """A ``format=full`` payload as MIME bytes for the parser: its headers (made safe like
    metadata's) plus its first text part, preferring ``text/plain``."""
    texts: list[tuple[str, str]] = []

    def walk(part: Mapping[str, Any]) -> None:
        mime = str(part.get("mimeType", ""))
        data = (part.get("body") or {}).get("data")
        if mime in ("text/plain", "text/html") and data and not part.get("filename"):
            texts.append((mime, _b64url(str(data)).decode("utf-8", "replace")))
        for child in part.get("parts", []) or []:
            walk(child)

    walk(payload)
    preferred = next((t for t in texts if t[0] == "text/plain"), texts[0] if texts else None)
    pairs, _ = decoded_headers(
        (str(h.get("name", "")), str(h.get("value", ""))) for h in payload.get("headers") or ()
    )
    headers = [
        f"{name}: {value}"
        for name, value in pairs
        if name.lower() not in ("content-type", "content-transfer-encoding")
    ]
    if preferred is None:
        return ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8", "replace")
    mime, text = preferred
    headers += [
        f"Content-Type: {mime}; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    return ("\r\n".join(headers) + "\r\n\r\n" + text).encode("utf-8", "replace")


def _b64url(data: str) -> bytes:
    """Gmail's base64url, which comes without its ``=`` padding."""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
