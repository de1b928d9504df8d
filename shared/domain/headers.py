"""What the service trusts from a stranger's header, and what it lets itself write into one.

Mail comes from strangers, and every header the service writes (a reply draft's, the digest's)
would otherwise carry some of their text. Three things keep a stranger from shaping those
headers, by construction rather than by escaping at each call site:

- **Message ids** are kept only as RFC 5322 ``msg-id``s (``<`` id-left ``@`` id-right ``>``,
  printable ASCII, no whitespace or controls, bounded): anything else is not an id.
- **Addresses** that mail may be sent to pass a strict ``addr-spec`` check (a dot-atom local part
  of ASCII ``atext``, a host name of letters, digits and hyphens): an address is never read out of
  display-name text, and a quoted local part (which may hold commas, CR or LF) is never a recipient.
- **Header text** (subjects, display names) is one line with no control characters, decoded until
  no RFC 2047 encoded word is left that a writer could decode into something else. The standard
  library's writer (policy SMTP) decodes encoded words found in a value and, before Python 3.13's
  ``verify_generated_headers`` (CVE-2024-6923), writes a decoded CR LF out raw.
"""

from __future__ import annotations

import base64
import email
import re
from collections.abc import Collection, Mapping, Sequence
from email.message import EmailMessage
from email.policy import SMTP as _SMTP_POLICY
from email.policy import EmailPolicy
from email.policy import default as _default_policy

from shared.errors import ConflictError

# Cc (C0, DEL, C1) plus the Unicode line and paragraph separators: none belongs in a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_RUNS = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# What no honest header text holds once decoded: a tab is only folding gone astray.
_BREAKING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_ENCODED_WORD_START = "=?"
# The shape of an encoded word, loosely (any charset, either encoding, any text): what is left of
# one after decoding is defused, whichever parser (unstructured, phrase, quoted string) meets it.
_ENCODED_WORD_SHAPE = re.compile(r"=\?[^?]*\?[bBqQ]\?")
_DECODE_ROUNDS = 4

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR_SPEC = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})*")
MAX_LOCAL_PART = 64
MAX_DOMAIN = 253

# id-left and id-right: dot-atom-text (obsolete dot placements tolerated, as real mail has them);
# id-right may also be a no-fold-literal ``[...]``.
_ID_ATOMS = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+"
_QUOTED_ID = r'"[\x21\x23-\x5b\x5d-\x7e]*"'  # obs-id-left: a quoted string, no space or escape
_MSG_ID = re.compile(rf"(?:{_ID_ATOMS}|{_QUOTED_ID})@(?:{_ID_ATOMS}|\[[\x21-\x5a\x5e-\x7e]*\])")
_ANGLE_TOKEN = re.compile(r"<([^<>]*)>")
MAX_MSG_ID = 250  # characters between the brackets; real ids are well under 100


def has_control(text: str) -> bool:
    """Whether the text holds a character that must never reach a header (CR, LF, NUL, ...)."""
    return _CONTROL.search(text) is not None


def is_addr_spec(address: str) -> bool:
    """A strict ``local@domain`` the service may write as a recipient (see the module doc)."""
    if not _ADDR_SPEC.fullmatch(address):
        return False
    local, _, domain = address.rpartition("@")
    return len(local) <= MAX_LOCAL_PART and len(domain) <= MAX_DOMAIN


def angle_addr_specs(text: str) -> list[str]:
    """The strict addresses written as ``<addr-spec>`` in a value, in order, lower-cased and
    without repeats: what is left to trust in a header value that turned out to hold controls."""
    found: list[str] = []
    for token in _ANGLE_TOKEN.findall(text):
        address = token.strip().lower()
        if is_addr_spec(address) and address not in found:
            found.append(address)
    return found


def is_msg_id(value: str) -> bool:
    """A ``msg-id`` without its angle brackets (``id-left@id-right``), as the stores keep it."""
    return len(value) <= MAX_MSG_ID and _MSG_ID.fullmatch(value) is not None


def msg_ids(text: str) -> tuple[list[str], list[str]]:
    """The valid message ids in a header value (without brackets, in order, no repeats), and
    what else the value held (bracketed tokens that are not ids, and text outside brackets), so
    the caller can note what it dropped."""
    valid: list[str] = []
    rejected: list[str] = []
    for token in _ANGLE_TOKEN.findall(text):
        if is_msg_id(token):
            if token not in valid:
                valid.append(token)
        else:
            rejected.append(f"<{token}>")
    rest = _ANGLE_TOKEN.sub(" ", text).strip()
    if rest:
        rejected.append(rest)
    return valid, rejected


def header_text(value: str) -> str:
    """One line with no control characters and nothing left for a writer to decode.

    Encoded words are decoded with the parser the standard library's writer itself uses, up to a
    few rounds (a word may encode another); whatever still looks like one after that has its
    ``=?`` broken, so no writer decodes it again.
    """
    return read_header_text(value)[0]


def read_header_text(value: str) -> tuple[str, bool]:
    """:func:`header_text` of the value, and whether the value, at any round of decoding, held a
    line break or another control character (a tab aside): text that tried to end its line, so
    a caller can drop it (a display name) or note it (a subject)."""
    broke = _BREAKING.search(value) is not None
    text = one_line(value)
    for _ in range(_DECODE_ROUNDS):
        if _ENCODED_WORD_START not in text:
            return text, broke
        raw = _decode_once(text)
        broke = broke or _BREAKING.search(raw) is not None
        decoded = one_line(raw)
        if decoded == text:
            break
        text = decoded
    if _ENCODED_WORD_SHAPE.search(text):
        text = text.replace(_ENCODED_WORD_START, "= ?")
    return text, broke


