"""The message parser: survives the whole real-world corpus, reads known fields exactly, and fills
the corpus README's known gaps with small inline fixtures."""

from __future__ import annotations

import base64
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.domain import parser
from shared.domain.models import Mailbox
from shared.domain.parser import ParsedMessage, html_to_text


def parse_message(raw: bytes) -> ParsedMessage:
    """The parser's answer, after checking that reading every header through the policy's
    structured parsers (the parser without its shortcuts) answers exactly the same: every input
    of these tests is also an input of ``test_parser_fast_paths``' comparison."""
    fast = parser.parse_message(raw)
    full = parser._parse_message(raw, fast=False)
    assert fast == full
    assert repr(fast) == repr(full)
    return fast


CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
CORPUS_FILES = sorted(p.name for p in CORPUS.glob("*.eml")) if CORPUS.is_dir() else []


def corpus(name: str) -> ParsedMessage:
    return parse_message((CORPUS / name).read_bytes())


needs_corpus = pytest.mark.skipif(not CORPUS_FILES, reason=f"corpus not found at {CORPUS}")


def test_the_corpus_is_beside_the_checkout() -> None:
    """Not skipped: CI is given ../shared, so a missing corpus must fail, not pass silently."""
    assert len(CORPUS_FILES) == 201, f"expected the 201-message corpus at {CORPUS}"


@needs_corpus
class TestCorpusSurvival:
    @pytest.mark.parametrize("name", CORPUS_FILES)
    def test_every_corpus_message_parses_without_raising(self, name: str) -> None:
        parsed = parse_message((CORPUS / name).read_bytes())
        assert isinstance(parsed, ParsedMessage)
        assert parsed.is_bulk == bool(parsed.bulk_reasons)
        assert parsed.participant_addresses == sorted(set(parsed.participant_addresses))
        assert parsed.date is None or parsed.date.tzinfo == UTC


