"""The parser's shortcuts change nothing it answers.

``parse_message`` reads plain address lists and subjects without the policy's structured header
parsers, and reuses what reading a bodyless part found; ``_parse_message(raw, fast=False)`` reads
every header through those parsers and walks every part, as the parser did before it had
shortcuts. Each input here is read both ways (the fast way twice, the second time from the
memos) and every field of the result, ``problems`` included, must be identical: on the real-world
corpus raw and as the header blocks capture parses first, on the capture benchmark's mail, and
on a few thousand generated messages whose headers mix the tokens that make parsers disagree.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterable

from shared.domain import parser
from shared.domain.parser import ParsedMessage
from tests.support.decoded_headers import MAX_CRLF_CC, STAN_ONLY_TEXT, ZOE_CRLF_BCC, ZOE_NUL
from tests.support.parser_inputs import bench_raw, corpus_raw, metadata_block

SEED = 20261203
GENERATED = 2000


def disagreements(raws: dict[str, bytes]) -> list[str]:
    """The names of the inputs the fast and the full reading answer differently."""
    found = []
    for name, raw in raws.items():
        fast = parser.parse_message(raw)
        again = parser.parse_message(raw)
        full = parser._parse_message(raw, fast=False)
        if not same(fast, full) or not same(again, full):
            found.append(name)
    return found


def same(one: ParsedMessage, other: ParsedMessage) -> bool:
    # repr as well: equal datetimes may differ in their zone, equal models in field types.
    return one == other and repr(one) == repr(other)


def test_the_corpus_reads_the_same_raw_and_as_header_blocks() -> None:
    raws = corpus_raw()
    assert len(raws) == 201
    blocks = {f"{name} (metadata)": metadata_block(raw) for name, raw in raws.items()}
    assert disagreements(raws) == []
    assert disagreements(blocks) == []


def test_the_benchmark_mail_reads_the_same_raw_and_as_header_blocks() -> None:
    raws = {f"bench {i}": raw for i, raw in enumerate(bench_raw(300))}
    blocks = {f"{name} (metadata)": metadata_block(raw) for name, raw in raws.items()}
    assert disagreements(raws) == []
    assert disagreements(blocks) == []
    # The benchmark's blocks are what the shortcuts are for: every address list takes one.
    simple = [parser._simple_addresses([v]) for v in _address_values(blocks.values())]
    assert simple and None not in simple


def test_generated_hostile_headers_read_the_same() -> None:
    rng = random.Random(SEED)
    raws = {f"generated {i}": _generated_message(rng) for i in range(GENERATED)}
    assert disagreements(raws) == []
    # Both roads are taken often: the plain form and everything the full parser must read.
    values = list(_address_values(raws.values()))
    simple = sum(parser._simple_addresses([v]) is not None for v in values)
    assert simple > len(values) // 10
    assert len(values) - simple > len(values) // 10


def _address_values(raws: Iterable[bytes]) -> list[str]:
    values = []
    for raw in raws:
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "surrogateescape")
        for line in head.split("\r\n"):
            name, colon, value = line.partition(":")
            if colon and name.lower() in {"from", "to", "cc", "bcc", "reply-to", "sender"}:
                values.append(value.lstrip(" \t"))
    return values


# -- the generator ----------------------------------------------------------------------------

_WORDS = [
    "Ada", "Lovelace", "Zoë", "O'Brien", "J.", "R.R.", "Smith,", "de", "la", "x" * 90, "Mr",
    "a=b", "what?", "#1", "under_score", "tab\tbed", "Müller", "张伟", "Ünïcödé",
]  # fmt: skip
_LOCALS = [
    "ada", "a.b", "first.last+tag", "o'brien", "a..b", ".a", "a.", "jdöe", "ZOE", "x_y-z",
    '"quoted local"', '"a,b"', "a\\b", "", "no-reply", "postmaster", "mailer-daemon", "a=?b",
]  # fmt: skip
_DOMAINS = [
    "fund.example", "zeta.vc", "bücher.example", "xn--bcher-kva.example", "[127.0.0.1]",
    "sub.domain.example", "localhost", "", "a-.example", "EXAMPLE.COM", "ex ample.com",
    "exa..mple.com", "例え.テスト",
]  # fmt: skip


def _encoded(rng: random.Random, text: str) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return "=?utf-8?q?" + "".join(f"={b:02X}" for b in text.encode("utf-8")) + "?="
    if kind == 1:
        return "=?UTF-8?B?" + base64.b64encode(text.encode("utf-8")).decode() + "?="
    if kind == 2:
        return "=?iso-8859-1?q?" + text.encode("latin-1", "replace").decode("latin-1") + "?="
    if kind == 3:
        return "=?bogus-charset?q?" + text + "?="
    if kind == 4:
        return "=?utf-8?b?!!!notbase64?="
    return "=?utf-8?q?" + text.replace(" ", "_")  # never closed


def _name(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 3))]
    text = rng.choice([" ", "  ", " \t "]).join(words)
    form = rng.randrange(10)
    if form < 4:
        return text
    if form == 4:
        return '"' + text + '"'
    if form == 5:
        return '"' + text.replace('"', '\\"') + '\\" and \\\\ escapes"'
    if form == 6:
        return _encoded(rng, text)
    if form == 7:
        return f"{text} ({rng.choice(['a comment', 'nested (one)', 'unclosed'])})"
    if form == 8:
        return f"{text} {_encoded(rng, text)}"
    return f'"{_encoded(rng, text)}"'


def _spec(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return rng.choice(["@", "no-at-sign", "a@b@c", "<>", ""])
    return f"{rng.choice(_LOCALS)}@{rng.choice(_DOMAINS)}"


def _mailbox(rng: random.Random) -> str:
    if rng.random() < 0.5:  # the plain forms the shortcut reads, more often than by chance
        return _plain_mailbox(rng)
    spec = _spec(rng)
    form = rng.randrange(9)
    if form == 0:
        return spec
    if form == 1:
        return f"<{spec}>"
    if form == 2:
        return f"{spec} ({rng.choice(['comment', 'Ada'])})"
    if form == 3:
        return f"<<{spec}>>"
    if form == 4:
        return f"{_name(rng)} < {spec} >"
    if form == 5:
        return f"{_name(rng)} <{spec}> trailing"
    if form == 6:
        return rng.choice([ZOE_CRLF_BCC, ZOE_NUL, MAX_CRLF_CC, STAN_ONLY_TEXT])
    return f"{_name(rng)} <{spec}>"


def _plain_mailbox(rng: random.Random) -> str:
    local = rng.choice(["ada", "a.b", "first.last+tag", "x_y-z", "ZOE", "a{b}|c", "1"])
    domain = rng.choice(["fund.example", "zeta.vc", "EXAMPLE.COM", "sub.domain.example", "x"])
    space = ["", " ", "  ", "\t", " \t "]
    words = [rng.choice(["Ada", "Lovelace", "Mr", "x_y", "O'Brien", "#1", "a+b"]) for _ in "abc"]
    name = "".join(w + rng.choice(space[1:]) for w in words[: rng.randint(1, 3)]).rstrip()
    before, after = rng.choice(space), rng.choice(space)
    form = rng.randrange(4)
    if form == 0:
        return f"{before}{local}@{domain}{after}"
    if form == 1:
        return f"{before}{name}{rng.choice(space)}<{local}@{domain}>{after}"
    if form == 2:
        quoted = "".join(rng.choice(_QUOTABLE) for _ in range(rng.randint(0, 12)))
        return f'{before}"{quoted}"{rng.choice(space)}<{local}@{domain}>{after}'
    return f"{before}<{local}@{domain}>{after}"


# What a quoted display name holds: mostly printable ASCII, now and then what it must not.
_QUOTABLE = [*"aZ ,;:()<>@.[]'!#~\t", "  ", "Last, First", "\\", '\\"', "é", "=?", "?="]


def _address_value(rng: random.Random) -> str:
    items = []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.1:
            members = ", ".join(_mailbox(rng) for _ in range(rng.randint(0, 2)))
            items.append(
                f"{rng.choice(['Team', 'undisclosed-recipients', _name(rng)])}: {members};"
            )
        else:
            items.append(_mailbox(rng))
    separators = [",", ", ", " , ", ",\r\n ", ",\r\n\t", ",,", ", ,", ";", " "]
    value = items[0]
    for item in items[1:]:
        value += rng.choice(separators[:4] if rng.random() < 0.7 else separators) + item
    return _inject(rng, value)


def _inject(rng: random.Random, value: str) -> str:
    """Now and then a line break, NUL or control character where none belongs."""
    if rng.random() < 0.08:
        at = rng.randint(0, len(value))
        junk = rng.choice(["\r\nBcc: evil@y", "\n", "\r", "\x00", "\x0b", "\x7f", "\u2028", "\t"])
        value = value[:at] + junk + value[at:]
    if rng.random() < 0.03:
        value = rng.choice(["", " ", "\t", ",", " , "])
    return value


def _subject(rng: random.Random) -> str:
    words = [rng.choice([*_WORDS, "=?", "?=", "Re:", "[list]"]) for _ in range(rng.randint(0, 6))]
    if rng.random() < 0.3:
        words.insert(rng.randint(0, len(words)), _encoded(rng, rng.choice(_WORDS)))
    return _inject(rng, rng.choice([" ", "\r\n ", "\r\n\t"]).join(words))


_PART_HEADERS = [
    [],
    ['Content-Type: text/plain; charset="utf-8"'],
    ["Content-Type: text/plain; charset=bogus-8"],
    ["Content-Type: text/html; charset=iso-8859-1"],
    ['Content-Type: multipart/mixed; boundary="b1"'],
    ["Content-Type: multipart/alternative"],
    ["Content-Type: multipart/report; report-type=delivery-status; boundary=r"],
    ["Content-Type: message/rfc822"],
    ['Content-Type: application/pdf; name="deck.pdf"'],
    ["Content-Type: text/plain", 'Content-Disposition: attachment; filename="a.txt"'],
    ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64"],
    ["Content-Type: text/plain", "Content-Transfer-Encoding: x-uuencode"],
    ["Content-Type: text/plain; name==?utf-8?q?caf=C3=A9.txt?="],
    ["content-type: TEXT/PLAIN (comment); charset=us-ascii", "CONTENT-TYPE: text/html"],
]


def _generated_message(rng: random.Random) -> bytes:
    names = ["From", "To", "Cc", "Bcc", "Reply-To", "Sender", "FROM", "to", "cC"]
    lines = [f"{rng.choice(names)}: {_address_value(rng)}" for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.8:
        lines.append(f"Subject: {_subject(rng)}")
    if rng.random() < 0.5:
        lines.append(f"Message-ID: <g{rng.randrange(10**6)}@{rng.choice(_DOMAINS)}>")
    if rng.random() < 0.2:
        lines.append(rng.choice(["List-Id: <l.example>", "Precedence: bulk", "Date: nonsense"]))
    lines += rng.choice(_PART_HEADERS)
    rng.shuffle(lines)
    body = rng.choice(["", "", "", "hi\r\n", "--b1\r\n\r\nx\r\n--b1--\r\n"])
    text = "\r\n".join(lines) + "\r\n\r\n" + body
    if rng.random() < 0.15:  # 8-bit header bytes that are not UTF-8
        return text.encode("latin-1", "replace")
    return text.encode("utf-8")