def one_line(text: str) -> str:
    """The text with every run of control characters (and whitespace around them) as one
    space: a value Gmail already decoded, made one line without decoding anything further."""
    return _CONTROL_RUNS.sub(" ", text).strip()


def _decode_once(text: str) -> str:
    try:
        return str(_default_policy.header_factory("subject", text))
    except Exception:  # the parser gave up on it: nothing it could decode
        return text


# -- writing ---------------------------------------------------------------------------------

# What the headers of a message part below the top may be (the digest's text and HTML parts; the
# standard library writes a MIME-Version on a part it adds as an alternative).
PART_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})


class UnsafeHeadersError(ConflictError):
    """A message the service built does not read back as the one it meant to write (a header it
    never writes, other recipients, a control character): it is refused, nothing is created or
    sent. Building from :func:`header_text`, :func:`is_addr_spec` and :func:`is_msg_id` makes
    this unreachable; the check is there for whatever those miss."""

    code = "unsafe_headers"


def write_policy() -> EmailPolicy[EmailMessage]:
    """Policy SMTP, with the standard library's own refusal to write a header that would read
    back as more than one (``verify_generated_headers``, Python 3.13 and the patched 3.12/3.11
    releases) turned on where the runtime has it: a second line, never the only one. A value
    set raw (:func:`address_field`) is written as it was folded, never refolded."""
    policy = _SMTP_POLICY.clone(refold_source="none")
    if hasattr(policy, "verify_generated_headers"):
        return policy.clone(verify_generated_headers=True)
    return policy


_QUOTABLE = re.compile(r"[\x20-\x7e]{1,70}")
_WORD_BYTES = 45  # 60 base64 characters: an encoded word of 72, within RFC 2047's 75
_LINE = 76  # the longest line this writes, before the list's comma


def address_field(header: str, mailboxes: Sequence[tuple[str, str]]) -> str:
    """The value of an address header (``(name, address)`` pairs), for ``message.set_raw``
    under :func:`write_policy` (which writes it as it is): each address a strict addr-spec
    (``ValueError`` otherwise), each name as :func:`header_text`, written as a quoted string
    (short printable ASCII) or as base64 encoded words split between characters (a mailbox
    without a name is its bare address), one mailbox a line, no line over 78 characters.

    The standard library's own folding of an address list is not used: Python 3.11 can encode
    the comma between two addresses into an encoded word, or drop the quotes of a name it
    splits, and the list then reads back with other recipients than were written."""
    lines: list[str] = []
    for index, (name, address) in enumerate(mailboxes):
        if not is_addr_spec(address):
            raise ValueError("not a strict addr-spec")
        text = header_text(name)
        if not text:
            shown: list[str] = []
        elif _QUOTABLE.fullmatch(text):
            shown = ['"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"']
        else:
            shown = [_encoded_word(chunk) for chunk in _chunks(text)]
        angle = f"<{address}>" if shown else address
        room = _LINE - (len(header) + 2 if index == 0 and len(shown) <= 1 else 1)
        if shown and len(shown[-1]) + 1 + len(angle) <= room:
            shown[-1] += " " + angle
        else:
            shown.append(angle)
        lines.extend(shown)
        if index < len(mailboxes) - 1:
            lines[-1] += ","
    return "\r\n ".join(lines)


def _chunks(text: str) -> list[str]:
    """The text in pieces of at most :data:`_WORD_BYTES` UTF-8 bytes, never inside a
    character; a space stays inside its piece (RFC 2047 drops the space between two words)."""
    pieces: list[str] = []
    current = ""
    for char in text:
        if len((current + char).encode("utf-8")) > _WORD_BYTES:
            pieces.append(current)
            current = ""
        current += char
    return [*pieces, current] if current else pieces


def _encoded_word(chunk: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(chunk.encode("utf-8")).decode("ascii") + "?="


def check_written(
    raw: bytes,
    *,
    allowed: Collection[str],
    recipients: Mapping[str, Sequence[str]],
    what: str,
) -> None:
    """Re-read the bytes the service is about to hand over and refuse them
    (:class:`UnsafeHeadersError`) unless: the header section holds only CR LF line ends and no
    NUL; the top-level headers are within ``allowed``, each at most once; a part below the top
    has only :data:`PART_HEADERS`; no header reads back with a control character; and each
    recipient header in ``recipients`` (``"To"``, ``"Cc"``) holds exactly those addresses, in
    order (an absent header, none)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    if b"\x00" in head or re.search(rb"\r(?!\n)|(?<!\r)\n", head):
        raise _refused(what, "a line break or NUL outside CR LF in the header section")
    message = email.message_from_bytes(raw, policy=_default_policy)
    assert isinstance(message, EmailMessage)
    if message.defects:
        raise _refused(what, f"the message reads back with {type(message.defects[0]).__name__}")
    wanted = {name.lower() for name in allowed}
    names = [name.lower() for name in message]
    unexpected = sorted({n for n in names if n not in wanted or names.count(n) > 1})
    if unexpected:
        raise _refused(what, "unexpected or repeated headers: " + ", ".join(unexpected))
    for part in message.walk():
        if part is not message and any(n.lower() not in PART_HEADERS for n in part):
            raise _refused(what, "a part holds a header beyond its content headers")
    for name, value in message.items():
        if has_control(str(value)):
            raise _refused(what, f"{name} reads back with a control character")
    for name, expected in recipients.items():
        value = message.get(name)
        found = [a.addr_spec.lower() for a in value.addresses] if value is not None else []
        if found != [address.lower() for address in expected]:
            raise _refused(what, f"{name} reads back with other recipients than intended")


def _refused(what: str, why: str) -> UnsafeHeadersError:
    return UnsafeHeadersError(
        f"the {what} was refused, it would not be written as built ({why}): nothing was "
        "created or sent",
        reason_code="unsafe_headers",
    )
