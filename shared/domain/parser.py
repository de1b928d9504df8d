"""Parse one raw RFC 5322 / MIME message into the fields capture needs (pure: no I/O, no Google).

``parse_message`` never raises: every header or part it cannot read becomes a line in
``ParsedMessage.problems`` and the field falls back to its empty value. It is built on the
standard library ``email`` package with ``email.policy.default``; where that policy's structured
header parsers choke, the raw header text is read with the tolerant legacy helpers instead.
Attachment content is never kept, only its name, type and size.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import email.utils
import html as html_module
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from functools import lru_cache, partial
from html.parser import HTMLParser
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.headers import msg_ids, read_header_text
from shared.domain.models import Mailbox, normalize_address, normalize_domain

__all__ = ["ADDRESS_HEADERS", "Attachment", "ParsedMessage", "html_to_text", "parse_message"]

# Field name on ParsedMessage -> header name.
ADDRESS_HEADERS: dict[str, str] = {
    "from_": "From",
    "reply_to": "Reply-To",
    "to": "To",
    "cc": "Cc",
    "bcc": "Bcc",
}

T = TypeVar("T")

_MAX_DEPTH = 40
_BULK_PRECEDENCE = {"bulk", "list", "junk"}
_NOREPLY_LOCAL_RE = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|postmaster)(?:$|[-_.+])"
)
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "tfoot",
        "thead", "title", "tr", "ul",
    }
)  # fmt: skip
_SKIP_TAGS = frozenset({"script", "style", "template", "head"})


class Attachment(BaseModel):
    """Metadata of one attached part; the content itself is never kept."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: str = ""
    content_type: str = "application/octet-stream"
    size: int = 0


