"""The subset of Gmail's search syntax (``q``) the project uses, plus a few neighbours.

Supported terms, each negatable with a leading ``-``: ``after:`` / ``before:`` (epoch seconds
or ``YYYY/MM/DD``, dates read as UTC midnight, where Gmail uses the account's time zone),
``newer_than:`` / ``older_than:`` (``Nd``, ``Nm`` = 30 days, ``Ny`` = 365 days), ``in:`` /
``label:`` (``anywhere``, ``chats``, ``drafts``, ``inbox``, ``sent``, ``spam``, ``trash``,
``starred``, ``important``, ``unread`` or a label id), ``is:unread|read|starred|important``,
``category:``, ``from:`` / ``to:`` / ``cc:`` / ``bcc:`` / ``subject:`` / ``rfc822msgid:``
(substring, case-insensitive) and bare words (substring of headers and body text). ``OR`` and
braces are not supported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sandbox.gmail.errors import bad_request
from sandbox.gmail.mime import ParsedMessage

_TOKEN = re.compile(r'(-?)(?:([A-Za-z_0-9]+):)?("[^"]*"|\S+)')
_LABEL_WORDS = {
    "chats": "CHAT",
    "chat": "CHAT",
    "drafts": "DRAFT",
    "draft": "DRAFT",
    "inbox": "INBOX",
    "sent": "SENT",
    "spam": "SPAM",
    "trash": "TRASH",
    "starred": "STARRED",
    "important": "IMPORTANT",
    "unread": "UNREAD",
}
_CATEGORIES = {
    "primary": "CATEGORY_PERSONAL",
    "personal": "CATEGORY_PERSONAL",
    "social": "CATEGORY_SOCIAL",
    "promotions": "CATEGORY_PROMOTIONS",
    "updates": "CATEGORY_UPDATES",
    "forums": "CATEGORY_FORUMS",
}
_UNITS_S = {"d": 86400, "m": 30 * 86400, "y": 365 * 86400}


@dataclass(frozen=True)
class Candidate:
    """What a term is tested against."""

    label_ids: frozenset[str]
    internal_date_ms: int
    parsed: ParsedMessage


Predicate = Callable[[Candidate], bool]


@dataclass
class Query:
    predicates: list[Predicate]
    # A positive in:anywhere / in:spam / in:trash lifts the default SPAM/TRASH exclusion.
    reaches_spam_trash: bool = False

    def matches(self, candidate: Candidate) -> bool:
        return all(predicate(candidate) for predicate in self.predicates)


def _epoch_ms(value: str) -> int:
    if value.isdigit():
        return int(value) * 1000
    for fmt in ("%Y/%m/%d", "%Y-%m-%d"):
        try:
            return int(datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            continue
    raise bad_request(f"Invalid date in query: {value}")


def _age_s(value: str) -> int:
    match = re.fullmatch(r"(\d+)([dmy])", value.lower())
    if not match:
        raise bad_request(f"Invalid age in query: {value}")
    return int(match.group(1)) * _UNITS_S[match.group(2)]


def _label_of(value: str) -> str:
    lower = value.lower()
    return _LABEL_WORDS.get(lower, value if value.startswith("Label_") else value.upper())


def _header_has(name: str, needle: str) -> Predicate:
    def test(c: Candidate) -> bool:
        return any(
            h["name"].lower() == name and needle in h["value"].lower() for h in c.parsed.headers
        )

    return test


def _date_at_least(bound_ms: int) -> Predicate:
    def test(c: Candidate) -> bool:
        return c.internal_date_ms >= bound_ms

    return test


def _has_label(label: str) -> Predicate:
    def test(c: Candidate) -> bool:
        return label in c.label_ids

    return test


def _message_id_has(needle: str) -> Predicate:
    def test(c: Candidate) -> bool:
        return needle in c.parsed.message_id

    return test


def _text_has(word: str) -> Predicate:
    def test(c: Candidate) -> bool:
        return word in c.parsed.search_text

    return test


def _negate(predicate: Predicate) -> Predicate:
    def test(c: Candidate) -> bool:
        return not predicate(c)

    return test


def parse_query(q: str, now_ms: int) -> Query:
    query = Query(predicates=[])
    for negated_mark, operator, raw_value in _TOKEN.findall(q or ""):
        value = raw_value.strip('"')
        negated = bool(negated_mark)
        op = operator.lower()
        predicate: Predicate
        if op in {"after", "before"}:
            at_least = _date_at_least(_epoch_ms(value))
            predicate = at_least if op == "after" else _negate(at_least)
        elif op in {"newer_than", "older_than"}:
            cutoff = now_ms - _age_s(value) * 1000
            if op == "newer_than":
                predicate = _date_at_least(cutoff + 1)
            else:
                predicate = _negate(_date_at_least(cutoff + 1))
        elif op in {"in", "label", "is"}:
            lower = value.lower()
            if op == "in" and lower == "anywhere":
                if not negated:
                    query.reaches_spam_trash = True
                continue
            if op == "is" and lower == "read":
                predicate = _negate(_has_label("UNREAD"))
            else:
                label = _label_of(value)
                if label in {"SPAM", "TRASH"} and not negated:
                    query.reaches_spam_trash = True
                predicate = _has_label(label)
        elif op == "category":
            label = _CATEGORIES.get(value.lower(), "CATEGORY_" + value.upper())
            predicate = _has_label(label)
        elif op in {"from", "to", "cc", "bcc", "subject"}:
            predicate = _header_has(op, value.lower())
        elif op == "rfc822msgid":
            needle = value.strip("<>").lower()
            predicate = _message_id_has(needle)
        elif op:
            raise bad_request(f"Unsupported search operator in sandbox: {op}:")
        else:
            if value.upper() == "OR" or not value:
                continue
            word = value.lower()
            predicate = _text_has(word)
        if negated:
            query.predicates.append(_negate(predicate))
        else:
            query.predicates.append(predicate)
    return query