@needs_corpus
class TestCorpusKnownFields:
    def test_encoded_word_subject_and_html_only_body_are_decoded(self) -> None:
        parsed = corpus("mail-parser__mail_test_6.eml")
        assert parsed.subject == "Быстрее вкладывайте в золото!"
        assert parsed.from_ == [Mailbox(name="Время пришло", address="noreply@ggg.com")]
        assert parsed.body_source == "text/html"
        assert parsed.body_text.startswith("Профиль Сообщения Контакты Сообщества\n\n")
        assert "<" not in parsed.body_text

    def test_list_and_noreply_markers_make_mail_bulk(self) -> None:
        parsed = corpus("mail-parser__mail_test_6.eml")
        assert parsed.is_bulk
        assert parsed.bulk_reasons == [
            "list-id",
            "list-unsubscribe",
            "noreply-sender:noreply@ggg.com",
        ]

    def test_group_syntax_expands_to_members_and_comments_are_dropped(self) -> None:
        parsed = corpus("imap-tools__rfc2822__example10.eml")
        assert parsed.from_ == [Mailbox(name="Pete", address="pete@silly.test")]
        assert parsed.to == [
            Mailbox(name="Chris Jones", address="c@public.example"),
            Mailbox(name="", address="joe@example.org"),
            Mailbox(name="John", address="jdoe@one.test"),
        ]
        assert parsed.cc == []  # "Undisclosed recipients: ;" has no members
        assert parsed.participant_domains == [
            "example.org",
            "one.test",
            "public.example",
            "silly.test",
        ]
        # A folded Date with a comment still parses, and lands in UTC.
        assert parsed.date == datetime(1969, 2, 14, 3, 2, tzinfo=UTC)
        assert parsed.message_id == "testabcd.1234@silly.test"

    def test_missing_message_id_and_empty_group_leave_fields_empty(self) -> None:
        parsed = corpus("cpython__msg_36.eml")
        assert parsed.message_id == ""
        assert parsed.to == []
        assert parsed.subject == "I-D ACTION:draft-ietf-mboned-mix-00.txt"
        assert parsed.date == datetime(1998, 12, 22, 21, 55, 6, tzinfo=UTC)
        assert parsed.body_text == "Blah blah blah"
        assert parsed.problems == []

    def test_attachments_report_filename_type_and_decoded_size(self) -> None:
        parsed = corpus("cpython__msg_22.eml")
        assert [a.model_dump() for a in parsed.attachments] == [
            {"filename": "wibble.JPG", "content_type": "image/jpeg", "size": 272},
            {"filename": "wibble2.JPG", "content_type": "image/jpeg", "size": 317},
        ]
        assert parsed.body_text == "Text text text."
        assert parsed.message_id == "a05001902b7f1c33773e9@[134.84.183.138]"

    def test_mailer_daemon_bounce_is_bulk(self) -> None:
        parsed = corpus("flufl.bounce__hotpop_01.eml")
        assert parsed.subject == "Undelivered Mail Returned to Sender"
        assert parsed.from_ == [Mailbox(address="mailer-daemon@hotpop.com")]
        assert "noreply-sender:mailer-daemon@hotpop.com" in parsed.bulk_reasons
        assert parsed.is_bulk

    def test_precedence_bulk_is_a_bulk_reason(self) -> None:
        parsed = corpus("cpython__msg_32.eml")
        assert parsed.bulk_reasons == ["precedence:bulk"]
        assert parsed.message_id == ""

    def test_shift_jis_body_is_decoded(self) -> None:
        parsed = corpus("imap-tools__multi_charset__japanese_shift_jis.eml")
        assert parsed.body_text == (
            "あいうえお\n\nこのメールはテスト用のメールです。\n\n"
            "今後ともよろしくお願い申し上げます！"  # noqa: RUF001
        )
        assert parsed.date == datetime(2014, 5, 28, 8, 18, 19, tzinfo=UTC)
        assert parsed.problems == []

    def test_iso_2022_jp_encoded_words_decode_in_subject_and_names(self) -> None:
        parsed = corpus("imap-tools__multi_charset__japanese_iso_2022.eml")
        assert parsed.subject == "まみむめも"
        assert parsed.to == [Mailbox(name="みける", address="raasdnil@gmail.com")]
        assert parsed.body_text == "すみません。"

    def test_undeclared_8bit_subject_is_read_in_the_bodys_charset(self) -> None:
        parsed = corpus("flufl.bounce__sina_01.eml")
        assert parsed.subject == "邮件传输失败！"  # noqa: RUF001
        assert "Subject: undeclared 8-bit text, decoded as gb2312" in parsed.problems

    def test_internationalised_addresses_keep_local_part_and_use_a_label_domain(self) -> None:
        parsed = corpus("imap-tools__rfc6532__utf8_headers.eml")
        assert parsed.subject == "Säying Hello"
        assert parsed.from_ == [Mailbox(name="Jöhn Doe", address="jdöe@xn--mchine-bua.example")]
        assert parsed.participant_domains == ["xn--exmple-cua.net", "xn--mchine-bua.example"]

    def test_broken_date_becomes_none_and_a_problem(self) -> None:
        parsed = corpus("imap-tools__plain_emails__raw_email_with_bad_date.eml")
        assert parsed.date is None
        assert parsed.problems == ["Date: unparseable 'Pn, 29 paX 2007 21:13:00 +0100'"]
        assert parsed.from_ == [Mailbox(name="Darrell Shaw", address="subventive@vodtravel.com")]


# Fills the gap "little modern Gmail / Microsoft 365 HTML mail": Gmail's multipart/alternative
# shape (div dir="ltr", gmail_quote, &nbsp;, <br>) with threading headers.
GMAIL_ALTERNATIVE = b"""\
MIME-Version: 1.0
Date: Mon, 3 Mar 2025 09:15:02 +0100
References: <CAA1@mail.gmail.com> <CAA2@mail.gmail.com>
In-Reply-To: <CAA2@mail.gmail.com>
Message-ID: <CAB3+x=Y@mail.gmail.com>
Subject: =?UTF-8?Q?Re=3A_Series_A_=E2=80=93_term_sheet?=
From: =?UTF-8?Q?Ren=C3=A9e_Dupont?= <Renee.Dupont@Example-Fund.com>
To: "Partners" <partners@fund.example>, Team: Alice <ALICE@startup.io>, bob@startup.io;
Cc: not an address, carol@lp.example
Content-Type: multipart/alternative; boundary="000000000000abc"

--000000000000abc
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

Hi both,

Attached is the =E2=80=9Cfinal=E2=80=9D version.

--000000000000abc
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">Hi both,<div><br></div><div>Attached</div></div>

--000000000000abc--
"""

