"""Reply rules, pure: subject, recipients, threading headers, quotation and MIME encoding."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.domain.headers import UnsafeHeadersError
from shared.domain.models import Email, Mailbox
from shared.domain.reply import (
    DRAFT_HEADERS,
    ReplyMode,
    build_reply,
    quoted_original,
    reply_recipients,
    reply_references,
    reply_subject,
)

ADA = "ada@fund.example"
BEN = "ben@fund.example"
WHEN = datetime(2024, 3, 5, 9, 30, tzinfo=UTC)


def mb(address: str, name: str = "") -> Mailbox:
    return Mailbox(name=name, address=address)


def original(**fields: object) -> Email:
    base: dict[str, object] = {
        "id": "e1",
        "message_id": "orig@lp.example",
        "subject": "Fund II",
        "sender": mb("zoe@lp.example", "Zoe"),
        "to": [mb(ADA, "Ada")],
        "date": WHEN,
    }
    base.update(fields)
    return Email.model_validate(base)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Fund II", "Re: Fund II"),
        ("Re: Fund II", "Re: Fund II"),
        ("RE: Re: re:Fund II", "Re: Fund II"),
        ("Re[2]: Fund II", "Re: Fund II"),
        ("AW: Termin", "AW: Termin"),
        ("SV: Möte", "SV: Möte"),
        ("Antw: vraag", "Antw: vraag"),
        ("回复：会议", "回复：会议"),  # noqa: RUF001
        ("Fwd: deck", "Re: Fwd: deck"),
        ("", "Re:"),
        ("Reunion", "Re: Reunion"),
    ],
)
def test_re_is_added_once(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_reply_goes_to_reply_to_else_from() -> None:
    plain = reply_recipients(original(), [ADA], ReplyMode.REPLY)
    assert (plain.to, plain.cc) == ([mb("zoe@lp.example", "Zoe")], [])
    redirected = original(reply_to=[mb("desk@lp.example", "Desk")])
    assert reply_recipients(redirected, [ADA], ReplyMode.REPLY).to == [
        mb("desk@lp.example", "Desk")
    ]


def test_reply_all_keeps_to_and_cc_removes_only_the_mailbox_and_its_aliases() -> None:
    message = original(
        to=[mb(ADA, "Ada"), mb("ADA.alias@fund.example"), mb("sam@lp.example"), mb(BEN, "Ben")],
        cc=[mb("zoe@lp.example"), mb("lee@lp.example", "Lee"), mb("sam@lp.example", "Sam")],
    )
    got = reply_recipients(message, [ADA, "ada.alias@fund.example"], ReplyMode.REPLY_ALL)
    assert got.to == [mb("zoe@lp.example", "Zoe"), mb("sam@lp.example", "Sam"), mb(BEN, "Ben")]
    assert got.cc == [mb("lee@lp.example", "Lee")]  # zoe and sam already in To


def test_replying_to_own_sent_mail_goes_to_its_recipients() -> None:
    sent = original(sender=mb(ADA, "Ada"), to=[mb("jo@gmail.com", "Jo")], cc=[mb("kim@lp.example")])
    assert reply_recipients(sent, [ADA], ReplyMode.REPLY).to == [mb("jo@gmail.com", "Jo")]
    both = reply_recipients(sent, [ADA], ReplyMode.REPLY_ALL)
    assert (both.to, both.cc) == ([mb("jo@gmail.com", "Jo")], [mb("kim@lp.example")])
    only_cc = original(sender=mb(ADA), to=[], cc=[mb("kim@lp.example")])
    assert reply_recipients(only_cc, [ADA], ReplyMode.REPLY).to == [mb("kim@lp.example")]
    to_self = original(sender=mb(ADA), to=[mb(ADA)])
    got = reply_recipients(to_self, [ADA], ReplyMode.REPLY_ALL)
    assert (got.to, got.cc) == ([], [])


def test_references_chain_the_original() -> None:
    assert reply_references(original(references=["a@x", "b@x"])) == [
        "a@x",
        "b@x",
        "orig@lp.example",
    ]
    assert reply_references(original(in_reply_to="p@x")) == ["p@x", "orig@lp.example"]
    assert reply_references(original(message_id="")) == []


def test_quotation_is_attributed_in_the_fund_time_zone() -> None:
    text = quoted_original(original(body="Line one\n\nLine two"), ZoneInfo("Europe/Berlin"))
    assert text.splitlines() == [
        "On Tue, 5 Mar 2024 at 10:30 CET, Zoe <zoe@lp.example> wrote:",
        "> Line one",
        ">",
        "> Line two",
    ]
    assert quoted_original(original(body="")) == ""


def test_the_draft_is_rfc2047_headers_and_a_utf8_body() -> None:
    message = original(
        subject="Übernahme — Fund II",
        sender=mb("comma.name@example.com", "Laßt, Jörn"),
        cc=[mb("kim@lp.example", 'Giant; "Big" Box'), mb("mi@lp.example", "みける")],
        body="Grüße aus Berlin",
        references=["r1@x"],
    )
    draft = build_reply(
        message,
        from_mailbox=mb(ADA, "Ada Ädmin"),
        own_addresses=[ADA],
        mode=ReplyMode.REPLY_ALL,
        text="Danke schön — bis bald.",
        now=WHEN,
    )
    assert draft.raw.isascii()  # 7-bit on the wire: encoded words, quoted-printable
    parsed = email.message_from_bytes(draft.raw, policy=email.policy.default)
    assert parsed["Subject"] == "Re: Übernahme — Fund II"
    to = [(a.display_name, a.addr_spec) for a in parsed["To"].addresses]
    assert to == [("Laßt, Jörn", "comma.name@example.com")]
    cc = [(a.display_name, a.addr_spec) for a in parsed["Cc"].addresses]
    assert cc == [('Giant; "Big" Box', "kim@lp.example"), ("みける", "mi@lp.example")]
    assert parsed["From"].addresses[0].display_name == "Ada Ädmin"
    assert parsed["In-Reply-To"] == "<orig@lp.example>"
    assert parsed["References"].split() == ["<r1@x>", "<orig@lp.example>"]
    body = parsed.get_content().replace("\r\n", "\n")
    assert parsed.get_content_charset() == "utf-8"
    assert body.startswith("Danke schön — bis bald.\n\nOn Tue, 5 Mar 2024 at 09:30 UTC, Laßt,")
    assert "> Grüße aus Berlin" in body
    assert draft.quoted
    unquoted = build_reply(
        message, from_mailbox=mb(ADA), own_addresses=[ADA], mode=ReplyMode.REPLY,
        text="x", quote=False, now=WHEN,
    )  # fmt: skip
    assert not unquoted.quoted and b"wrote:" not in unquoted.raw


def q(text: str) -> str:
    """``text`` as one RFC 2047 Q-encoded word, every byte escaped."""
    return "=?utf-8?q?" + "".join(f"={b:02X}" for b in text.encode("utf-8")) + "?="


INJECTED = "\r\nBcc: evil@y"


def test_rows_stored_before_the_fix_still_give_a_draft_with_only_its_own_headers() -> None:
    """What the old parser stored (an encoded-word id, an encoded subject, names with CR LF,
    an address no writer can quote safely) never reaches the draft's headers as it was."""
    message = original(
        message_id=q("<id@x>" + INJECTED),
        in_reply_to="<ok@x>",
        references=[q("<r@x>" + INJECTED), "a b@x", "<ok@x>"],
        subject=q("Terms" + INJECTED),
        sender=mb("zoe@lp.example", "Zoe" + INJECTED),
        to=[mb(ADA), mb('"a,b"@lp.example', "Q"), mb("kim@lp.example", q(q("Kim" + INJECTED)))],
    )
    for mode in ReplyMode:
        draft = build_reply(
            message, from_mailbox=mb(ADA, "Ada"), own_addresses=[ADA], mode=mode, text="x",
            now=WHEN,
        )  # fmt: skip
        parsed = email.message_from_bytes(draft.raw, policy=email.policy.default)
        # No In-Reply-To: the original's own id was not one.
        assert set(parsed.keys()) == DRAFT_HEADERS - {"Cc", "In-Reply-To"}
        assert len(parsed.keys()) == len(DRAFT_HEADERS) - 2
        to = [(a.display_name, a.addr_spec) for a in parsed["To"].addresses]
        expected = [("", "zoe@lp.example")]
        if mode is ReplyMode.REPLY_ALL:
            expected.append(("", "kim@lp.example"))  # '"a,b"@lp.example' is no recipient
        assert to == expected
        assert draft.recipients.addresses == [a for _, a in expected]
        assert parsed["Subject"] == "Re: Terms Bcc: evil@y"
        assert parsed["References"] == "<ok@x>"
        assert draft.in_reply_to == ""
        head = draft.raw.split(b"\r\n\r\n", 1)[0]
        assert b"evil@y" not in head.replace(b"Subject: Re: Terms Bcc: evil@y", b"")


