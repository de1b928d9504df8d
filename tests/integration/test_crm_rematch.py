"""The CRM service with the re-match job on SQLite, without Gmail (the mail here already has its
snippet, so no body is fetched): a job larger than one pass, a change too large for one job
refused before anything is written, and a soft-deleted investor's contacts unlinked with it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.queue import LocalQueue
from shared.adapters.sqlite import SqliteStore
from shared.domain.crm import ContactInput, InvestorInput
from shared.domain.models import Caller, Email, Mailbox, Role, email_id_for
from shared.errors import TooLargeError
from shared.ports import GmailClient
from shared.services import crm, rematch

ADMIN = Caller(email="ada@fund.example", role=Role.ADMIN)
LPS = [f"lp{n}@lp{n}.example" for n in range(7)]


@pytest.fixture
def store_with_lp_mail(tmp_path: Path) -> Iterator[SqliteStore]:
    sqlite = SqliteStore(tmp_path / "crm.sqlite3")
    for address in LPS:
        sqlite.upsert_email(
            Email(
                id=email_id_for(f"<{address}>"),
                subject="Hello",
                snippet="Hello",
                sender=Mailbox(address=address),
                to=[Mailbox(address="ada@fund.example")],
                participant_addresses=[address, "ada@fund.example"],
                participant_domains=[address.split("@")[1], "fund.example"],
            )
        )
    yield sqlite
    sqlite.close()


def no_gmail(address: str) -> GmailClient:
    raise AssertionError("no body should be fetched")


def run(store_with_lp_mail: SqliteStore, job_id: str | None) -> dict[str, object]:
    assert job_id is not None
    return rematch.run_rematch(
        store_with_lp_mail, job_id, gmail_for=no_gmail, deadline=time.monotonic() + 30
    )


def linked(store_with_lp_mail: SqliteStore) -> list[bool]:
    return [store_with_lp_mail.get_email(email_id_for(f"<{a}>")).matched for a in LPS]  # type: ignore[union-attr]


def test_a_job_over_several_passes_links_every_address(
    store_with_lp_mail: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rematch, "KEYS_PER_PASS", 3)
    queue = LocalQueue()
    crm.upsert(store_with_lp_mail, queue, ADMIN, crm.INVESTOR, InvestorInput(id="inv", name="LPs"))
    report = crm.upsert(
        store_with_lp_mail,
        queue,
        ADMIN,
        crm.CONTACT,
        ContactInput(investor_id="inv", emails=LPS[:6]),
    )
    progress = run(store_with_lp_mail, report.job_id)
    assert (progress["passes"], progress["pass"]) == (2, 1)
    assert (progress["done"], progress["linked"]) == (6, 6)
    assert linked(store_with_lp_mail) == [True] * 6 + [False]

    # An exclusion of three domains and one address: four keys, two passes, four unlinked.
    _, _, job_id = crm.set_exclusions(
        store_with_lp_mail,
        queue,
        ADMIN,
        addresses=[LPS[0]],
        domains=["lp1.example", "@lp2.example", "lp6.example"],
    )
    progress = run(store_with_lp_mail, job_id)
    assert (progress["passes"], progress["unlinked"]) == (2, 3)
    assert linked(store_with_lp_mail) == [False] * 3 + [True] * 3 + [False]


def test_a_change_too_large_for_one_job_is_refused_before_any_write(
    store_with_lp_mail: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rematch, "MAX_JOB_KEYS", 5)
    queue = LocalQueue()
    crm.upsert(store_with_lp_mail, queue, ADMIN, crm.INVESTOR, InvestorInput(id="inv", name="LPs"))
    items = [ContactInput(id=f"c{n}", investor_id="inv", emails=[a]) for n, a in enumerate(LPS)]
    with pytest.raises(TooLargeError, match="at most 5"):
        crm.upsert_batch(store_with_lp_mail, queue, ADMIN, crm.CONTACT, items)
    assert store_with_lp_mail.get_contact("c0") is None
    assert queue.published == []
    crm.upsert_batch(store_with_lp_mail, queue, ADMIN, crm.CONTACT, items[:5])  # five keys fit
    assert len(queue.published) == 1


def test_deleting_an_investor_unlinks_its_contacts_mail_and_restoring_relinks_it(
    store_with_lp_mail: SqliteStore,
) -> None:
    queue = LocalQueue()
    crm.upsert(store_with_lp_mail, queue, ADMIN, crm.INVESTOR, InvestorInput(id="inv", name="LPs"))
    job = crm.upsert(
        store_with_lp_mail, queue, ADMIN, crm.CONTACT, ContactInput(investor_id="inv", emails=LPS)
    )
    run(store_with_lp_mail, job.job_id)
    assert all(linked(store_with_lp_mail))

    deleted = crm.soft_delete(store_with_lp_mail, queue, ADMIN, crm.INVESTOR, "inv")
    assert run(store_with_lp_mail, deleted.job_id)["unlinked"] == len(LPS)
    assert not any(linked(store_with_lp_mail))
    restored = crm.upsert(
        store_with_lp_mail,
        queue,
        ADMIN,
        crm.INVESTOR,
        InvestorInput(deleted=False),
        record_id="inv",
    )
    assert run(store_with_lp_mail, restored.job_id)["linked"] == len(LPS)
    assert all(linked(store_with_lp_mail))


class FailingStore:
    """The store, except that writing the contact ``c3`` fails as a lost connection would."""

    def __init__(self, store_with_lp_mail: SqliteStore) -> None:
        self._store = store_with_lp_mail

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def upsert_contact(self, contact: object) -> None:
        if getattr(contact, "id", "") == "c3":
            raise ConnectionError("connection reset")
        self._store.upsert_contact(contact)  # type: ignore[arg-type]


def test_a_write_that_fails_midway_still_queues_the_job_and_audits_what_was_written(
    store_with_lp_mail: SqliteStore,
) -> None:
    queue = LocalQueue()
    crm.upsert(store_with_lp_mail, queue, ADMIN, crm.INVESTOR, InvestorInput(id="inv", name="LPs"))
    items = [ContactInput(id=f"c{n}", investor_id="inv", emails=[a]) for n, a in enumerate(LPS)]
    with pytest.raises(ConnectionError):
        crm.upsert_batch(FailingStore(store_with_lp_mail), queue, ADMIN, crm.CONTACT, items)  # type: ignore[arg-type]
    assert store_with_lp_mail.get_contact("c3") is None
    assert all(
        store_with_lp_mail.get_contact(f"c{n}") is not None for n in range(len(LPS)) if n != 3
    )
    (published,) = queue.published
    run(store_with_lp_mail, published.message["job_id"])
    assert linked(store_with_lp_mail) == [n != 3 for n in range(len(LPS))]
    created = sorted(
        a.target for a in store_with_lp_mail.list_audit() if a.action == "contact.create"
    )
    assert created == [f"c{n}" for n in range(len(LPS)) if n != 3]
