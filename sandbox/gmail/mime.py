"""RFC 5322 bytes -> the pieces of Gmail's Message resource (payload tree, headers, snippet).

Parsing uses the standard library ``email`` package with the ``compat32`` policy, which never
raises on malformed input (the strict ``policy.default`` header classes can), because the
simulator must serve whatever a test loads, as Gmail serves whatever it received.
"""

from __future__ import annotations

import base64
import email
import email.message
import hashlib
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from email.header import Header, decode_header, make_header
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

SNIPPET_LENGTH = 200
_SUBJECT_PREFIX = re.compile(
    r"^\s*((re|fwd?|aw|sv|wg|antw|tr)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def b64url(data: bytes) -> str:
    """Base64url with padding, as Gmail writes ``raw`` and ``body.data``."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding (clients send both)."""
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_bytes(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=compat32)


def header_text(value: Any) -> str:
    """A header value as Gmail shows it: unfolded, RFC 2047 words decoded, never raising."""
    if isinstance(value, Header):
        text = str(value)
    else:
        text = str(value)
        if "=?" in text:
            try:
                text = str(make_header(decode_header(text)))
            except Exception:  # malformed encoded-words stay as they came
                text = str(value)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return re.sub(r"\r?\n(?=[ \t])", "", text).strip()


def headers_of(part: email.message.Message) -> list[dict[str, str]]:
    return [{"name": str(name), "value": header_text(value)} for name, value in part.items()]


def first_header(message: email.message.Message, name: str) -> str:
    value = message.get(name)
    return "" if value is None else header_text(value)


def message_ids_in(text: str) -> list[str]:
    """Every ``<id>`` in a Message-ID / In-Reply-To / References value, lowercased."""
    return [token.lower() for token in _MESSAGE_ID.findall(text)]


def normalised_subject(subject: str) -> str:
    return " ".join(_SUBJECT_PREFIX.sub("", subject).split()).lower()


def addresses(message: email.message.Message, name: str) -> list[str]:
    values = [header_text(v) for v in message.get_all(name, [])]
    return [addr.lower() for _, addr in getaddresses(values) if addr]


def date_header_ms(message: email.message.Message) -> int | None:
    value = first_header(message, "Date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # RFC 5322 "-0000": zone unknown, read as UTC
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _decoded_payload(part: email.message.Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return b""


def _text_of(part: email.message.Message) -> str:
    data = _decoded_payload(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _is_attachment(part: email.message.Message) -> bool:
    try:
        filename = part.get_filename()
    except Exception:
        filename = None
    disposition = str(part.get("Content-Disposition", "")).lower()
    return bool(filename) or disposition.startswith("attachment")


def _filename(part: email.message.Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        return ""
    return header_text(name) if name else ""


@dataclass
class ParsedMessage:
    """What the simulator keeps of one message, computed once when it is added."""

    raw: bytes
    message: email.message.Message
    headers: list[dict[str, str]]
    subject: str
    message_id: str  # lowercased ``<...>`` or ""
    references: list[str]  # ids from In-Reply-To and References, lowercased
    snippet: str
    search_text: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    sender: list[str] = field(default_factory=list)


def parse_message(raw: bytes) -> ParsedMessage:
    message = parse_bytes(raw)
    subject = first_header(message, "Subject")
    ids = message_ids_in(first_header(message, "Message-ID"))
    references = message_ids_in(first_header(message, "In-Reply-To")) + message_ids_in(
        first_header(message, "References")
    )
    text = body_text(message)
    headers = headers_of(message)
    header_blob = " ".join(f"{h['name']}: {h['value']}" for h in headers)
    return ParsedMessage(
        raw=raw,
        message=message,
        headers=headers,
        subject=subject,
        message_id=ids[0] if ids else "",
        references=references,
        snippet=make_snippet(text),
        search_text=(header_blob + "\n" + text).lower(),
        to=addresses(message, "To"),
        cc=addresses(message, "Cc"),
        bcc=addresses(message, "Bcc"),
        sender=addresses(message, "From"),
    )


def body_text(message: email.message.Message) -> str:
    """The first text/plain body, else the first text/html one with tags stripped."""
    html_text: str | None = None
    for part in message.walk():
        if part.is_multipart() or _is_attachment(part):
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain":
            return _text_of(part)
        if content_type == "text/html" and html_text is None:
            html_text = html.unescape(_TAGS.sub(" ", _text_of(part)))
    return html_text or ""


def make_snippet(text: str) -> str:
    """Gmail's snippet: the start of the text, whitespace collapsed, HTML-escaped like Gmail."""
    short = " ".join(text.split())[:SNIPPET_LENGTH]
    return (
        short.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def metadata_payload(parsed: ParsedMessage, wanted: Iterable[str] | None) -> dict[str, Any]:
    headers = parsed.headers
    names = {name.lower() for name in wanted or ()}
    if names:
        headers = [h for h in headers if h["name"].lower() in names]
    return {"mimeType": parsed.message.get_content_type(), "headers": headers}


def full_payload(parsed: ParsedMessage, gmail_id: str) -> dict[str, Any]:
    return _part_resource(parsed.message, "", gmail_id)


def _attachment_id(gmail_id: str, part_id: str) -> str:
    digest = hashlib.sha256(f"{gmail_id}/{part_id}".encode()).digest()
    return "ANGjdJ" + base64.urlsafe_b64encode(digest * 3).decode("ascii").rstrip("=")


def _part_resource(part: email.message.Message, part_id: str, gmail_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": _filename(part),
        "headers": headers_of(part),
    }
    prefix = f"{part_id}." if part_id else ""
    if part.is_multipart():
        children = part.get_payload()
        resource["body"] = {"size": 0}
        if isinstance(children, list):
            resource["parts"] = [
                _part_resource(child, f"{prefix}{index}", gmail_id)
                for index, child in enumerate(children)
                if isinstance(child, email.message.Message)
            ]
        return resource
    data = _decoded_payload(part)
    if _is_attachment(part):
        resource["body"] = {"attachmentId": _attachment_id(gmail_id, part_id), "size": len(data)}
    elif data:
        resource["body"] = {"size": len(data), "data": b64url(data)}
    else:
        resource["body"] = {"size": 0}
    return resource
