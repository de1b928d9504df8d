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

import re
from email.policy import default as _default_policy

# Cc (C0, DEL, C1) plus the Unicode line and paragraph separators: none belongs in a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_RUNS = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")
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
    text = _flatten(value)
    for _ in range(_DECODE_ROUNDS):
        if _ENCODED_WORD_START not in text:
            return text
        decoded = _flatten(_decode_once(text))
        if decoded == text:
            break
        text = decoded
    if _ENCODED_WORD_SHAPE.search(text):
        text = text.replace(_ENCODED_WORD_START, "= ?")
    return text


def _flatten(text: str) -> str:
    return _CONTROL_RUNS.sub(" ", text).strip()


def _decode_once(text: str) -> str:
    try:
        return str(_default_policy.header_factory("subject", text))
    except Exception:  # the parser gave up on it: nothing it could decode
        return text