class ParsedMessage(BaseModel):
    """What one raw message says, as far as it could be read. ``problems`` says what could not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = Field(default_factory=list)
    subject: str = ""
    from_: list[Mailbox] = Field(default_factory=list)
    reply_to: list[Mailbox] = Field(default_factory=list)
    to: list[Mailbox] = Field(default_factory=list)
    cc: list[Mailbox] = Field(default_factory=list)
    bcc: list[Mailbox] = Field(default_factory=list)
    date: datetime | None = None
    body_text: str = ""
    # "text/plain", "text/html" (converted to text) or "" when the message has no text part.
    body_source: str = ""
    attachments: list[Attachment] = Field(default_factory=list)
    is_bulk: bool = False
    bulk_reasons: list[str] = Field(default_factory=list)
    participant_addresses: list[str] = Field(default_factory=list)
    participant_domains: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)

    @property
    def sender(self) -> Mailbox | None:
        """The first From mailbox (what ``Email.sender`` stores)."""
        return self.from_[0] if self.from_ else None


# --------------------------------------------------------------------------------------------
# text helpers


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """Turn surrogate-escaped raw bytes (8-bit headers) back into text: utf-8, else latin-1."""
    if not _SURROGATE.search(text):
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _decode_bytes(data: bytes, charset: str | None, where: str, problems: list[str]) -> str:
    """Decode with the declared charset; fall back to utf-8, then latin-1, and say so."""
    name = (charset or "us-ascii").strip().strip("\"'").lower() or "us-ascii"
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):
        problems.append(f"{where}: unknown charset {name!r}, decoded as utf-8/latin-1")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    if codec in {"latin-1", "iso8859-1"} and re.search(rb"[\x80-\x9f]", data):
        # What every browser does: text labelled ISO-8859-1 with C1 bytes is windows-1252.
        return data.decode("cp1252", "replace")
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError):
        pass
    problems.append(f"{where}: not valid {name}, decoded with replacement")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode(codec, "replace")
    except (LookupError, ValueError):
        return data.decode("latin-1")


# --------------------------------------------------------------------------------------------
# headers


class _MemoPolicy(email.policy.EmailPolicy):
    """``email.policy.default`` that builds each distinct header object once.

    The default policy parses a header again on every access (the feed parser alone asks for
    Content-Type several times per part), which was most of capture's CPU per message. Header
    objects are immutable ``str`` subclasses, so one object can serve every access to an equal
    (name, value) pair, in this message and the next: answers are the same objects as before.
    """

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name"):
            return value
        value = _unfold(value)
        if len(value) > _MEMO_MAX_CHARS:  # a stranger's huge header is parsed, never kept
            return email.policy.default.header_factory(name, value)
        return _header_object(name, value)


_LINESEP = re.compile(r"\n|\r")  # the one email.policy splits on
_PART_HEADERS = frozenset({"content-type", "content-disposition", "content-transfer-encoding"})
_ENCODED_WORD_START = "=?"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
# One mailbox in the plain form (see ``_simple_addresses``): a bare addr-spec, or an optional
# phrase of atoms or one quoted string (printable ASCII, no backslash) and an addr-spec in
# angle brackets; spaces and tabs around.
_SIMPLE_MAILBOX = re.compile(
    rf"[ \t]*(?:(?P<spec>{_DOT_ATOM}@{_DOT_ATOM})"
    rf"|(?:(?P<name>{_ATEXT}(?:[ \t]+{_ATEXT})*)|\"(?P<quoted>[ \t!#-\[\]-~]+)\")?"
    rf"[ \t]*<(?P<angle>{_DOT_ATOM}@{_DOT_ATOM})>)[ \t]*"
)
_MEMO_MAX_CHARS = 2048  # with 4,096 entries: at most about 8 M characters kept
_MAILBOX_MEMO_MAX_CHARS = 256
# Longer address headers skip the structured parser (``_parsed_addresses``); plain lists of any
# length take the fast path first. 16 K is about 400 mailboxes with encoded names.
_STRUCTURED_MAX_CHARS = 16_384


def _unfold(value: str) -> str:
    """A stored header value unfolded the way the policy unfolds it before parsing."""
    return "".join(_LINESEP.split(value))


@lru_cache(maxsize=4096)
def _header_object(name: str, value: str) -> Any:
    return email.policy.default.header_factory(name, value)


_POLICY = _MemoPolicy()


class _Headers:
    """The message's headers as stored, grouped by lower-cased name in one pass.

    Every field reads a header or two by name; scanning all of them for each (a dozen times per
    message) was a measurable share of capture's CPU.
    """

    __slots__ = ("_raw", "_values", "mime")

    def __init__(self, msg: Message) -> None:
        self._raw: dict[str, list[str]] = {}
        mime: list[tuple[str, str]] = []
        for key, value in msg.raw_items():
            text = value if isinstance(value, str) else str(value)
            lowered = key.lower()
            self._raw.setdefault(lowered, []).append(text)
            if lowered in _PART_HEADERS:
                mime.append((key, text))
        self._values: dict[str, tuple[str, ...]] = {}
        # The headers a part's own reading (type, disposition, file name, charset, transfer
        # encoding) looks at, as stored and in order.
        self.mime = tuple(mime)

    def raw(self, name: str) -> list[str]:
        """Every occurrence of a header exactly as stored (folded), in order."""
        return self._raw.get(name.lower(), [])

    def values(self, name: str) -> tuple[str, ...]:
        """Every occurrence of a header as unfolded text, without the policy's structured
        parsing."""
        wanted = name.lower()
        if wanted not in self._raw:
            return ()
        values = self._values.get(wanted)
        if values is None:
            values = tuple(_clean("".join(t.splitlines())).strip() for t in self.raw(wanted))
            self._values[wanted] = values
        return values


def _decode_words(text: str) -> str:
    """RFC 2047 decoding of a raw header value, never raising."""
    try:
        return str(make_header(decode_header(text)))
    except Exception:  # any broken encoded word: keep the raw text
        return text


def _has_raw_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _raw_8bit(text: str, charset: str | None, header: str, problems: list[str]) -> str:
    """Undeclared 8-bit header bytes: utf-8 if they are, else the body's charset, else latin-1."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for candidate in (charset, "latin-1"):
        if not candidate:
            continue
        try:
            decoded = data.decode(candidate)
        except (UnicodeDecodeError, LookupError, ValueError):
            continue
        problems.append(f"{header}: undeclared 8-bit text, decoded as {candidate}")
        return decoded
    return data.decode("latin-1")  # unreachable: latin-1 decodes every byte


def _charset_hint(msg: Message) -> str | None:
    """The first non-ASCII charset a part declares: the likeliest one for undeclared 8-bit."""
    try:
        for part in msg.walk():
            charset = part.get_content_charset()
            if charset and charset not in {"us-ascii", "ascii", "utf-8", "utf8"}:
                return charset
    except Exception:
        return None
    return None


