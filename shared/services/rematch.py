"""The re-match job: when the CRM's addresses, domains or the exclusion list change, find the
mail they affect and make its links and proposals right.

Captured mail keeps ``participant_addresses`` (as written and canonical) and
``participant_domains`` even when it matched nothing, so a contact added today finds last
year's mail by those arrays, without asking Gmail. Newly matched mail then gets its body
fetched (through a mailbox that still holds it); mail that no longer matches is unlinked and its
open proposals withdrawn. A job is queued (a record with its progress, and a message on the
re-match topic) and runs in pages, so it can resume where it stopped.

A job holds at most ``MAX_JOB_KEYS`` addresses and domains (``rematch_keys`` refuses more with
a 413, before anything is written): they live on one job record, which Firestore caps at 1 MiB.
It works through them in passes of ``KEYS_PER_PASS`` keys, each paging through the mail those
keys find, so no single look-up carries thousands of keys (SQLite's bound parameters, Firestore's
30 values per ``array_contains_any``). An email found through keys of two passes is examined
twice (``done`` counts it twice); every write is idempotent, so the outcome is the same.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from shared.catalog import Topic
from shared.domain.addresses import canonical_address
from shared.domain.matching import without_corrected
from shared.domain.models import Email, Guard, utcnow
from shared.errors import NotFoundError, TooLargeError
from shared.ports import CaptureStore, GmailClient, Queue, SettingsStore
from shared.services.capture import (
    RAW_FETCH_LIMIT_BYTES,
    apply_matches,
    email_participants,
    fetch_bodies,
    load_exclusions,
    match_many,
    own_canonical_addresses,
    with_body,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 200
KEYS_PER_PASS = 300
MAX_JOB_KEYS = 10_000
MAX_JOB_KEY_CHARS = 400_000


def job_guard_id(job_id: str) -> str:
    return f"rematch:{job_id}"


def rematch_keys(
    addresses: Iterable[str] = (), domains: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """The addresses (as given, lower-cased, and canonical) and domains a job looks up, sorted;
    TooLargeError if they exceed what one job may hold."""
    given = {a.strip().lower() for a in addresses if a.strip()}
    keys = sorted(given | {canonical_address(a) for a in given})
    names = sorted({d.strip().lower().lstrip("@") for d in domains if d.strip()})
    count, chars = len(keys) + len(names), sum(map(len, keys + names))
    if count > MAX_JOB_KEYS or chars > MAX_JOB_KEY_CHARS:
        raise TooLargeError(
            f"this change would re-match {count} addresses and domains ({chars} characters);"
            f" one job takes at most {MAX_JOB_KEYS} ({MAX_JOB_KEY_CHARS} characters): split it",
            keys=count,
        )
    return keys, names


def queue_rematch(
    store: SettingsStore,
    queue: Queue,
    *,
    addresses: Iterable[str] = (),
    domains: Iterable[str] = (),
    reason: str,
    actor: str,
) -> str:
    """Record a job for the affected addresses/domains (old and new) and queue it; its id."""
    keys, names = rematch_keys(addresses, domains)
    job_id = uuid.uuid4().hex
    store.create_guard(
        Guard(
            id=job_guard_id(job_id),
            owner=actor,
            state="queued",
            data={
                "addresses": keys,
                "domains": names,
                "reason": reason,
                "cursor": "",
                "pass": 0,
                "passes": _pass_count(len(keys) + len(names)),
                "done": 0,
                "linked": 0,
                "unlinked": 0,
                "bodies_fetched": 0,
            },
        )
    )
    queue.publish(Topic.REMATCH.value, {"job_id": job_id})
    return job_id


def job_progress(store: SettingsStore, job_id: str) -> dict[str, Any]:
    guard = store.get_guard(job_guard_id(job_id))
    if guard is None:
        raise NotFoundError("no such job", job_id=job_id)
    return {"job_id": job_id, "state": guard.state, **guard.data}


def run_rematch(
    store: CaptureStore,
    job_id: str,
    *,
    gmail_for: Callable[[str], GmailClient],
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Work through the job page by page until done or the deadline; returns its progress."""
    guard = store.get_guard(job_guard_id(job_id))
    if guard is None:
        raise NotFoundError("no such job", job_id=job_id)
    if guard.state == "done":
        return job_progress(store, job_id)
    data = dict(guard.data)
    own = own_canonical_addresses(store)
    exclusions = load_exclusions(store)
    _save(store, job_id, "running", data)
    while True:
        index = int(data.get("pass", 0))
        addresses, domains = _pass_keys(data, index)
        emails = store.find_emails_by_participants(
            addresses=addresses,
            domains=domains,
            limit=PAGE_SIZE,
            after_id=data["cursor"],
        )
        if not emails:
            if index + 1 < _pass_count(len(data["addresses"]) + len(data["domains"])):
                data["pass"], data["cursor"] = index + 1, ""
                continue
            _save(store, job_id, "done", data)
            return job_progress(store, job_id)
        candidates = {e.id: email_participants(e) for e in emails if not e.is_bulk}
        matches = match_many(store, candidates, own, exclusions)
        for email in emails:
            found = without_corrected(matches.get(email.id, []), email)
            # A proposal names a mailbox that holds the mail, as capture's do, so the
            # console's mailbox filter finds proposals the re-match made too.
            holder = email.live_account_ids[0] if email.live_account_ids else None
            _, unlinked = apply_matches(
                store, email.id, found, account_id=holder, actor="rematch", unlink=True
            )
            # Counted per email: newly matched mail, and links removed.
            data["linked"] += int(bool(found) and not email.matched)
            data["unlinked"] += unlinked
            if found and not (email.body or email.snippet):
                data["bodies_fetched"] += fetch_body(store, email, gmail_for)
        data["done"] += len(emails)
        data["cursor"] = emails[-1].id
        _save(store, job_id, "running", data)
        if clock() >= deadline:
            return job_progress(store, job_id)


