"""Capture never invents participants from Gmail's decoded header values, and stores snippets as
text: through the Gmail sandbox (real clients), on SQLite and on Firestore.

Gmail hands metadata (and ``format=full`` headers) over decoded, so an encoded display name can
arrive holding CR LF ``Bcc: evil@y`` or a NUL. Such a value keeps only its ``<addr-spec>``
addresses and the email records a header problem, counted in the mailbox's status; matched mail
takes its headers from its raw bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.scenario import TEAM, Scenario, seed_crm
from shared.domain import search
from shared.domain.activity import ActivityQuery
from shared.domain.models import Email, Mailbox, email_id_for
from shared.domain.parser import parse_message
from shared.ports import Store
from shared.services.capture import RAW_FETCH_LIMIT_BYTES
from tests.support.decoded_headers import (
    CONTACT,
    INVENTED,
    MAX_CRLF_CC,
    STAN_CRLF_BCC,
    STAN_NUL,
    STAN_ONLY_TEXT,
    STRANGER,
    ZOE_CRLF_BCC,
    ZOE_NUL,
    raw_message,
)
from tests.support.gmail import GmailWorld
from tests.support.sync import sync_all

NOW = datetime.now(UTC)
ADA = TEAM[0]


@pytest.fixture
def crm_seeded(store: Store, world: GmailWorld) -> Scenario:
    seeded = seed_crm(store)
    for address in TEAM:
        world.sandbox.add_mailbox(address)
    return seeded


def deliver(world: GmailWorld, message_id: str, **fields: str) -> str:
    raw = raw_message(message_id, to=ADA, date=NOW - timedelta(hours=1), **fields)
    return world.sandbox.add_message(ADA, raw, internal_date=NOW - timedelta(hours=1))


def stored(store: Store, message_id: str) -> Email:
    email = store.get_email(email_id_for(message_id))
    assert email is not None, message_id
    return email


def addresses(mailboxes: list[Mailbox]) -> list[str]:
    return [m.address for m in mailboxes]


def test_a_contacts_mail_with_crlf_bcc_in_a_display_name_matches_and_invents_no_one(
    store: Store, world: GmailWorld, crm_seeded: Scenario
) -> None:
    deliver(world, "<crlf.1@zeta.vc>", sender=ZOE_CRLF_BCC, cc=MAX_CRLF_CC)
    deliver(world, "<nul.1@zeta.vc>", sender=ZOE_NUL)

    sync_all(store, world, now=NOW)

    for message_id in ("<crlf.1@zeta.vc>", "<nul.1@zeta.vc>"):
        email = stored(store, message_id)
        assert email.matched, message_id
        assert email.investor_ids == [crm_seeded.investor.id]
        assert email.sender is not None and email.sender.address == CONTACT
        assert not INVENTED & set(email.participant_addresses)
        assert "null" not in email.participant_addresses
        assert email.bcc == []
        assert email.header_problems  # the names held control characters
        for mailbox in [email.sender, *email.to, *email.cc]:
            assert "\r" not in mailbox.name and "\n" not in mailbox.name
            assert "\x00" not in mailbox.name
    assert addresses(stored(store, "<crlf.1@zeta.vc>").cc) == ["max@other.example"]
    account = store.get_email_account(crm_seeded.accounts[0].id)
    assert account is not None
    assert account.sync.header_problems == 2  # shown in the mailbox's status
    assert account.sync.messages_failed == 0  # captured: never a failure
    assert store.list_capture_problems(account.id) == []


def test_unmatched_mail_keeps_only_angle_addresses_drops_names_and_records_a_problem(
    store: Store, world: GmailWorld, crm_seeded: Scenario
) -> None:
    crlf = deliver(world, "<crlf.2@nowhere.example>", sender=STAN_CRLF_BCC, cc=MAX_CRLF_CC)
    deliver(world, "<nul.2@nowhere.example>", sender=STAN_NUL)
    deliver(world, "<text.2@nowhere.example>", sender=STAN_ONLY_TEXT)

    sync_all(store, world, now=NOW)

    email = stored(store, "<crlf.2@nowhere.example>")
    assert not email.matched
    assert email.sender == Mailbox(name="", address=STRANGER)
    assert email.cc == [Mailbox(name="", address="max@other.example")]
    assert email.bcc == []
    assert addresses(email.to) == [ADA]
    assert set(email.participant_addresses) == {ADA, STRANGER, "max@other.example"}
    assert any(p.startswith("From:") for p in email.header_problems)
    assert any(p.startswith("Cc:") for p in email.header_problems)
    nul = stored(store, "<nul.2@nowhere.example>")
    assert nul.sender == Mailbox(name="", address=STRANGER)
    assert "null" not in nul.participant_addresses
    # A name with no <addr-spec> left: no sender rather than one made up from the name text.
    text_only = stored(store, "<text.2@nowhere.example>")
    assert text_only.sender is None
    assert text_only.participant_addresses == [ADA]
    assert text_only.header_problems
    account = store.get_email_account(crm_seeded.accounts[0].id)
    assert account is not None
    assert account.sync.header_problems == 3
    assert store.list_capture_problems(account.id) == []  # not blocked: each has its sighting
    assert store.get_sighting(account.id, crlf) is not None


def test_full_format_headers_are_made_safe_before_they_are_parsed(
    store: Store, world: GmailWorld, crm_seeded: Scenario
) -> None:
    big = "We'd like the numbers.\n" + "x" * (RAW_FETCH_LIMIT_BYTES + 1024)
    gmail_id = deliver(world, "<big.3@zeta.vc>", sender=ZOE_CRLF_BCC, cc=MAX_CRLF_CC, body=big)

    full = world.gmail_for(ADA).get_messages([gmail_id], format="full").messages[gmail_id]
    reparsed = parse_message(full.mime)
    assert addresses(reparsed.from_) == [CONTACT]
    assert addresses(reparsed.cc) == ["max@other.example"]
    assert reparsed.bcc == []

    sync_all(store, world, now=NOW)
    email = stored(store, "<big.3@zeta.vc>")
    assert email.matched and email.body.startswith("We'd like the numbers.")
    assert email.sender is not None and email.sender.address == CONTACT
    assert email.bcc == []
    assert not INVENTED & set(email.participant_addresses)


def test_the_snippet_is_stored_unescaped_and_search_does_not_find_the_entity(
    store: Store, world: GmailWorld, crm_seeded: Scenario
) -> None:
    gmail_id = deliver(world, "<snippet.4@zeta.vc>", sender="Zoe Zeta <zoe@zeta.vc>")
    sent = world.gmail_for(ADA).get_messages([gmail_id], format="minimal").messages[gmail_id]
    assert sent.snippet_escaped.startswith("We&#39;d like")  # Gmail's escaping, as the sandbox does

    sync_all(store, world, now=NOW)

    email = stored(store, "<snippet.4@zeta.vc>")
    assert email.snippet == "We'd like to see the deck & the <b>numbers</b>."
    assert email.snippet_plain

    def hits(text: str) -> list[str]:
        query = ActivityQuery(q=text, words=tuple(search.query_words(text)))
        return [hit.email.id for hit in store.query_activity(query).hits]

    assert hits("39") == []
    assert hits("amp") == []
    assert hits("deck") == [email.id]


def test_one_message_id_twice_in_a_mailbox_is_one_email_whose_problem_counts_once(
    store: Store, world: GmailWorld, crm_seeded: Scenario
) -> None:
    """Both copies land in one chunk, whose stored emails are read in one batch before either
    is written: the second copy must still see the first one's write (its header problem is
    counted once, and the body the first fetched is kept)."""
    first = deliver(world, "<twice.5@zeta.vc>", sender=ZOE_CRLF_BCC)
    second = deliver(world, "<twice.5@zeta.vc>", sender=ZOE_CRLF_BCC)

    sync_all(store, world, now=NOW)

    email = stored(store, "<twice.5@zeta.vc>")
    assert email.matched and email.body.startswith("We'd like to see the deck")
    account = store.get_email_account(crm_seeded.accounts[0].id)
    assert account is not None
    assert account.sync.header_problems == 1
    assert {s.gmail_message_id for s in store.list_sightings(email.id)} == {first, second}