def _subject(msg: Message, headers: _Headers, problems: list[str], fast: bool) -> str:
    """The subject as header text (one decoded line, no controls): safe to write back."""
    raw = headers.raw("subject")
    if not raw:
        return ""
    first = "".join(raw[0].splitlines()).strip()
    if _has_raw_bytes(first):
        charset = _charset_hint(msg)
        return _header_text(
            _decode_words(_raw_8bit(first, charset, "Subject", problems)), "Subject", problems
        )
    if fast and _ENCODED_WORD_START not in raw[0]:
        # Without an encoded word the policy's unstructured parse gives back exactly the text
        # it was given, unfolded as the policy unfolds (``_MemoPolicy.header_fetch_parse``).
        return _header_text(_clean(_unfold(raw[0])), "Subject", problems)
    try:
        value = msg["subject"]
        text = str(value) if value is not None else ""
    except Exception as exc:
        problems.append(f"Subject: unreadable ({type(exc).__name__}), decoded leniently")
        text = _decode_words(first)
    return _header_text(_clean(text), "Subject", problems)


def _header_text(text: str, header: str, problems: list[str]) -> str:
    safe, broke = read_header_text(text)
    if broke:
        problems.append(f"{header}: control characters replaced by spaces")
    return safe


def _ids(value: str, name: str, problems: list[str]) -> list[str]:
    """The valid message ids in one raw value; every other token is dropped and noted."""
    valid, rejected = msg_ids(value)
    for token in rejected:
        problems.append(f"{name}: dropped {token[:80]!r}, not a message id")
    return valid


def _references(headers: _Headers, problems: list[str]) -> list[str]:
    values = headers.values("references")
    return list(dict.fromkeys(i for v in values for i in _ids(v, "References", problems)))


def _id_header(headers: _Headers, name: str, problems: list[str]) -> str:
    for value in headers.values(name):
        ids = _ids(value, name, problems)
        if ids:
            return ids[0]
    return ""


def _mailbox(name: str, addr_spec: str, header: str, problems: list[str]) -> Mailbox | None:
    spec = _clean(addr_spec).strip()
    try:
        local, _, domain = spec.rpartition("@")
        if not local:
            raise ValueError(spec)
        if not domain.isascii():  # RFC 6532 internationalised domain: stored as its A-label
            domain = domain.encode("idna").decode("ascii")
        address = normalize_address(f"{local}@{domain}")
        normalize_domain(domain)
        text, broke = read_header_text(_clean(name))
        if broke:  # a name that tried to end its line is nobody's name
            problems.append(f"{header}: dropped the display name of {address}: control characters")
            text = ""
        return Mailbox(name=text, address=address)
    except (ValueError, UnicodeError):
        shown = spec or name
        if shown.strip():
            problems.append(f"{header}: skipped invalid address {shown[:80]!r}")
        return None


@lru_cache(maxsize=4096)
def _remembered_mailbox(
    name: str, addr_spec: str, header: str
) -> tuple[Mailbox | None, tuple[str, ...]]:
    """``_mailbox`` of a short plain pair, and the problems it noted: the same few addresses
    (the mailbox's own, its usual correspondents) come back in message after message."""
    notes: list[str] = []
    return _mailbox(name, addr_spec, header, notes), tuple(notes)


def _simple_addresses(raw: list[str]) -> list[tuple[str, str]] | None:
    """``(display name, addr-spec)`` pairs of address values written in the plain form most
    mail uses (``Name Name <local@domain>, "Last, First" <local@domain>, local@domain``:
    printable ASCII), exactly as the policy's address parser reads them; ``None`` for anything
    else (escapes, comments, groups, encoded words, 8-bit, empty entries), which only that
    parser reads.

    Why it is exact: such a value has no token the parser treats specially, so it finds each
    comma-separated mailbox with no defect; its display name is the atoms joined by one space
    (each run of folding whitespace reads as one) or the quoted text as it stands, and its
    addr-spec the dot-atoms between the brackets (or the bare address), unquoted.
    """
    pairs: list[tuple[str, str]] = []
    for text in raw:
        value = _unfold(text)
        if _ENCODED_WORD_START in value:
            return None
        at, end = 0, len(value)
        while True:
            match = _SIMPLE_MAILBOX.match(value, at)
            if match is None:
                return None
            name, quoted, angle, spec = match.group("name", "quoted", "angle", "spec")
            pairs.append((quoted or (" ".join(name.split()) if name else ""), angle or spec))
            at = match.end()
            if at == end:
                break
            if value[at] != "," or at + 1 == end:  # an empty entry: the parser's to read
                return None
            at += 1
    return pairs


