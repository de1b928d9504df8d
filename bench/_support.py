"""Shared pieces of the capture benchmarks: the CRM a benchmark mailbox is matched against, the
mail it holds (a fixed, stated mix), and a Gmail sandbox served from a child process.

Why a child process: the sandbox is pure Python (parsing requests, building MIME, JSON). Served
in the benchmark's own process it would share the GIL with the sync threads and its CPU time
would be counted as capture's. In a child it is what Gmail is to production: another machine.
The parent then talks to it only over HTTP (as capture does) and over a pipe for control
(stats at the end, stop).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sandbox.scenario import message
from shared.domain.models import Contact, EmailAccount, Investor, Organization, Role, User
from shared.ports import Store

# Gmail's real per-user rate (FACTS.md section 1): 15,000 units/min = 250 units/s.
GMAIL_UNITS_PER_SECOND = 250.0
GET_UNITS = 5
LIST_UNITS = 5
LIST_PAGE = 500

# The benchmark mail's mix (fractions of each mailbox's messages).
MATCHED_SHARE = 0.20  # from (or, a quarter of them, sent to) a contact or an LP's domain
BULK_SHARE = 0.05  # newsletters from LP domains with List-Id: bulk, never matched
# the rest: strangers (cold pitches, vendors), unmatched
N_ORGANIZATIONS = 40


def team_address(index: int) -> str:
    return f"team{index}@fund.example"


def ceiling_msgs_per_s(matched_share: float, units_per_second: float) -> float:
    """What the per-user quota allows for the fetch plan: a metadata get for every message,
    a raw get for matched ones, and one messages.list per 500 ids."""
    units = GET_UNITS + GET_UNITS * matched_share + LIST_UNITS / LIST_PAGE
    return units_per_second / units


def seed_crm(store: Store, mailboxes: int) -> list[str]:
    """Team users and their mailboxes, plus ``N_ORGANIZATIONS`` LPs, each an organisation with
    a domain, an investor and two contacts. Returns the mailbox addresses."""
    addresses = []
    for index in range(mailboxes):
        address = team_address(index)
        user = User.new(address, f"Team {index}", Role.ADMIN if index == 0 else Role.MEMBER)
        store.add_user(user)
        store.add_email_account(EmailAccount.new(address, user.id))
        addresses.append(address)
    for index in range(N_ORGANIZATIONS):
        org = Organization(id=f"org-{index}", name=f"LP {index}", domains=[f"lp{index}.vc"])
        investor = Investor(id=f"inv-{index}", name=f"LP {index} Fund", organization_id=org.id)
        store.upsert_organization(org)
        store.upsert_investor(investor)
        for person in ("partner", "principal"):
            store.upsert_contact(
                Contact(
                    id=f"con-{person}-{index}",
                    name=f"{person.title()} {index}",
                    investor_id=investor.id,
                    emails=[f"{person}{index}@lp{index}.vc"],
                )
            )
    return addresses


@dataclass(frozen=True)
class BenchMail:
    raw: bytes
    labels: tuple[str, ...]
    internal_date: datetime
    kind: str  # "matched" | "bulk" | "stranger"


_PARAGRAPH = (
    "Thanks for the update on the portfolio. We reviewed the numbers for the quarter and have a "
    "few questions on the cohort retention, the pipeline for next year and the runway after "
    "the bridge. Could we find thirty minutes next week? "
)


def generate_mail(
    mailbox_index: int,
    address: str,
    count: int,
    *,
    now: datetime,
    seed: int = 7,
    matched_share: float = MATCHED_SHARE,
    bulk_share: float = BULK_SHARE,
) -> list[BenchMail]:
    """``count`` messages for one mailbox, deterministic for (mailbox_index, seed): exactly
    ``round(count * matched_share)`` matched and ``round(count * bulk_share)`` bulk, shuffled,
    spread over the last 300 days (inside the 365-day backfill horizon)."""
    rng = random.Random(seed * 1000 + mailbox_index)
    n_matched = round(count * matched_share)
    n_bulk = round(count * bulk_share)
    kinds = ["matched"] * n_matched + ["bulk"] * n_bulk
    kinds += ["stranger"] * (count - len(kinds))
    rng.shuffle(kinds)
    mail = []
    for i, kind in enumerate(kinds):
        date = now - timedelta(days=rng.uniform(0.01, 300))
        lp = rng.randrange(N_ORGANIZATIONS)
        body = _PARAGRAPH * rng.randint(2, 12)
        headers: dict[str, str] = {}
        labels: tuple[str, ...] = ("INBOX",)
        if kind == "matched":
            who = rng.choice(["partner", "principal", "associate"])  # associate: domain match
            contact = f"{who}{lp}@lp{lp}.vc"
            if rng.random() < 0.25:
                sender, to, labels = address, [contact], ("SENT",)
            else:
                sender, to = f"{who.title()} {lp} <{contact}>", [address]
            subject = f"LP {lp}: quarterly follow-up #{i}"
        elif kind == "bulk":
            sender, to = f"LP {lp} News <news@lp{lp}.vc>", [address]
            headers = {"List-Id": f"<news.lp{lp}.vc>", "List-Unsubscribe": f"<mailto:u@lp{lp}.vc>"}
            labels = ("INBOX", "CATEGORY_UPDATES")
            subject = f"LP {lp} monthly letter #{i}"
        else:
            n = rng.randrange(5000)
            sender, to = f"Founder {n} <founder{n}@startup{n}.example>", [address]
            subject = f"Pitch #{i}: seed round for startup {n}"
        _, raw = message(
            sender=sender,
            to=to,
            subject=subject,
            body=body,
            date=date,
            headers=headers,
            message_id=f"<bench-{mailbox_index}-{i}@{sender.rsplit('@', 1)[-1].rstrip('>')}>",
        )
        mail.append(BenchMail(raw, labels, date, kind))
    return mail


# -- the sandbox in a child process ---------------------------------------------------------------


@dataclass(frozen=True)
class MailboxSpec:
    index: int
    address: str
    count: int
    matched_share: float = MATCHED_SHARE
    bulk_share: float = BULK_SHARE


def _sandbox_child(
    conn: Connection,
    specs: Sequence[MailboxSpec],
    units_per_second: float | None,
    now_ts: float,
) -> None:
    from sandbox.gmail import GmailSandbox, serve_gmail_sandbox
    from shared.adapters.gmail.credentials import SCOPE_READONLY

    # Loaded with no rate: loading is not capture. The real rate is set just before serving.
    sandbox = GmailSandbox(units_per_second=None)
    now = datetime.fromtimestamp(now_ts, tz=UTC)
    kinds: dict[str, dict[str, int]] = {}
    for spec in specs:
        sandbox.add_mailbox(spec.address)
        counted: dict[str, int] = {}
        for mail in generate_mail(
            spec.index,
            spec.address,
            spec.count,
            now=now,
            matched_share=spec.matched_share,
            bulk_share=spec.bulk_share,
        ):
            sandbox.add_message(
                spec.address, mail.raw, label_ids=mail.labels, internal_date=mail.internal_date
            )
            counted[mail.kind] = counted.get(mail.kind, 0) + 1
        kinds[spec.address] = counted
    with serve_gmail_sandbox(sandbox) as served:
        info = sandbox.service_account_info()
        sandbox.grant_scopes(info["client_id"], [SCOPE_READONLY])
        sandbox.set_rate(units_per_second)
        conn.send({"base_url": served.base_url, "key_info": info, "kinds": kinds})
        while True:
            command = conn.recv()
            if command[0] == "stats":
                conn.send(
                    {
                        spec.address: {
                            "units": sandbox.units_used(spec.address),
                            "calls": sandbox.calls(spec.address),
                        }
                        for spec in specs
                    }
                )
            elif command[0] == "reset_bucket":
                sandbox.set_rate(units_per_second)  # a full bucket, as after a quiet second
                conn.send(True)
            else:
                break
    conn.close()


@dataclass
class RemoteSandbox:
    """The parent's handle on a sandbox served by a child process."""

    base_url: str
    key_info: dict[str, Any]
    kinds: dict[str, dict[str, int]]
    _conn: Connection

    def stats(self) -> dict[str, dict[str, Any]]:
        self._conn.send(("stats",))
        result: dict[str, dict[str, Any]] = self._conn.recv()
        return result

    def reset_bucket(self) -> None:
        self._conn.send(("reset_bucket",))
        self._conn.recv()


