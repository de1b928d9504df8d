"""What the service writes into a header: text that tried to end its line is caught at every
round of decoding, and bytes that do not read back as the message meant are refused."""

from __future__ import annotations

import email.policy
from email.headerregistry import Address
from email.message import EmailMessage

import pytest

from shared.domain.headers import (
    UnsafeHeadersError,
    address_field,
    check_written,
    header_text,
    read_header_text,
    write_policy,
)
from shared.web import status_for

FROM = "ada@fund.example"
TO = "zoe@zeta.vc"
ALLOWED = {"From", "To", "Subject", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}


def q(text: str) -> str:
    return "=?utf-8?q?" + "".join(f"={b:02X}" for b in text.encode("utf-8")) + "?="


@pytest.mark.parametrize(
    ("value", "text", "broke"),
    [
        ("Fund II", "Fund II", False),
        ("Fund\tII", "Fund II", False),  # a tab is folding gone astray, not a break
        ("Fund\r\nBcc: evil@y", "Fund Bcc: evil@y", True),
        (q("Fund\rBcc: evil@y"), "Fund Bcc: evil@y", True),
        (q("Fund\x00"), "Fund", True),
        (q(q("Fund\u2028Bcc: evil@y")), "Fund Bcc: evil@y", True),  # broken only at round two
        (q("Jørn Støylen"), "Jørn Støylen", False),
    ],
)
def test_read_header_text_says_whether_the_text_tried_to_end_its_line(
    value: str, text: str, broke: bool
) -> None:
    assert read_header_text(value) == (text, broke)
    assert header_text(value) == text


def test_the_write_policy_turns_the_stdlib_guard_on_only_where_it_exists() -> None:
    policy = write_policy()
    assert policy.linesep == "\r\n"
    assert policy.refold_source == "none"
    if hasattr(email.policy.SMTP, "verify_generated_headers"):
        assert policy.verify_generated_headers is True
    else:
        assert not hasattr(policy, "verify_generated_headers")


def message(**headers: str) -> bytes:
    built = EmailMessage(policy=write_policy())
    built["From"] = FROM
    built["To"] = TO
    for name, value in headers.items():
        built[name.replace("_", "-")] = value
    built.set_content("Hello\r\nBcc: in the body is only text\r\n", charset="utf-8")
    return built.as_bytes()


def test_a_message_written_as_built_passes() -> None:
    raw = message(Subject="Fund II")
    check_written(raw, allowed=ALLOWED, recipients={"To": [TO], "Cc": []}, what="test")


@pytest.mark.parametrize(
    "raw",
    [
        # The stdlib writer decodes an encoded word and writes its CR LF out raw (CVE-2024-6923).
        message(Subject=q("Fund\r\nBcc: evil@y")),
        message(Subject="Fund II").replace(b"Subject:", b"Bcc: evil@y\r\nSubject:"),
        message(Subject="Fund II").replace(b"Subject: Fund II", b"Subject: Fund\rII"),
        message(Subject="Fund II").replace(b"Subject: Fund II", b"Subject: Fund\x00II"),
        message(Subject="Fund II").replace(b"Subject:", b"To: evil@y\r\nSubject:"),
        message(Subject="Fund II").replace(b"To: zoe@zeta.vc", b"To: zoe@zeta.vc, evil@y"),
        message(Subject="Fund II").replace(b"Subject: Fund II", b"Subject: " + q("x\x85").encode()),
    ],
    ids=["decoded-crlf", "bcc", "bare-cr", "nul", "second-to", "other-recipient", "c1-control"],
)
def test_bytes_that_do_not_read_back_as_built_are_refused(raw: bytes) -> None:
    with pytest.raises(UnsafeHeadersError) as refused:
        check_written(raw, allowed=ALLOWED, recipients={"To": [TO], "Cc": []}, what="test")
    assert status_for(refused.value) == 409
    assert refused.value.details["reason_code"] == "unsafe_headers"
    assert "evil" not in refused.value.message  # the refusal names headers, not their text


def test_a_missing_recipient_header_reads_as_no_one() -> None:
    raw = message(Subject="x")
    with pytest.raises(UnsafeHeadersError):
        check_written(raw, allowed=ALLOWED, recipients={"Cc": [TO]}, what="test")


# Names that make Python 3.11's own folding encode the comma between two addresses.
FOLD_BREAKERS = [
    ("Jos\u00e9 \u674e Zo\u00eb O'Brien", "u0@x.example"),
    ('"Big" \u00c5dne; Investor Relations Zo\u00eb', "u1@x.example"),
    ("Investor Relations Zo\u00eb \u00c5dne; O'Brien", "u2@x.example"),
]


def read_to(raw: bytes) -> list[tuple[str, str]]:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return [(a.display_name, a.addr_spec) for a in parsed["To"].addresses]


def test_the_stdlib_folding_can_merge_two_recipients_and_address_field_does_not() -> None:
    stdlib = EmailMessage(policy=email.policy.SMTP)
    stdlib["To"] = [Address(n, a.split("@")[0], "x.example") for n, a in FOLD_BREAKERS]
    merged = read_to(stdlib.as_bytes())
    ours = EmailMessage(policy=write_policy())
    ours.set_raw("To", address_field("To", FOLD_BREAKERS))
    raw = ours.as_bytes()
    if len(merged) != len(FOLD_BREAKERS):  # the bug of this runtime, shown
        assert [a for _, a in merged] != [a for _, a in FOLD_BREAKERS]
    assert read_to(raw) == FOLD_BREAKERS
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))


@pytest.mark.parametrize(
    "name",
    ["", "Ada", 'Giant; "Big" Box \\', "J\u00f8rn St\u00f8ylen " * 8, "x" * 200, q("=?x")],
)
def test_address_field_reads_back_as_the_names_and_addresses_it_was_given(name: str) -> None:
    pairs = [(name, "a@x.example"), (name, "b.c@y.example")]
    built = EmailMessage(policy=write_policy())
    built.set_raw("To", address_field("To", pairs))
    raw = built.as_bytes()
    # Whitespace aside: the standard library reads a space between two encoded words that
    # RFC 2047 (and Gmail) drop, and it splits a long name into several.
    assert [("".join(n.split()), a) for n, a in read_to(raw)] == [
        ("".join(header_text(name).split()), a) for _, a in pairs
    ]
    longest = 998 if name == "x" * 200 else 78  # an unbreakable word stays on its line
    assert all(len(line) <= longest for line in raw.split(b"\r\n"))


@pytest.mark.parametrize("address", ['"a,b"@x.example', "a b@x.example", "evil@y\r\nBcc: z@x"])
def test_address_field_takes_only_strict_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="strict addr-spec"):
        address_field("To", [("", address)])