def _parsed_addresses(
    msg: Message, headers: _Headers, header: str, problems: list[str]
) -> list[tuple[str, str]]:
    """``(display name, addr-spec)`` pairs as the policy's structured parser reads them (its
    invalid-address defects noted), or as the legacy parser does where it fails."""
    pairs: list[tuple[str, str]] = []
    size = sum(len(value) for value in headers.raw(header))
    if size > _STRUCTURED_MAX_CHARS:
        # The structured parser's time grows faster than the text (a stranger's 40 KB From of
        # bare words took 11 s of CPU): past the limit, the legacy parser's linear reading.
        problems.append(f"{header}: {size} characters, too long to read strictly, parsed leniently")
        return [
            (_decode_words(name), spec)
            for name, spec in email.utils.getaddresses(list(headers.values(header)))
        ]
    try:
        values: list[Any] = msg.get_all(header) or []
        for value in values:
            for group in value.groups:
                for addr in group.addresses:
                    pairs.append((str(addr.display_name or ""), str(addr.addr_spec or "")))
            for defect in getattr(value, "defects", ()):
                if "invalid" in str(defect).lower() or "Invalid" in type(defect).__name__:
                    problems.append(f"{header}: {type(defect).__name__}: {str(defect)[:80]}")
    except Exception as exc:  # the structured parser failed: use the legacy one
        problems.append(f"{header}: unreadable ({type(exc).__name__}), parsed leniently")
        pairs = [
            (_decode_words(name), spec)
            for name, spec in email.utils.getaddresses(list(headers.values(header)))
        ]
    return pairs


def _address_list(
    msg: Message, headers: _Headers, header: str, problems: list[str], fast: bool
) -> list[Mailbox]:
    if not headers.raw(header):
        return []
    simple = _simple_addresses(headers.raw(header)) if fast else None
    pairs = simple if simple is not None else _parsed_addresses(msg, headers, header, problems)
    mailboxes: list[Mailbox] = []
    seen: set[str] = set()
    for name, spec in pairs:
        if simple is not None and len(name) + len(spec) <= _MAILBOX_MEMO_MAX_CHARS:
            mailbox, notes = _remembered_mailbox(name, spec, header)
            problems.extend(notes)
        else:
            mailbox = _mailbox(name, spec, header, problems)
        if mailbox is not None and mailbox.address not in seen:
            seen.add(mailbox.address)
            mailboxes.append(mailbox)
    return mailboxes


def _date(headers: _Headers, problems: list[str]) -> datetime | None:
    raw = headers.values("date")
    if not raw:
        return None
    text = raw[0]
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except Exception:  # ValueError, TypeError, OverflowError, IndexError...
        problems.append(f"Date: unparseable {text[:80]!r}")
        return None
    if parsed.tzinfo is None:  # "-0000": the zone is unknown, the time is UTC (RFC 5322 3.3)
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        problems.append(f"Date: out of range {text[:80]!r}")
        return None


def _bulk_reasons(headers: _Headers, from_: list[Mailbox]) -> list[str]:
    reasons: list[str] = []
    if headers.values("list-id"):
        reasons.append("list-id")
    if headers.values("list-unsubscribe"):
        reasons.append("list-unsubscribe")
    for value in headers.values("precedence"):
        token = value.strip().lower()
        if token in _BULK_PRECEDENCE:
            reasons.append(f"precedence:{token}")
    for value in headers.values("auto-submitted"):
        token = value.split(";")[0].strip().lower()
        if token and token != "no":
            reasons.append(f"auto-submitted:{token}")
    senders = [m.address for m in from_]
    for value in headers.values("sender"):
        for _, spec in email.utils.getaddresses([value]):
            senders.append(spec.strip().lower())
    for address in senders:
        if _NOREPLY_LOCAL_RE.match(address.partition("@")[0]):
            reasons.append(f"noreply-sender:{address}")
    return list(dict.fromkeys(reasons))


# --------------------------------------------------------------------------------------------
# HTML


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":  # an unclosed <head> ends where the body starts
            self._skipping = [t for t in self._skipping if t != "head"]
        if tag in _SKIP_TAGS:
            self._skipping.append(tag)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag in {"td", "th"}:
            self.chunks.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            if tag in self._skipping:
                while self._skipping and self._skipping.pop() != tag:
                    pass
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            # Source line breaks are just whitespace in HTML; block elements make the lines.
            self.chunks.append(re.sub(r"\s+", " ", data))