@contextlib.contextmanager
def remote_sandbox(
    specs: Sequence[MailboxSpec], *, units_per_second: float | None, now: datetime
) -> Iterator[RemoteSandbox]:
    """A Gmail sandbox holding the benchmark mail, served by a child process (spawned, so it
    shares no state or threads with this one), with the read-only scope granted."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=_sandbox_child,
        args=(child, list(specs), units_per_second, now.timestamp()),
        name="gmail-sandbox",
        daemon=True,
    )
    process.start()
    try:
        if not parent.poll(600):
            raise RuntimeError("the sandbox child did not start within 600 s")
        hello = parent.recv()
        yield RemoteSandbox(hello["base_url"], hello["key_info"], hello["kinds"], parent)
    finally:
        with contextlib.suppress(OSError, BrokenPipeError):
            parent.send(("stop",))
        process.join(timeout=15)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)
        parent.close()


def run_configs(
    name: str, configs: Sequence[Any], run_config: Callable[[Any, Path], list[str]]
) -> int:
    """Run each configuration in one temporary folder, keep going when one fails (saying so on
    stderr), then print every RESULT line together; 1 if any failed."""
    started = time.perf_counter()
    lines: list[str] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        for config in configs:
            try:
                lines += run_config(config, Path(tmp))
            except Exception as exc:
                print(f"{name}: {config} failed: {exc!r}", file=sys.stderr, flush=True)
                failed = True
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    for line in lines:
        print(line)
    return 1 if failed else 0
