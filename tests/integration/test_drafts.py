"""Reply drafts end to end: real corpus mail captured from the Gmail sandbox, a draft created
through the real google-api-python-client with a ``gmail.compose`` token, then read back from the
sandbox, parsed, and its recipients, headers, subject and thread checked. Then the HTTP route
with real tokens: who may draft where, and the drafting agent reaching nothing else."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests

from embedded.stack import DRAFTING_AGENT_IDENTITY, Stack, local_stack
from sandbox.scenario import TEAM, Scenario, seed_crm, seed_mail
from shared import wiring
from shared.adapters.gmail.credentials import SCOPE_COMPOSE, delegated_credentials
from shared.adapters.gmail.drafts import GmailDraftsClient
from shared.adapters.queue import LocalQueue
from shared.adapters.sqlite import SqliteStore
from shared.domain.models import (
    Caller,
    Contact,
    EmailAccount,
    Role,
    ServiceRole,
    email_id_for,
)
from shared.domain.reply import ReplyMode
from shared.errors import AppError
from shared.services import drafts, sync
from shared.web import status_for
from tests.support.gmail import GmailWorld

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
NOW = datetime.now(UTC)
CY = "cy@fund.example"  # a team mailbox whose aliases appear in the corpus mail
CY_ALIASES = ["mary@x.test", "jdoe@one.test"]
ADA, BEN = TEAM
FILES = {
    "many": "imap-tools__rfc2822__example03.eml",  # 3 To, 2 Cc, a quoted name with specials
    "group": "imap-tools__rfc2822__example10.eml",  # To is a group "A Group: ...;", Cc empty group
    "reply_to": "imap-tools__rfc2822__example14.eml",  # Reply-To, ISO-2022-JP "Re:" subject
    "accented": "imap-tools__error_emails__header_fields_with_empty_values.eml",  # Jørn Støylen
    "no_message_id": "mail-parser__mail_test_18.eml",  # "LastßlName, FirstName"; no Message-ID
}
SENDERS = {
    "many": "john.q.public@example.com",
    "group": "pete@silly.test",
    "reply_to": "atsushi@example.com",
    "accented": "jorn@prikkprikkprikk.no",
    "no_message_id": "comma.name@example.com",
}


class Captured:
    """The seeded fund plus the corpus mail in Cy's mailbox, captured."""

    def __init__(self, sqlite_store: SqliteStore, world: GmailWorld, scenario: Scenario) -> None:
        self.store = sqlite_store
        self.world = world
        self.scenario = scenario
        self.email_ids: dict[str, str] = {}

    def drafts_for(self, address: str) -> GmailDraftsClient:
        credentials = delegated_credentials(address, [SCOPE_COMPOSE], key_info=self.world.key_info)
        return GmailDraftsClient(credentials, endpoint=self.world.base_url)

    def draft(
        self,
        key: str,
        mailbox: str,
        mode: ReplyMode,
        *,
        text: str = "Thanks — we will follow up.",
        caller: Caller | None = None,
        quote: bool = True,
    ) -> drafts.DraftResult:
        email_id = self.email_ids.get(key) or email_id_for(self.scenario.message_ids[key])
        return drafts.create_reply_draft(
            self.store,
            caller or Caller(email=ADA, role=Role.ADMIN, user_id=self.scenario.admin.id),
            drafts.DraftRequest(
                email_id=email_id, text=text, mode=mode, mailbox=mailbox, quote=quote
            ),
            drafts_for=self.drafts_for,
            now=NOW,
        )

    def read_back(self, mailbox: str, result: drafts.DraftResult) -> EmailMessage:
        (stored,) = [d for d in self.world.sandbox.drafts(mailbox) if d.id == result.draft_id]
        assert stored.thread_id == result.thread_id
        parsed = email.message_from_bytes(stored.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def thread_of(self, key: str, mailbox: str) -> str:
        account = self.store.get_email_account_by_address(mailbox)
        assert account is not None
        email_id = self.email_ids.get(key) or email_id_for(self.scenario.message_ids[key])
        (sighting,) = [s for s in self.store.list_sightings(email_id) if s.account_id == account.id]
        return sighting.thread_id


def addresses(message: EmailMessage, header: str) -> list[tuple[str, str]]:
    value = message[header]
    if value is None:
        return []
    return [(a.display_name, a.addr_spec) for a in value.addresses]


def sync_until_done(sqlite_store: SqliteStore, world: GmailWorld, address: str) -> None:
    account = sqlite_store.get_email_account_by_address(address)
    assert account is not None
    for _ in range(10):
        outcome = sync.run_sync(
            sqlite_store,
            sync.SyncRequest(account.id, coverage=False),
            gmail_for=world.gmail_for,
            queue=LocalQueue(),
            now=NOW,
            run_id=uuid.uuid4().hex,
        )
        if outcome.ran and outcome.reason == "ran":
            return
    raise AssertionError(f"{address} never finished")


@pytest.fixture
def captured(sqlite_store: SqliteStore, world: GmailWorld) -> Captured:
    scenario = seed_crm(sqlite_store)
    seed_mail(world.sandbox, scenario, now=NOW)
    sqlite_store.add_email_account(
        EmailAccount.new(CY, scenario.admin.id).model_copy(update={"aliases": CY_ALIASES})
    )
    for key, sender in SENDERS.items():
        sqlite_store.upsert_contact(
            Contact(id=f"con-{key}", name=key, investor_id=scenario.investor.id, emails=[sender])
        )
    world.sandbox.add_mailbox(CY)
    state = Captured(sqlite_store, world, scenario)
    for key, name in FILES.items():
        raw = (CORPUS / name).read_bytes()
        gid = world.sandbox.add_message(CY, raw, internal_date=NOW - timedelta(days=1))
        state.email_ids[key] = gid  # replaced by the email id below
    for address in (*TEAM, CY):
        sync_until_done(sqlite_store, world, address)
    cy = sqlite_store.get_email_account_by_address(CY)
    assert cy is not None
    for key, gid in list(state.email_ids.items()):
        sighting = sqlite_store.get_sighting(cy.id, gid)
        assert sighting is not None, key
        email_record = sqlite_store.get_email(sighting.email_id)
        assert email_record is not None and email_record.matched and email_record.body, key
        state.email_ids[key] = sighting.email_id
    return state


class TestCorpusReplies:
    def test_reply_all_to_many_recipients_keeps_to_and_cc_and_drops_the_alias(
        self, captured: Captured
    ) -> None:
        result = captured.draft("many", CY, ReplyMode.REPLY_ALL)
        draft = captured.read_back(CY, result)
        assert addresses(draft, "To") == [
            ("Joe Q. Public", "john.q.public@example.com"),
            ("", "jdoe@example.org"),
            ("Who?", "one@y.test"),
        ]  # mary@x.test is Cy's alias: removed
        assert addresses(draft, "Cc") == [
            ("", "boss@nil.test"),
            ('Giant; "Big" Box', "sysservices@example.net"),
        ]
        assert draft["Subject"] == "Re:"  # the original had no subject
        assert draft["In-Reply-To"] == "<5678.21-Nov-1997@example.com>"
        assert draft["References"] == "<5678.21-Nov-1997@example.com>"
        assert result.thread_id == captured.thread_of("many", CY)
        body = draft.get_content()
        assert body.startswith("Thanks — we will follow up.")
        assert "Joe Q. Public <john.q.public@example.com> wrote:" in body
        assert "> Hi everyone." in body
        (audit,) = captured.store.list_audit(target=captured.email_ids["many"])
        assert (audit.action, audit.actor) == ("draft.create", ADA)
        assert audit.details["draft_id"] == result.draft_id

    def test_reply_to_the_sender_only(self, captured: Captured) -> None:
        draft = captured.read_back(CY, captured.draft("many", CY, ReplyMode.REPLY))
        assert addresses(draft, "To") == [("Joe Q. Public", "john.q.public@example.com")]
        assert draft["Cc"] is None

    def test_group_syntax_is_answered_member_by_member(self, captured: Captured) -> None:
        result = captured.draft("group", CY, ReplyMode.REPLY_ALL)
        draft = captured.read_back(CY, result)
        assert addresses(draft, "To") == [
            ("Pete", "pete@silly.test"),
            ("Chris Jones", "c@public.example"),
            ("", "joe@example.org"),
        ]  # John <jdoe@one.test> is Cy's alias; the empty Cc group adds no one
        assert draft["Cc"] is None
        assert result.thread_id == captured.thread_of("group", CY)

    def test_reply_to_wins_and_a_japanese_re_subject_is_not_re_re(self, captured: Captured) -> None:
        reply = captured.read_back(CY, captured.draft("reply_to", CY, ReplyMode.REPLY))
        assert addresses(reply, "To") == [("", "rudeboyjet@gmail.com")]
        assert reply["Subject"] == "Re: TEST テストテスト"
        assert reply["References"].split() == [
            "<rid_5582199198@msgid.example.com>",
            "<0CC5E11ED2C1D@example.com>",
        ]  # no References in the original: its In-Reply-To, then its Message-ID
        everyone = captured.read_back(CY, captured.draft("reply_to", CY, ReplyMode.REPLY_ALL))
        assert addresses(everyone, "To") == [("", "rudeboyjet@gmail.com")]  # deduplicated

    def test_non_ascii_names_and_body_are_encoded(self, captured: Captured) -> None:
        result = captured.draft(
            "accented", CY, ReplyMode.REPLY_ALL, text="Hei Jørn, takk for sist — Cy"
        )
        stored = next(d for d in captured.world.sandbox.drafts(CY) if d.id == result.draft_id)
        assert stored.raw.isascii()  # RFC 2047 words and quoted-printable UTF-8
        draft = captured.read_back(CY, result)
        assert addresses(draft, "To") == [
            ("Jørn Støylen", "jorn@prikkprikkprikk.no"),
            ("AF Test", "aftest@adfontesmedier.no"),
        ]
        assert draft["Subject"] == "Re: Testmail"
        assert draft.get_content_charset() == "utf-8"
        assert draft.get_content().startswith("Hei Jørn, takk for sist — Cy")
        assert "Jørn Støylen <jorn@prikkprikkprikk.no> wrote:" in draft.get_content()

    def test_a_draft_gmail_files_in_a_new_thread_is_a_502_with_its_id(
        self, captured: Captured
    ) -> None:
        # No Message-ID in the original: nothing to reference, so Gmail cannot thread the reply.
        with pytest.raises(drafts.DraftMisthreadedError) as misthreaded:
            captured.draft("no_message_id", CY, ReplyMode.REPLY_ALL, quote=False)
        error = misthreaded.value
        assert status_for(error) == 502
        (stored,) = [
            d for d in captured.world.sandbox.drafts(CY) if d.id == error.details["draft_id"]
        ]
        assert stored.requested_thread_id == captured.thread_of("no_message_id", CY)
        assert stored.thread_id != stored.requested_thread_id
        parsed = email.message_from_bytes(stored.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        # Names survive: capture takes matched mail's headers from the raw message, not from
        # Gmail's decoded metadata (where an encoded comma would split the name).
        to = addresses(parsed, "To")
        assert [a for _, a in to] == ["comma.name@example.com", "tony.stark@example.com"]
        assert "," in to[0][0]
        assert "FirstName" in to[0][0]
        assert [a for _, a in addresses(parsed, "Cc")] == [
            "simple@example.net",
            "john.doe@example.com",
        ]
        (audit,) = captured.store.list_audit(target=captured.email_ids["no_message_id"])
        assert audit.details["misthreaded"] is True


class TestScenarioReplies:
    def test_reply_all_keeps_the_teammate_in_cc(self, captured: Captured) -> None:
        result = captured.draft("intro", ADA, ReplyMode.REPLY_ALL)
        draft = captured.read_back(ADA, result)
        assert addresses(draft, "From") == [("Ada Admin", ADA)]
        assert addresses(draft, "To") == [("Zoe Zeta", "zoe@zeta.vc")]
        assert addresses(draft, "Cc") == [("", BEN)]
        assert draft["Subject"] == "Re: Intro: Zeta Capital x Fund"
        assert result.thread_id == captured.thread_of("intro", ADA)

    def test_replying_to_own_sent_mail_goes_to_its_recipient(self, captured: Captured) -> None:
        result = captured.draft("reply", ADA, ReplyMode.REPLY)
        draft = captured.read_back(ADA, result)
        assert addresses(draft, "To") == [("Jo Smith", "j.smith+vc@googlemail.com")]
        assert draft["Subject"] == "Re: follow-on round"
        assert result.thread_id == captured.thread_of("reply", ADA)
        assert "Ada Admin <ada@fund.example> wrote:" in draft.get_content()


class TestRefusals:
    def test_errors_say_why(self, captured: Captured) -> None:
        def status(**kwargs: Any) -> int:
            with pytest.raises(AppError) as refused:
                captured.draft(**kwargs)
            return status_for(refused.value)

        # Ben never saw Ada's own message; an empty body; an unknown email.
        assert status(key="reply", mailbox=BEN, mode=ReplyMode.REPLY) == 409
        assert status(key="intro", mailbox=ADA, mode=ReplyMode.REPLY, text="  \n") == 400
        captured.email_ids["nothing"] = "0" * 64
        assert status(key="nothing", mailbox=ADA, mode=ReplyMode.REPLY) == 404
        ben = captured.store.get_email_account_by_address(BEN)
        assert ben is not None
        intro_id = email_id_for(captured.scenario.message_ids["intro"])
        (sighting,) = [s for s in captured.store.list_sightings(intro_id) if s.account_id == ben.id]
        captured.store.set_sighting_deleted(ben.id, sighting.gmail_message_id, True)
        with pytest.raises(AppError) as deleted:
            captured.draft("intro", BEN, ReplyMode.REPLY)
        assert status_for(deleted.value) == 409
        assert deleted.value.details["reason_code"] == "deleted_in_mailbox"
        member = Caller(email=BEN, role=Role.MEMBER, user_id=captured.scenario.member.id)
        assert status(key="intro", mailbox=ADA, mode=ReplyMode.REPLY, caller=member) == 403
        scheduler = Caller(email="s@x.iam.gserviceaccount.com", role=ServiceRole.SCHEDULER)
        assert status(key="intro", mailbox=ADA, mode=ReplyMode.REPLY, caller=scheduler) == 403
        assert captured.world.sandbox.drafts(ADA) == []
        assert captured.world.sandbox.sends == []

    def test_a_member_cannot_tell_an_unseen_email_from_an_unknown_one(
        self, captured: Captured
    ) -> None:
        """Into their own mailbox, a member gets the same 404 for an email id that exists only
        elsewhere (Ada's own message, never in Ben's mailbox) as for one that exists nowhere."""
        member = Caller(email=BEN, role=Role.MEMBER, user_id=captured.scenario.member.id)
        captured.email_ids["nothing"] = "0" * 64

        def refusal(key: str) -> AppError:
            with pytest.raises(AppError) as refused:
                captured.draft(key, BEN, ReplyMode.REPLY, caller=member)
            return refused.value

        elsewhere, unknown = refusal("reply"), refusal("nothing")
        assert (
            (status_for(elsewhere), elsewhere.code)
            == (status_for(unknown), unknown.code)
            == (404, "not_found")
        )
        assert str(elsewhere) == str(unknown)
        assert set(elsewhere.details) == set(unknown.details) == {"email_id"}
        assert captured.world.sandbox.drafts(BEN) == []


# -- over HTTP, with real tokens ------------------------------------------------------------

ADMIN = "admin@fund.example"


@pytest.fixture
def drafts_stack(tmp_path: Path) -> Iterator[Stack]:
    with local_stack(
        sqlite_path=tmp_path / "crm.sqlite3", bootstrap_admin=ADMIN, start_ticker=False
    ) as running:
        sqlite_store = wiring.store()
        scenario = seed_crm(sqlite_store)
        seed_mail(running.gmail, scenario, now=NOW)
        running.server.ticker.fire_now("sync_poll")
        assert wiring.local_queue().wait_idle(30)
        yield running


def post_draft(drafts_stack: Stack, token: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{drafts_stack.base_url}/admin_api/drafts",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        timeout=20,
    )


def intro_draft(mailbox: str, **extra: Any) -> dict[str, Any]:
    return {
        "email_id": email_id_for("<intro.q3@zeta.vc>"),
        "mailbox": mailbox,
        "body": "Thanks Zoe!",
        **extra,
    }


def test_members_draft_only_into_their_own_mailbox(drafts_stack: Stack) -> None:
    ben = drafts_stack.person_token(BEN)
    refused = post_draft(drafts_stack, ben, intro_draft(ADA))
    assert refused.status_code == 403
    created = post_draft(drafts_stack, ben, intro_draft(BEN, mode="reply_all"))
    assert created.status_code == 201, created.text
    body = created.json()
    # The intro went To Ada, Cc Ben: Ben's reply-all keeps Ada in To and drops only Ben.
    assert body["to"] == [
        {"name": "Zoe Zeta", "address": "zoe@zeta.vc"},
        {"name": "", "address": ADA},
    ]
    assert body["cc"] == []
    (stored,) = drafts_stack.gmail.drafts(BEN)
    assert (stored.id, stored.thread_id) == (body["draft_id"], body["thread_id"])
    assert drafts_stack.gmail.drafts(ADA) == []
    bad = post_draft(drafts_stack, ben, intro_draft(BEN, body=""))
    assert bad.status_code == 400


def test_an_unknown_identity_is_refused(drafts_stack: Stack) -> None:
    stranger = drafts_stack.person_token("eve@elsewhere.example")
    assert post_draft(drafts_stack, stranger, intro_draft(ADA)).status_code == 403
    unknown_service = drafts_stack.service_token("rogue@x.iam.gserviceaccount.com", "admin_api")
    assert post_draft(drafts_stack, unknown_service, intro_draft(ADA)).status_code == 403
    assert (
        requests.post(f"{drafts_stack.base_url}/admin_api/drafts", json={}, timeout=10).status_code
        == 401
    )
    assert drafts_stack.gmail.drafts(ADA) == []


def test_the_drafting_agent_drafts_and_reaches_no_other_route(drafts_stack: Stack) -> None:
    from functions.admin_api import api

    agent = drafts_stack.service_token(DRAFTING_AGENT_IDENTITY, "admin_api")
    created = post_draft(drafts_stack, agent, intro_draft(ADA, mode="reply_all"))
    assert created.status_code == 201, created.text
    (audit,) = [a for a in wiring.store().list_audit() if a.action == "draft.create"]
    assert audit.actor == DRAFTING_AGENT_IDENTITY
    others = [r for r in api.routes if (r.method, r.path) != ("POST", "/drafts")]
    assert len(others) >= 7
    for route in others:
        assert ServiceRole.DRAFTING_AGENT not in route.roles, route.path
        # A concrete path: the first choice of each ``any(...)`` converter, "p1" for the rest.
        path = re.sub(r"<any\(([^,)]+)[^>]*>", r"\1", route.path)
        path = re.sub(r"<[^>]+>", "p1", path)
        response = requests.request(
            route.method,
            f"{drafts_stack.base_url}/admin_api{path}",
            headers={"Authorization": f"Bearer {agent}"},
            json={},
            timeout=10,
        )
        assert response.status_code == 403, (route.method, path, response.text)