def _pass_count(keys: int) -> int:
    return max(1, -(-keys // KEYS_PER_PASS))


def _pass_keys(data: dict[str, Any], index: int) -> tuple[list[str], list[str]]:
    """The addresses and domains of one pass: the job's keys (addresses, then domains), sliced."""
    addresses: list[str] = data["addresses"]
    domains: list[str] = data["domains"]
    start, end = index * KEYS_PER_PASS, (index + 1) * KEYS_PER_PASS
    offset = len(addresses)
    return addresses[start:end], domains[max(0, start - offset) : max(0, end - offset)]


def fetch_body(store: CaptureStore, email: Email, gmail_for: Callable[[str], GmailClient]) -> int:
    """Fetch a newly matched email's body through a mailbox that still holds it (1 if done)."""
    for sighting in store.list_sightings(email.id):
        if sighting.deleted:
            continue
        account = store.get_email_account(sighting.account_id)
        if account is None or account.deleted:
            continue
        small = [sighting.gmail_message_id] if email.size <= RAW_FETCH_LIMIT_BYTES else []
        large = [] if small else [sighting.gmail_message_id]
        bodies, _ = fetch_bodies(gmail_for(account.address), small, large)
        body = bodies.get(sighting.gmail_message_id)
        if body is None:
            continue
        store.upsert_email(with_body(email, body.body_text[:200], body))
        return 1
    logger.warning(
        "no live mailbox holds newly matched mail; its body stays unfetched",
        extra={"fields": {"event": "rematch_no_body", "email_id": email.id}},
    )
    return 0


def _save(store: SettingsStore, job_id: str, state: str, data: dict[str, Any]) -> None:
    def change(guard: Guard) -> Guard:
        return guard.model_copy(update={"state": state, "data": data, "updated_at": utcnow()})

    store.update_guard(job_guard_id(job_id), change)
