"""The mail the parser meets in capture, as bytes: the real-world corpus raw, the same messages as
the header blocks capture parses first (built by the Gmail sandbox's ``metadata`` answer and the
Gmail adapter's decoding, as in production), and the capture benchmark's generated mail."""

from __future__ import annotations

from datetime import UTC, datetime

from bench._support import generate_mail
from sandbox.gmail import mime
from shared.adapters.gmail.wire import decode_message
from shared.services.capture import METADATA_HEADERS
from tests.support.corpus import SHARED_CORPUS

BENCH_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def corpus_raw() -> dict[str, bytes]:
    """Every corpus message by file name, byte for byte."""
    return {path.name: path.read_bytes() for path in sorted(SHARED_CORPUS.glob("*.eml"))}


def metadata_block(raw: bytes) -> bytes:
    """The header block capture parses for a message Gmail holds as ``raw``: Gmail's
    ``format=metadata`` answer (the sandbox's) decoded by the Gmail adapter."""
    parsed = mime.parse_message(raw)
    resource = {"id": "m", "payload": mime.metadata_payload(parsed, METADATA_HEADERS)}
    return decode_message(resource, "metadata").header_block


def bench_raw(count: int = 500, mailbox_index: int = 0) -> list[bytes]:
    """The capture benchmark's mail for one mailbox (its fixed mix), raw."""
    mail = generate_mail(mailbox_index, "me@fund.example", count, now=BENCH_NOW)
    return [item.raw for item in mail]