# Same gap, the HTML-only variant some clients send: styles, a script and entities to remove.
HTML_ONLY = b"""\
From: News <no-reply@news.example>
To: a@b.example
Subject: Weekly
Auto-Submitted: auto-generated
Content-Type: text/html; charset=utf-8

<html><head><title>Weekly</title><style>p {color: red}</style></head>
<body><script>alert('x')</script><div dir="ltr">Caf&eacute; &amp; co&nbsp;today<br>
Line&nbsp;two</div><p>Para  one</p><table><tr><td>a</td><td>b</td></tr></table></body></html>
"""

# Fills the gap "windows-1252 only in one encoded-word subject": a windows-1252 body with smart
# quotes, a euro sign and an en dash, as Outlook sends it.
CP1252_BODY = (
    b"From: x@y.example\nSubject: q\nContent-Type: text/plain; charset=windows-1252\n"
    b"Content-Transfer-Encoding: 8bit\n\n\x93Quoted\x94 \x80100 \x96 done\n"
)
# The same bytes mislabelled ISO-8859-1, which is what most cp1252 mail actually says.
CP1252_AS_LATIN1 = CP1252_BODY.replace(b"windows-1252", b"iso-8859-1")


class TestInlineFixtures:
    def test_gmail_alternative_prefers_the_plain_part(self) -> None:
        parsed = parse_message(GMAIL_ALTERNATIVE)
        assert parsed.body_source == "text/plain"
        assert parsed.body_text == "Hi both,\n\nAttached is the \u201cfinal\u201d version."

    def test_gmail_headers_decode_thread_ids_and_subject(self) -> None:
        parsed = parse_message(GMAIL_ALTERNATIVE)
        assert parsed.message_id == "CAB3+x=Y@mail.gmail.com"
        assert parsed.in_reply_to == "CAA2@mail.gmail.com"
        assert parsed.references == ["CAA1@mail.gmail.com", "CAA2@mail.gmail.com"]
        assert parsed.subject == "Re: Series A \u2013 term sheet"
        assert parsed.date == datetime(2025, 3, 3, 8, 15, 2, tzinfo=UTC)

    def test_addresses_lower_cased_names_kept_groups_expanded(self) -> None:
        parsed = parse_message(GMAIL_ALTERNATIVE)
        assert parsed.sender == Mailbox(
            name="Renée Dupont", address="renee.dupont@example-fund.com"
        )
        assert parsed.to == [
            Mailbox(name="Partners", address="partners@fund.example"),
            Mailbox(name="Alice", address="alice@startup.io"),
            Mailbox(name="", address="bob@startup.io"),
        ]
        assert parsed.participant_domains == [
            "example-fund.com",
            "fund.example",
            "lp.example",
            "startup.io",
        ]

    def test_invalid_address_is_skipped_and_recorded(self) -> None:
        parsed = parse_message(GMAIL_ALTERNATIVE)
        assert parsed.cc == [Mailbox(address="carol@lp.example")]
        assert any(p.startswith("Cc:") for p in parsed.problems)
        assert not parsed.is_bulk

    def test_html_only_body_is_converted_to_text(self) -> None:
        parsed = parse_message(HTML_ONLY)
        assert parsed.body_source == "text/html"
        assert parsed.body_text == "Café & co today\nLine two\n\nPara one\n\na b"

    def test_auto_submitted_and_noreply_sender_are_bulk_reasons(self) -> None:
        parsed = parse_message(HTML_ONLY)
        assert parsed.bulk_reasons == [
            "auto-submitted:auto-generated",
            "noreply-sender:no-reply@news.example",
        ]
        assert parsed.is_bulk

    def test_windows_1252_body_decodes_smart_quotes_and_euro(self) -> None:
        parsed = parse_message(CP1252_BODY)
        assert parsed.body_text == "\u201cQuoted\u201d \u20ac100 \u2013 done"
        assert parsed.problems == []

    def test_latin1_label_on_cp1252_bytes_is_read_as_cp1252(self) -> None:
        assert parse_message(CP1252_AS_LATIN1).body_text == (
            "\u201cQuoted\u201d \u20ac100 \u2013 done"
        )


