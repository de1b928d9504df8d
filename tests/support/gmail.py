"""Shared pieces of the capture tests: a served Gmail sandbox with a delegation grant, real
delegated clients for it, a store proxy that crashes after k writes, and a snapshot of
everything capture stores (to compare a disturbed run with an undisturbed one)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.gmail import GmailSandbox, serve_gmail_sandbox
from shared.adapters.gmail.api import GmailApiClient, RetryPolicy
from shared.adapters.gmail.credentials import SCOPE_COMPOSE, SCOPE_READONLY, delegated_credentials
from shared.ports import GmailClient

WRITE_METHODS = frozenset(
    {
        "upsert_email",
        "update_email",
        "record_sighting",
        "record_capture",
        "set_sighting_deleted",
        "link_email_to_investor",
        "unlink_email_from_investor",
        "create_proposal",
        "decide_proposal",
        "update_sync_state",
        "create_guard",
        "update_guard",
        "record_capture_problem",
        "clear_capture_problem",
    }
)


@dataclass
class GmailWorld:
    sandbox: GmailSandbox
    base_url: str
    key_info: dict[str, Any]
    clients: dict[str, GmailClient]

    def gmail_for(self, address: str) -> GmailClient:
        """The delegated read-only client of one mailbox (cached, as wiring does)."""
        if address not in self.clients:
            credentials = delegated_credentials(address, [SCOPE_READONLY], key_info=self.key_info)
            self.clients[address] = GmailApiClient(
                credentials,
                endpoint=self.base_url,
                batch_size=10,
                retry=RetryPolicy(base_delay=0.001, max_delay=0.01),
            )
        return self.clients[address]


@contextlib.contextmanager
def gmail_world(sandbox: GmailSandbox | None = None) -> Iterator[GmailWorld]:
    """A served sandbox whose service account is granted readonly + compose for the domain."""
    sandbox = sandbox or GmailSandbox()
    with serve_gmail_sandbox(sandbox) as served:
        info = sandbox.service_account_info()
        sandbox.grant_scopes(info["client_id"], [SCOPE_READONLY, SCOPE_COMPOSE])
        yield GmailWorld(sandbox, served.base_url, info, {})


class Crash(Exception):
    """Stands for the process dying: raised instead of the (k+1)-th write."""


class CrashingStore:
    """A real store whose writes stop after ``allowed`` of them, as if the process died there.

    Fault injection around the real adapter (reads and the first k writes really happen);
    after the crash every write fails, like a process that is gone.
    """

    def __init__(self, inner: Any, allowed: int) -> None:
        self._inner = inner
        self.allowed = allowed
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in WRITE_METHODS:
            return attribute

        def write(*args: Any, **kwargs: Any) -> Any:
            if self.writes >= self.allowed:
                raise Crash(f"crashed before write {self.writes + 1} ({name})")
            self.writes += 1
            return attribute(*args, **kwargs)

        return write


class CountingStore:
    """Counts a real store's writes (to know how many k to crash at)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in WRITE_METHODS:
            return attribute

        def write(*args: Any, **kwargs: Any) -> Any:
            self.writes += 1
            return attribute(*args, **kwargs)

        return write


def sqlite_snapshot(path: Path) -> dict[str, Any]:
    """Everything capture stores, minus times and run ids: what must be equal after a rerun."""
    conn = sqlite3.connect(path)

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in conn.execute(sql))

    snapshot = {
        "emails": rows(
            "SELECT id, matched, json_extract(doc, '$.investor_ids'),"
            " json_extract(doc, '$.live_account_ids'), length(json_extract(doc, '$.body')) > 0,"
            " json_extract(doc, '$.subject') FROM emails"
        ),
        "sightings": rows("SELECT id, email_id, deleted FROM sightings"),
        "links": rows("SELECT id FROM investor_links"),
        "proposals": rows("SELECT id, status FROM proposals"),
        "problems": rows("SELECT account_id, gmail_message_id FROM capture_problems"),
        "sync": rows(
            "SELECT id, json_extract(doc, '$.sync.history_id'),"
            " json_extract(doc, '$.sync.backfill_done') FROM email_accounts"
        ),
    }
    conn.close()
    return snapshot


def run_until_done(run: Callable[[], Any], *, attempts: int = 20) -> None:
    """Call ``run`` until it reports it finished (continuations) or give up loudly."""
    for _ in range(attempts):
        outcome = run()
        if outcome.ran and outcome.reason == "ran":
            return
    raise AssertionError("sync never finished")
