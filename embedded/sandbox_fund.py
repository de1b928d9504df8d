"""Sandbox mode's world: the demo's fund in the Gmail sandbox, its issuer, and its sign-in.

Everything here runs in the server's process on loopback ports and is rebuilt identically on
every start: the Gmail sandbox is seeded with a fixed seed and fixed Message-IDs, so its
message ids are the same after a restart and a sync that was stopped resumes against the same
mailbox it left. The CRM records are seeded once, into a new database only.

The sign-in (``embedded.sandbox_sign_in``, mounted in sandbox mode only) stands in for "Sign in
with Google". A real-mode server mounts nothing of this and trusts no sandbox issuer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

from embedded.sandbox_sign_in import SandboxSignIn
from embedded.stack import PEOPLE_AUDIENCE, PUSH_IDENTITY, LocalPushSigner, sandbox_environment
from sandbox.gmail import GmailSandbox, serve_gmail_sandbox
from sandbox.issuer import RunningIssuer, serve_issuer
from sandbox.scenario import TEAM, TEAM_DOMAINS, Scenario, message, seed_crm, seed_mail
from shared.ports import Store

GMAIL_SEED = 14
SIGN_IN_PATH = "/sandbox/sign-in"


def extra_message_id(index: int) -> str:
    """The Message-ID of the ``index``-th extra message (tests count them)."""
    return f"<sandbox-{index}@zeta.vc>"


def seed_gmail(gmail: GmailSandbox, extra_messages: int, *, now: datetime | None = None) -> None:
    """The demo's mail, then ``extra_messages`` investor messages in the first mailbox."""
    now = now or datetime.now(UTC)
    # seed_mail records the Message-IDs it used on a Scenario; only that dict is touched.
    seed_mail(gmail, cast(Scenario, _MessageIds()), now=now)
    for index in range(extra_messages):
        date = now - timedelta(minutes=index + 1)
        _, raw = message(
            message_id=extra_message_id(index),
            sender="Zoe Zeta <zoe@zeta.vc>",
            to=[TEAM[0]],
            subject=f"LP update {index}",
            body=f"Ada, update number {index} on the fund.",
            date=date,
        )
        gmail.add_message(TEAM[0], raw, label_ids=("INBOX",), internal_date=date)


@dataclass
class _MessageIds:
    message_ids: dict[str, str] = field(default_factory=dict)


def seed_crm_once(store: Store) -> bool:
    """The demo's users, mailboxes and CRM records, into a database that has no user yet."""
    if store.get_user_by_email(TEAM[0]) is not None:
        return False
    seed_crm(store)
    return True


@dataclass
class SandboxWorld:
    issuer: RunningIssuer
    gmail: GmailSandbox
    environment: dict[str, str]

    def sign_in_app(self) -> SandboxSignIn:
        return SandboxSignIn(self.issuer.mint, PEOPLE_AUDIENCE, TEAM_DOMAINS)

    def push_to(self, base_url: str) -> None:
        """Gmail watch notifications go to this server's ``gmail_push``, as Pub/Sub would."""
        self.gmail.set_push_target(
            f"{base_url}/gmail_push",
            identity_email=PUSH_IDENTITY,
            audience=f"{base_url}/gmail_push",
            # Sandbox mode trusts only the local key for the push identity.
            issuer=LocalPushSigner(),
        )


@contextlib.contextmanager
def sandbox_world(*, extra_messages: int = 0, list_delay_ms: int = 0) -> Iterator[SandboxWorld]:
    """The sandbox issuer and the Gmail sandbox with the demo's fund, on loopback ports."""
    gmail = GmailSandbox(seed=GMAIL_SEED)
    seed_gmail(gmail, extra_messages)
    if list_delay_ms:
        gmail.inject_fault("messages.list", status=None, delay_s=list_delay_ms / 1000, count=10**9)
    with serve_issuer() as issuer, serve_gmail_sandbox(gmail) as gmail_server:
        environment = {
            **sandbox_environment(issuer, gmail, gmail_server.base_url),
            "CRM_TEAM_DOMAINS": ",".join(TEAM_DOMAINS),
        }
        try:
            yield SandboxWorld(issuer=issuer, gmail=gmail, environment=environment)
        finally:
            gmail.close()