def _tidy(text: str) -> str:
    lines = [_one_line(line) for line in text.replace("\xa0", " ").splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def html_to_text(html: str) -> str:
    """Visible text of an HTML document: tags, scripts and styles gone, entities decoded, one
    line per block element. Never raises (falls back to a regex strip)."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
        return _tidy("".join(parser.chunks))
    except Exception:  # HTMLParser asserts on some malformed markup
        text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", html)
        text = re.sub(r"(?i)<br\s*/?>|</?(p|div|tr|li|h[1-6])\b[^>]*>", "\n", text)
        text = re.sub(r"<[^>]*>", " ", text)
        return _tidy(html_module.unescape(text))


# --------------------------------------------------------------------------------------------
# MIME structure


class _Walk:
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self._defects: set[str] = set()

    def _note_defects(self, part: Message) -> None:
        for defect in getattr(part, "defects", ()):
            name = type(defect).__name__
            if name not in self._defects:
                self._defects.add(name)
                self.problems.append(f"MIME defect: {name}")

    def visit(self, part: Message, path: str, depth: int) -> None:
        try:
            self._visit(part, path, depth)
        except Exception as exc:  # one unreadable part never sinks the message
            self.problems.append(f"part {path}: unreadable ({type(exc).__name__}: {exc})"[:200])

    def _visit(self, part: Message, path: str, depth: int) -> None:
        self._note_defects(part)
        if depth > _MAX_DEPTH:
            self.problems.append(
                f"MIME nesting deeper than {_MAX_DEPTH} levels: inner parts not read"
            )
            return
        ctype = part.get_content_type()
        disposition = _safe(part.get_content_disposition)
        filename = _safe(part.get_filename)
        filename = _one_line(_clean(_decode_words(filename))) if filename else ""
        attached = disposition == "attachment" or bool(filename)
        if part.is_multipart() and not attached:
            payload = part.get_payload()
            if ctype.startswith("message/") and ctype != "message/rfc822":
                return  # delivery-status, external-body, partial: machine text, not a body
            children = payload if isinstance(payload, list) else []
            for index, child in enumerate(children, 1):
                if isinstance(child, Message):
                    self.visit(child, f"{path}.{index}", depth + 1)
            return
        if ctype in {"text/plain", "text/html"} and not attached:
            data = part.get_payload(decode=True)
            raw = data if isinstance(data, bytes) else b""
            text = _decode_bytes(
                raw, _safe(part.get_content_charset), f"part {path}", self.problems
            )
            (self.plain if ctype == "text/plain" else self.html).append(text)
            return
        if ctype.startswith(("multipart/", "message/")) or (
            ctype.startswith("text/") and not attached
        ):
            return  # other inline text (enriched, rfc822-headers) and empty containers
        self.attachments.append(
            Attachment(filename=filename, content_type=ctype, size=_payload_size(part))
        )


def _safe(getter: Callable[[], object]) -> str | None:
    try:
        value = getter()
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _payload_size(part: Message) -> int:
    if part.is_multipart():
        try:
            return len(part.as_bytes(policy=email.policy.compat32))
        except Exception:
            return 0
    data = part.get_payload(decode=True)
    return len(data) if isinstance(data, bytes) else 0


_Found = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[Attachment, ...]]
# What reading a part without a body found, by what it read: see ``_walk``.
_BODYLESS_WALKS: dict[tuple[object, ...], _Found] = {}
_BODYLESS_WALKS_MAX = 512


def _walk(msg: Message, headers: _Headers, problems: list[str], fast: bool) -> _Walk:
    """The message's parts read (what could not be, added to ``problems``).

    Most of capture's parses are header blocks: a message with no body. Reading such a part
    looks only at its empty payload, its parse defects, its default type and the headers in
    ``_Headers.mime``, so a second block equal in those reads the same, and what the first
    found is reused (most blocks share their Content-Type). A result naming an exception is
    not reused: its text could name something else of that one message.
    """
    walk = _Walk(problems)
    payload = getattr(msg, "_payload", None)
    if not fast or not isinstance(payload, str) or payload:
        walk.visit(msg, "1", 0)
        return walk
    key = (headers.mime, msg.get_default_type(), tuple(type(d).__name__ for d in msg.defects))
    found = _BODYLESS_WALKS.get(key)
    if found is None:
        first = _Walk([])
        first.visit(msg, "1", 0)
        found = (
            tuple(first.problems),
            tuple(first.plain),
            tuple(first.html),
            tuple(first.attachments),
        )
        size = sum(len(name) + len(value) for name, value in headers.mime)
        if size <= _MEMO_MAX_CHARS and not any("unreadable" in p for p in first.problems):
            if len(_BODYLESS_WALKS) >= _BODYLESS_WALKS_MAX:
                _BODYLESS_WALKS.clear()
            _BODYLESS_WALKS[key] = found
    problems.extend(found[0])
    walk.plain, walk.html, walk.attachments = list(found[1]), list(found[2]), list(found[3])
    return walk


def _body(walk: _Walk) -> tuple[str, str]:
    for text in walk.plain:
        tidy = text.replace("\r\n", "\n").replace("\r", "\n").strip()
        if tidy:
            return tidy, "text/plain"
    for text in walk.html:
        converted = html_to_text(text)
        if converted:
            return converted, "text/html"
    return "", ""


# --------------------------------------------------------------------------------------------
# entry point


def _participants(lists: Iterable[list[Mailbox]]) -> tuple[list[str], list[str]]:
    addresses = sorted({m.address for mailboxes in lists for m in mailboxes})
    domains = sorted({a.rpartition("@")[2] for a in addresses})
    return addresses, domains


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one raw message. Never raises; what could not be read is listed in ``problems``."""
    return _parse_message(raw, fast=True)


def _parse_message(raw: bytes, *, fast: bool) -> ParsedMessage:
    """``fast=False`` reads every header through the policy's structured parsers, as the
    shortcuts (``fast=True``) claim to read them: the unit tests compare the two."""
    problems: list[str] = []
    try:
        return _parse(raw, problems, fast)
    except Exception as exc:  # the last line of defence: whatever was found is lost, not raised
        return ParsedMessage(problems=[*problems, f"message unreadable: {exc!r}"[:200]])


def _guard(problems: list[str], what: str, compute: Callable[[], T], default: T) -> T:
    try:
        return compute()
    except Exception as exc:
        problems.append(f"{what}: unreadable ({type(exc).__name__}: {exc})"[:200])
        return default


def _parse(raw: bytes, problems: list[str], fast: bool) -> ParsedMessage:
    if isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
    else:
        problems.append(f"input is {type(raw).__name__}, not bytes")
        data = str(raw).encode("utf-8", "surrogateescape")
    msg = email.message_from_bytes(data, policy=_POLICY)
    headers = _Headers(msg)

    mailboxes: dict[str, list[Mailbox]] = {}
    for field, header in ADDRESS_HEADERS.items():
        mailboxes[field] = _guard(
            problems, header, partial(_address_list, msg, headers, header, problems, fast), []
        )
    walk = _walk(msg, headers, problems, fast)
    body_text, body_source = _guard(problems, "body", lambda: _body(walk), ("", ""))
    no_strings: list[str] = []
    bulk_reasons = _guard(
        problems, "bulk markers", lambda: _bulk_reasons(headers, mailboxes["from_"]), no_strings
    )
    if _safe(msg.get_content_type) == "multipart/report":
        bulk_reasons.append("content-type:multipart/report")
    addresses, domains = _participants(mailboxes.values())
    return ParsedMessage(
        message_id=_guard(
            problems, "Message-ID", lambda: _id_header(headers, "Message-ID", problems), ""
        ),
        in_reply_to=_guard(
            problems, "In-Reply-To", lambda: _id_header(headers, "In-Reply-To", problems), ""
        ),
        references=_guard(
            problems,
            "References",
            lambda: _references(headers, problems),
            no_strings,
        ),
        subject=_guard(problems, "Subject", lambda: _subject(msg, headers, problems, fast), ""),
        from_=mailboxes["from_"],
        reply_to=mailboxes["reply_to"],
        to=mailboxes["to"],
        cc=mailboxes["cc"],
        bcc=mailboxes["bcc"],
        date=_guard(problems, "Date", lambda: _date(headers, problems), None),
        body_text=body_text,
        body_source=body_source,
        attachments=walk.attachments,
        is_bulk=bool(bulk_reasons),
        bulk_reasons=bulk_reasons,
        participant_addresses=addresses,
        participant_domains=domains,
        problems=problems,
    )
