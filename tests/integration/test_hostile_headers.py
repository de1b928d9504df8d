"""Hostile mail never shapes a header the service writes (issue 11, high).

Mail from a stranger who becomes a matched sender is captured from the Gmail sandbox through the
real capture path (metadata, then the raw fetch of matched mail), on both stores. For each route
an attacker has (a Message-ID, In-Reply-To or References written as an encoded word that decodes
to ``<id@x>`` CR LF ``Bcc: evil@y``; a subject encoded twice so one decoding leaves CR LF
``Bcc: ...``; a display name holding CR LF ``Bcc: ...``; and the same with CR alone, LF alone,
NUL, U+2028, encoded words inside encoded words, quoted local parts holding commas or CR LF),
reply and reply-all drafts are created through the drafts service with the real Gmail client,
and the raw bytes the sandbox received are read back: the exact header set and the exact
recipients. The digest of the same mail goes out through Gmail and SMTP, read back the same way.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from embedded.stack import Stack, local_stack
from sandbox.scenario import TEAM, Scenario, seed_crm
from sandbox.smtp_sink import SmtpSink
from shared import wiring
from shared.adapters.gmail.credentials import SCOPE_COMPOSE, delegated_credentials
from shared.adapters.gmail.drafts import GmailDraftsClient
from shared.adapters.gmail.send import GmailSender
from shared.adapters.queue import LocalQueue
from shared.adapters.smtp import SmtpSender
from shared.domain.models import Caller, Contact, Role
from shared.domain.reply import ReplyMode
from shared.domain.tenancy import SOURCE_SETTING, TeamDomains
from shared.ports import Store
from shared.services import drafts, sync
from shared.services.digest import build_digest
from shared.services.mail_transport import send_digest
from tests.support.gmail import GmailWorld

NOW = datetime.now(UTC)
ADA, BEN = TEAM
MAL = "mal@hostile.example"  # a contact of the seeded investor: its mail is matched
EVE = "eve@other.example"
ZOE = "zoe@zeta.vc"  # the seeded investor's contact
EVIL = "evil@y"
SEPARATORS = {"crlf": "\r\n", "cr": "\r", "lf": "\n", "nul": "\x00", "u2028": "\u2028"}
SMTP_USER = "digest-smtp@fund.example"
SMTP_PASSWORD = "S3cret-smtp-Passw0rd!"
FUND = TeamDomains(frozenset({"fund.example"}), SOURCE_SETTING)  # the fund's CRM_TEAM_DOMAINS


def q(text: str) -> str:
    """``text`` as one RFC 2047 Q-encoded word, every byte escaped."""
    return "=?utf-8?q?" + "".join(f"={b:02X}" for b in text.encode("utf-8")) + "?="


def b(text: str) -> str:
    """``text`` as one RFC 2047 B-encoded word."""
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


@dataclass
class Hostile:
    """One hostile message, and what a safe reply to it is."""

    key: str
    headers: list[tuple[str, str]]
    reply_to: list[str]  # To of a reply
    all_to: list[str]  # To of a reply-all
    all_cc: list[str] = field(default_factory=list)  # Cc of a reply-all
    threading: list[str] = field(default_factory=list)  # References of the reply, in order
    replied_id: bool = True  # whether the original's own Message-ID is valid (In-Reply-To)
    names: dict[str, str] = field(default_factory=dict)  # display names the draft may show

    def raw(self) -> bytes:
        lines = [f"{name}: {value}" for name, value in self.headers]
        lines += [
            "Date: " + email.utils.format_datetime(NOW - timedelta(hours=2)),
            "MIME-Version: 1.0",
            'Content-Type: text/plain; charset="utf-8"',
        ]
        text = "\r\n".join(lines) + "\r\n\r\nPlease see below.\r\nBcc: evil@y\r\n"
        return text.encode("utf-8", "surrogateescape")


def _mid(key: str) -> str:
    return f"<{key}.{uuid.uuid4().hex[:8]}@hostile.example>"


def hostile_messages() -> list[Hostile]:
    cases: list[Hostile] = []
    for name, sep in SEPARATORS.items():
        injected = f"{sep}Bcc: {EVIL}"
        # Route 1: the message ids written as encoded words that decode to a header line.
        valid = _mid(f"refs-{name}")
        cases.append(
            Hostile(
                key=f"msgid-{name}",
                headers=[
                    ("Message-ID", q(f"<id-{name}@x>{injected}")),
                    ("In-Reply-To", q(f"<irt-{name}@x>{injected}")),
                    ("References", f"{valid} {q(f'<ref-{name}@x>{injected}')} {b('<b@x>')}"),
                    ("From", f"Mal <{MAL}>"),
                    ("To", ADA),
                    ("Subject", f"ids {name}"),
                ],
                reply_to=[MAL],
                all_to=[MAL],
                threading=[valid.strip("<>")],
                replied_id=False,
                names={MAL: "Mal"},
            )
        )
        # Route 2: a subject encoded twice (one decoding leaves the break), and three times.
        cases.append(
            Hostile(
                key=f"subject-{name}",
                headers=[
                    ("Message-ID", mid := _mid(f"subject-{name}")),
                    ("From", f"Mal <{MAL}>"),
                    ("To", ADA),
                    ("Subject", b(q(f"Terms{injected}"))),
                ],
                reply_to=[MAL],
                all_to=[MAL],
                threading=[mid.strip("<>")],
                names={MAL: "Mal"},
            )
        )
        cases.append(
            Hostile(
                key=f"subject3-{name}",
                headers=[
                    ("Message-ID", mid := _mid(f"subject3-{name}")),
                    ("From", MAL),
                    ("To", ADA),
                    ("Subject", q(b(q(f"Deeper{injected}")))),
                ],
                reply_to=[MAL],
                all_to=[MAL],
                threading=[mid.strip("<>")],
            )
        )
        # Route 3: display names holding the break, bare, quoted and encoded twice, in From
        # and To. (Zoe, a clean Cc, keeps the mail matched whatever capture makes of the
        # metadata's decoded names: that is another point of the issue.)
        cases.append(
            Hostile(
                key=f"name-{name}",
                headers=[
                    ("Message-ID", mid := _mid(f"name-{name}")),
                    ("From", f"{q(f'Mal{injected}')} <{MAL}>"),
                    (
                        "To",
                        f'"{q(f"Ada{injected}")}" <{ADA}>, {b(q(f"Eve{injected}"))} <{EVE}>, '
                        f"{q(f'Ben{sep}To: {EVIL}')} <{BEN}>",
                    ),
                    ("Cc", f"Zoe Zeta <{ZOE}>"),
                    ("Subject", f"names {name}"),
                ],
                reply_to=[MAL],
                all_to=[MAL, EVE, BEN],
                all_cc=[ZOE],
                threading=[mid.strip("<>")],
                names={MAL: "", EVE: "", BEN: "", ZOE: "Zoe Zeta"},
            )
        )
    # Quoted local parts holding a comma, a folded CR LF, or an encoded word: never recipients.
    cases.append(
        Hostile(
            key="quoted-local",
            headers=[
                ("Message-ID", mid := _mid("quoted-local")),
                ("From", f"Mal <{MAL}>"),
                (
                    "To",
                    f'{ADA}, "evil,{EVIL}"@hostile.example, "a\r\n Bcc: {EVIL}"@hostile.example',
                ),
                ("Cc", f'"{q(f"x{chr(13)}{chr(10)}Bcc: {EVIL}")}"@hostile.example, {EVE}'),
                ("Subject", "quoted locals"),
            ],
            reply_to=[MAL],
            all_to=[MAL],
            all_cc=[EVE],
            threading=[mid.strip("<>")],
            names={MAL: "Mal", EVE: ""},
        )
    )
    return cases


DRAFT_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}


DIGEST_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "auto-submitted",
    "mime-version",
    "content-type",
}


class HostileWorld:
    """The seeded fund, Mal a contact of its investor, and Mal's mail captured in Ada's box."""

    def __init__(self, store: Store, world: GmailWorld, scenario: Scenario) -> None:
        self.store, self.world, self.scenario = store, world, scenario
        self.cases = hostile_messages()
        self.email_ids: dict[str, str] = {}

    def capture(self) -> None:
        self.since = datetime.now(UTC)
        gids = {
            case.key: self.world.sandbox.add_message(
                ADA, case.raw(), internal_date=NOW - timedelta(hours=1)
            )
            for case in self.cases
        }
        account = self.store.get_email_account_by_address(ADA)
        assert account is not None
        for _ in range(10):
            outcome = sync.run_sync(
                self.store,
                sync.SyncRequest(account.id, coverage=False),
                gmail_for=self.world.gmail_for,
                queue=LocalQueue(),
                now=NOW,
                run_id=uuid.uuid4().hex,
            )
            if outcome.ran and outcome.reason == "ran":
                break
        else:
            raise AssertionError("capture never finished")
        for key, gid in gids.items():
            sighting = self.store.get_sighting(account.id, gid)
            assert sighting is not None, key
            stored = self.store.get_email(sighting.email_id)
            assert stored is not None and stored.matched, key
            self.email_ids[key] = sighting.email_id
        self.until = datetime.now(UTC)

    def drafts_for(self, address: str) -> GmailDraftsClient:
        credentials = delegated_credentials(address, [SCOPE_COMPOSE], key_info=self.world.key_info)
        return GmailDraftsClient(credentials, endpoint=self.world.base_url)

    def draft(self, key: str, mode: ReplyMode) -> bytes:
        """The raw bytes Gmail received for the draft (created, or misthreaded: a 502 that
        leaves the draft in Gmail, which is the draft a teammate would find and send)."""
        try:
            result = drafts.create_reply_draft(
                self.store,
                Caller(email=ADA, role=Role.ADMIN, user_id=self.scenario.admin.id),
                drafts.DraftRequest(
                    email_id=self.email_ids[key], text="Thanks.", mode=mode, mailbox=ADA
                ),
                drafts_for=self.drafts_for,
                now=NOW,
            )
            draft_id = result.draft_id
        except drafts.DraftMisthreadedError as misthreaded:
            draft_id = misthreaded.details["draft_id"]
        (stored,) = [d for d in self.world.sandbox.drafts(ADA) if d.id == draft_id]
        # Gmail gives a draft its own Message-ID: what the service wrote is the rest.
        gmail_id, _, written = stored.raw.partition(b"\r\n")
        assert re.fullmatch(rb"Message-ID: <[0-9a-f]{32}@mail\.gmail\.com>", gmail_id), key
        return written


@pytest.fixture
def hostile(store: Store, world: GmailWorld) -> HostileWorld:
    scenario = seed_crm(store)
    store.upsert_contact(
        Contact(id="con-mal", name="Mal", investor_id=scenario.investor.id, emails=[MAL])
    )
    world.sandbox.add_mailbox(ADA)
    running = HostileWorld(store, world, scenario)
    running.capture()
    return running


def read_back(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def recipients(message: EmailMessage, header: str) -> list[tuple[str, str]]:
    value = message[header]
    return [] if value is None else [(a.display_name, a.addr_spec) for a in value.addresses]


def header_section(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def assert_clean_header_section(raw: bytes, key: str) -> None:
    head = header_section(raw)
    unfolded = head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    lines = unfolded.split(b"\r\n")
    assert all(b"\r" not in line and b"\n" not in line for line in lines), key
    assert b"\x00" not in head, key
    assert not any(line.lower().startswith(b"bcc") for line in lines), key
    assert b"\xe2\x80\xa8" not in head, key


ROUTES = ["msgid-", "subject-", "subject3-", "name-", "quoted-local"]


@pytest.mark.parametrize("route", ROUTES)
def test_reply_drafts_to_hostile_mail_carry_only_the_allowed_headers_and_recipients(
    hostile: HostileWorld, route: str
) -> None:
    for case in [c for c in hostile.cases if c.key.startswith(route)]:
        for mode in (ReplyMode.REPLY, ReplyMode.REPLY_ALL):
            where = f"{case.key} {mode.value}"
            raw = hostile.draft(case.key, mode)
            assert_clean_header_section(raw, where)
            draft = read_back(raw)
            to = case.reply_to if mode is ReplyMode.REPLY else case.all_to
            cc = [] if mode is ReplyMode.REPLY else case.all_cc
            expected = set(DRAFT_HEADERS)
            expected |= {"cc"} if cc else set()
            expected |= {"references"} if case.threading else set()
            expected |= {"in-reply-to"} if case.replied_id else set()
            names = [name.lower() for name in draft]
            assert sorted(names) == sorted(expected), where  # each once, never a Bcc
            assert draft.defects == [], where
            assert [a for _, a in recipients(draft, "To")] == to, where
            assert [a for _, a in recipients(draft, "Cc")] == cc, where
            assert recipients(draft, "From") == [("Ada Admin", ADA)], where
            for name, address in recipients(draft, "To") + recipients(draft, "Cc"):
                assert name == case.names.get(address, ""), where
                assert EVIL not in name, where
            if case.threading:
                ids = [f"<{i}>" for i in case.threading]
                assert draft["References"].split() == ids, where
                assert draft["In-Reply-To"] == (ids[-1] if case.replied_id else None), where
            for header, value in draft.items():
                text = str(value)
                assert not any(c in text for c in "\r\n\x00\u2028\u2029"), (where, header)
                assert "=?" not in text, (where, header)  # nothing left to decode again


def test_captured_hostile_mail_is_stored_as_safe_header_text(hostile: HostileWorld) -> None:
    for case in hostile.cases:
        stored = hostile.store.get_email(hostile.email_ids[case.key])
        assert stored is not None
        texts = [stored.subject] + [
            m.name for m in [*stored.to, *stored.cc, *([stored.sender] if stored.sender else [])]
        ]
        for text in texts:
            assert not any(c in text for c in "\r\n\x00\u2028\u2029"), case.key
            assert "=?" not in text, case.key
        ids = [stored.message_id, stored.in_reply_to, *stored.references]
        assert all("\r" not in i and "\n" not in i and "=?" not in i for i in ids), case.key
        if case.key.startswith("msgid-"):
            assert (stored.message_id, stored.in_reply_to) == ("", "")
            assert stored.references == case.threading
        assert EVIL not in {m.address for m in [*stored.to, *stored.cc, *stored.bcc]}


def test_the_digest_of_hostile_mail_goes_to_the_admins_with_its_own_headers(
    hostile: HostileWorld,
) -> None:
    digest = build_digest(hostile.store, hostile.since, hostile.until, None)
    hostile.world.sandbox.allow_send_to([ADA])
    with SmtpSink(SMTP_USER, SMTP_PASSWORD) as sink:
        sink.allow_send_to([ADA])
        smtp = SmtpSender(sink.host, sink.port, "none", SMTP_USER, SMTP_PASSWORD, timeout=10)

        def gmail_sender_for(address: str) -> GmailSender:
            credentials = delegated_credentials(
                address, [SCOPE_COMPOSE], key_info=hostile.world.key_info
            )
            return GmailSender(credentials, hostile.world.base_url)

        subjects = {
            digest.subject: digest.subject,
            b(q(f"Digest\r\nBcc: {EVIL}")): f"Digest Bcc: {EVIL}",
            "Digest\x00\u2028x": "Digest x",
        }
        for subject in subjects:
            send_digest(
                hostile.store, [ADA], subject, digest.text, digest.html,
                gmail_sender_for=gmail_sender_for, smtp=None, team_domains=lambda: FUND,
            )  # fmt: skip
            send_digest(
                hostile.store, [ADA], subject, digest.text, digest.html,
                gmail_sender_for=None, smtp=smtp, team_domains=lambda: FUND,
            )  # fmt: skip
        raws = [s.raw for s in hostile.world.sandbox.sends] + [m.data for m in sink.messages]
        assert [m.rcpt_tos for m in sink.messages] == [(ADA,)] * 3
    assert len(raws) == 6
    assert [read_back(raw)["Subject"] for raw in raws] == [*subjects.values()] * 2
    for raw in raws:
        assert_clean_header_section(raw, "digest")
        message = read_back(raw)
        assert sorted(n.lower() for n in message) == sorted(DIGEST_HEADERS)
        assert recipients(message, "To") == [("", ADA)]
        assert recipients(message, "From") == [("", ADA)]
        assert message.defects == []
        for value in message.values():
            assert not any(c in str(value) for c in "\r\n\x00\u2028\u2029")
    # The hostile subjects are in the digest, as body text only.
    assert "Terms Bcc: evil@y" in digest.text


# -- over HTTP, with real tokens ------------------------------------------------------------


@pytest.fixture
def hostile_stack(tmp_path: Path) -> Iterator[tuple[Stack, dict[str, str]]]:
    """The local stack with the hostile mail (CR LF on every route) captured by its own poll;
    the email id of each case."""
    cases = [c for c in hostile_messages() if c.key.endswith("-crlf") or c.key == "quoted-local"]
    with local_stack(
        sqlite_path=tmp_path / "crm.sqlite3", bootstrap_admin=ADA, start_ticker=False
    ) as running:
        store = wiring.store()
        scenario = seed_crm(store)
        store.upsert_contact(
            Contact(id="con-mal", name="Mal", investor_id=scenario.investor.id, emails=[MAL])
        )
        for address in TEAM:
            running.gmail.add_mailbox(address)
        gids = {
            c.key: running.gmail.add_message(ADA, c.raw(), internal_date=NOW - timedelta(hours=1))
            for c in cases
        }
        running.server.ticker.fire_now("sync_poll")
        assert wiring.local_queue().wait_idle(30)
        account = store.get_email_account_by_address(ADA)
        assert account is not None
        ids: dict[str, str] = {}
        for key, gid in gids.items():
            sighting = store.get_sighting(account.id, gid)
            assert sighting is not None, key
            ids[key] = sighting.email_id
        yield running, ids


def test_the_drafts_route_answers_hostile_mail_with_safe_drafts(
    hostile_stack: tuple[Stack, dict[str, str]],
) -> None:
    running, ids = hostile_stack
    token = running.person_token(ADA)
    cases = {c.key: c for c in hostile_messages()}
    for key, email_id in ids.items():
        case = cases[key]
        for mode in (ReplyMode.REPLY, ReplyMode.REPLY_ALL):
            where = f"{key} {mode.value}"
            answer = requests.post(
                f"{running.base_url}/admin_api/drafts",
                headers={"Authorization": f"Bearer {token}"},
                json={"email_id": email_id, "mailbox": ADA, "body": "Thanks.", "mode": mode.value},
                timeout=20,
            )
            # 201, or 502 for a draft Gmail filed in a new thread (left in Gmail, so checked).
            assert answer.status_code in (201, 502), (where, answer.text)
            body = answer.json()
            if answer.status_code == 201:
                to = case.reply_to if mode is ReplyMode.REPLY else case.all_to
                assert [r["address"] for r in body["to"]] == to, where
                assert all(EVIL not in r["name"] for r in body["to"] + body["cc"]), where
            (stored,) = [d for d in running.gmail.drafts(ADA) if d.id == body["draft_id"]]
            raw = stored.raw.partition(b"\r\n")[2]  # after Gmail's own Message-ID
            assert_clean_header_section(raw, where)
            draft = read_back(raw)
            names = {name.lower() for name in draft}
            assert names <= DRAFT_HEADERS | {"cc", "in-reply-to", "references"}, where
            assert len(names) == len(list(draft)), where  # each header once
            expected_to = case.reply_to if mode is ReplyMode.REPLY else case.all_to
            assert [a for _, a in recipients(draft, "To")] == expected_to, where
            expected_cc = [] if mode is ReplyMode.REPLY else case.all_cc
            assert [a for _, a in recipients(draft, "Cc")] == expected_cc, where