def test_a_drafting_mailbox_that_is_not_a_plain_address_is_refused() -> None:
    with pytest.raises(UnsafeHeadersError):
        build_reply(
            original(), from_mailbox=mb('"x\\"y"@fund.example'), own_addresses=[ADA],
            mode=ReplyMode.REPLY, text="x", now=WHEN,
        )  # fmt: skip


def test_long_non_ascii_names_never_merge_two_recipients() -> None:
    """Python 3.11's folding of a whole address list can encode the comma between two
    addresses: with these names the second and third recipient read back as one."""
    names = [
        "Jos\u00e9 \u674e Zo\u00eb O'Brien",
        '"Big" \u00c5dne; Investor Relations Zo\u00eb',
        "Investor Relations Zo\u00eb \u00c5dne; O'Brien",
        "x" * 90 + " van der Berg,",
    ]
    people = [mb(f"p{i}@lp.example", name) for i, name in enumerate(names)]
    draft = build_reply(
        original(to=[mb(ADA), *people]), from_mailbox=mb(ADA), own_addresses=[ADA],
        mode=ReplyMode.REPLY_ALL, text="x", now=WHEN,
    )  # fmt: skip
    parsed = email.message_from_bytes(draft.raw, policy=email.policy.default)
    to = [(a.display_name, a.addr_spec) for a in parsed["To"].addresses]
    assert [a for _, a in to] == ["zoe@lp.example"] + [p.address for p in people]
    # Whitespace aside (the standard library reads a space between two encoded words).
    assert ["".join(n.split()) for n, _ in to[1:]] == ["".join(n.split()) for n in names]
    assert max(len(line) for line in draft.raw.split(b"\r\n")) <= 78