class TestNeverRaises:
    @pytest.mark.parametrize(
        "raw",
        [
            b"",
            b"\x00\xff\xfe garbage",
            b"no headers at all",
            b"Subject: =?bogus-charset?Q?x?=\nDate: yesterday\nFrom: <>\n\n",
            b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n",
            b"Content-Type: multipart/mixed\n\nno boundary",
            b'From: a@b.c\nContent-Type: text/plain; charset=""\n\n\xff\xfe',
            b'To: :;,,<@>,@,a@,@b, "unterminated\n\n',
            b"Date: Mon, 99 Foo 99999 99:99:99 +9999\n\n",
        ],
        ids=lambda raw: repr(raw[:24]),
    )
    def test_malformed_input_returns_a_result(self, raw: bytes) -> None:
        assert isinstance(parse_message(raw), ParsedMessage)

    def test_deep_nesting_is_cut_off_with_a_problem(self) -> None:
        raw = b"Content-Type: message/rfc822\n\n" * 200 + b"Subject: deep\n\nbody\n"
        parsed = parse_message(raw)
        assert parsed.problems == ["MIME nesting deeper than 40 levels: inner parts not read"]
        assert parsed.body_text == ""

    def test_unknown_charset_falls_back_with_a_problem(self) -> None:
        raw = b"Content-Type: text/plain; charset=x-nonsense\n\ncaf\xc3\xa9\n"
        parsed = parse_message(raw)
        assert parsed.body_text == "café"
        assert parsed.problems == ["part 1: unknown charset 'x-nonsense', decoded as utf-8/latin-1"]

    def test_undecodable_bytes_are_replaced_with_a_problem(self) -> None:
        raw = b"Content-Type: text/plain; charset=utf-8\n\nok \xff\xfe end\n"
        parsed = parse_message(raw)
        assert parsed.body_text == "ok \ufffd\ufffd end"
        assert parsed.problems == ["part 1: not valid utf-8, decoded with replacement"]

    def test_missing_date_is_none_without_a_problem(self) -> None:
        parsed = parse_message(b"From: a@b.example\n\nhi\n")
        assert parsed.date is None
        assert parsed.problems == []


class TestHtmlToText:
    def test_entities_decoded_and_block_elements_break_lines(self) -> None:
        assert html_to_text("<p>a&lt;b</p><div>c</div>d<br/>e") == "a<b\n\nc\nd\ne"

    def test_scripts_and_styles_are_dropped(self) -> None:
        assert html_to_text("<style>x{}</style>keep<script>drop()</script>") == "keep"

    def test_an_unclosed_head_ends_at_the_body(self) -> None:
        assert html_to_text("<html><head><title>t</title><body><p>visible</p>") == "visible"


def q(text: str) -> str:
    """``text`` as one RFC 2047 Q-encoded word, every byte escaped."""
    return "=?utf-8?q?" + "".join(f"={b:02X}" for b in text.encode("utf-8")) + "?="


def hostile(*headers: str) -> ParsedMessage:
    raw = "\r\n".join([*headers, "", "hi", ""]).encode("utf-8")
    return parse_message(raw)


