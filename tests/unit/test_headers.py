"""What the service writes into a header: text that tried to end its line is caught at every
round of decoding, and bytes that do not read back as the message meant are refused."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

import pytest

from shared.domain.headers import (
    UnsafeHeadersError,
    check_written,
    header_text,
    read_header_text,
    write_policy,
)

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
    if hasattr(email.policy.SMTP, "verify_generated_headers"):
        assert policy.verify_generated_headers is True
    else:
        assert policy is email.policy.SMTP


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
    assert refused.value.status == 409
    assert refused.value.details["reason_code"] == "unsafe_headers"
    assert "evil" not in refused.value.message  # the refusal names headers, not their text


def test_a_missing_recipient_header_reads_as_no_one() -> None:
    raw = message(Subject="x")
    with pytest.raises(UnsafeHeadersError):
        check_written(raw, allowed=ALLOWED, recipients={"Cc": [TO]}, what="test")