class TestHostileHeaders:
    """Stored values are clean at the source: valid message ids only, header text only."""

    def test_only_valid_message_ids_are_kept_and_the_rest_is_noted(self) -> None:
        parsed = hostile(
            f"Message-ID: {q('<id@x>')}",
            "In-Reply-To: someone@example.com",
            f"References: <a@x> {q('<b@x>' + chr(13) + chr(10) + 'Bcc: evil@y')} <c d@x> <e@x>",
        )
        assert (parsed.message_id, parsed.in_reply_to) == ("", "")
        assert parsed.references == ["a@x", "e@x"]
        assert parsed.problems == [
            f"Message-ID: dropped {q('<id@x>')!r}, not a message id",
            "In-Reply-To: dropped 'someone@example.com', not a message id",
            "References: dropped '<c d@x>', not a message id",
            f"References: dropped {q('<b@x>' + chr(13) + chr(10) + 'Bcc: evil@y')!r}, "
            "not a message id",
        ]

    def test_a_bare_token_is_no_longer_taken_for_a_message_id(self) -> None:
        # The old fallback kept any whitespace-separated token; an id has angle brackets.
        assert hostile("Message-ID: 201002191008.30117@company.com").message_id == ""
        assert hostile("Message-ID: <201002191008.30117@company.com>").message_id == (
            "201002191008.30117@company.com"
        )

    @pytest.mark.parametrize("sep", ["\r\n", "\r", "\n", "\x00", "\u2028"])
    def test_a_subject_encoded_twice_is_stored_as_one_line(self, sep: str) -> None:
        b64 = base64.b64encode(q(f"Terms{sep}Bcc: evil@y").encode()).decode()
        parsed = hostile(f"Subject: =?utf-8?b?{b64}?=")
        assert parsed.subject == "Terms Bcc: evil@y"
        assert "Subject: control characters replaced by spaces" in parsed.problems

    @pytest.mark.parametrize("sep", ["\r\n", "\r", "\n", "\x00", "\u2028"])
    def test_a_display_name_that_breaks_its_line_is_dropped(self, sep: str) -> None:
        parsed = hostile(
            f"From: {q(f'Mal{sep}Bcc: evil@y')} <mal@hostile.example>",
            f'To: "{q(q(f"Ada{sep}Bcc: evil@y"))}" <ada@fund.example>, Zoe <zoe@zeta.vc>',
        )
        assert parsed.to == [
            Mailbox(name="", address="ada@fund.example"),
            Mailbox(name="Zoe", address="zoe@zeta.vc"),
        ]
        assert "evil@y" not in parsed.participant_addresses
        assert "To: dropped the display name of ada@fund.example: control characters" in (
            parsed.problems
        )
        assert parsed.from_ == [Mailbox(name="", address="mal@hostile.example")]


@needs_corpus
class TestHeaderMemo:
    """Header objects are built once per distinct (name, value) and shared: the answers must be
    exactly those of ``email.policy.default``, which parses a header again on every access."""

    def test_the_corpus_parses_the_same_as_with_the_default_policy(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        raws = [(CORPUS / name).read_bytes() for name in CORPUS_FILES]
        raws += [raw.split(b"\n\n", 1)[0] + b"\n\n" for raw in raws]  # header blocks, as capture
        memo = [parse_message(raw).model_dump() for raw in raws]
        memo_again = [parse_message(raw).model_dump() for raw in raws]  # now from the memo
        monkeypatch.setattr(parser, "_POLICY", email.policy.default)
        plain = [parse_message(raw).model_dump() for raw in raws]
        assert memo == plain
        assert memo_again == plain

    def test_a_repeated_header_is_built_once_and_a_huge_one_is_never_kept(self) -> None:
        parser._header_object.cache_clear()
        raw = b"From: a@x.example\r\nTo: b@y.example\r\nSubject: hi\r\n\r\nbody\r\n"
        parse_message(raw)
        built = parser._header_object.cache_info().misses
        parse_message(raw)
        assert parser._header_object.cache_info().misses == built
        huge = "x" * (parser._MEMO_MAX_CHARS + 1)
        parse_message(f"From: a@x.example\r\nSubject: {huge}\r\n\r\nbody\r\n".encode())
        assert parser._header_object.cache_info().misses == built


@pytest.mark.timeout(30)
def test_a_huge_address_header_is_read_leniently_not_strictly() -> None:
    """The structured parser's time grows faster than the text (40 KB of bare words in From
    took 11 s): past the limit a stranger's header is read by the linear legacy parser, and
    the message is still captured with what could be read."""
    many = ", ".join(f"=?utf-8?q?P=C3=A9rson_{i}?= <p{i}@example.com>" for i in range(800))
    raw = ("From: " + "a " * 100_000 + "\r\nTo: " + many + "\r\nSubject: hi\r\n\r\nbody").encode()

    parsed = parse_message(raw)

    assert parsed.from_ == []
    assert [m.address for m in parsed.to][:2] == ["p0@example.com", "p1@example.com"]
    assert len(parsed.to) == 800
    assert parsed.to[0].name == "Pérson 0"
    assert "From: 200000 characters, too long to read strictly, parsed leniently" in (
        parsed.problems
    )
    assert parsed.subject == "hi"
