"""``make demo``: the whole flow that exists so far, end to end, on the embedded default.

Starts the sandbox issuer and the local server on a fresh SQLite file, then acts as the admin
console, Cloud Scheduler and Pub/Sub would, over HTTP with real signed tokens, printing what
happened. Each later issue extends this script with its part of the flow.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

from embedded.stack import PUSH_IDENTITY, SCHEDULER_IDENTITY, Stack, local_stack
from sandbox.issuer import SandboxIssuer
from shared import wiring
from shared.domain.models import Contact, Investor, Organization

ADMIN = "ada@fund.example"


def show(title: str) -> None:
    print(f"\n== {title}")


def call(stack: Stack, method: str, path: str, token: str, body: Any = None) -> requests.Response:
    response = requests.request(
        method,
        f"{stack.base_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    print(f"  {method} {path} -> {response.status_code}")
    return response


def brief(payload: Any) -> str:
    return json.dumps(payload, default=str)[:300]


def run(stack: Stack) -> None:
    store = wiring.store()
    admin = stack.person_token(ADMIN)

    show("Health")
    print(" ", requests.get(f"{stack.base_url}/healthz", timeout=5).json())

    show(f"Bootstrap admin {ADMIN} (CRM_BOOTSTRAP_ADMIN, created only while no admin exists)")
    print("  ", brief(call(stack, "GET", "/admin_api/me", admin).json()))

    show("Admin adds a team member and two team mailboxes")
    call(
        stack,
        "POST",
        "/admin_api/users",
        admin,
        {"email": "ben@fund.example", "name": "Ben", "role": "member"},
    )
    for address, owner in (("ada@fund.example", ADMIN), ("ben@fund.example", "ben@fund.example")):
        call(
            stack, "POST", "/admin_api/mailboxes", admin, {"address": address, "owner_email": owner}
        )
    users = call(stack, "GET", "/admin_api/users", admin).json()["items"]
    for user in users:
        print(f"   user {user['email']:<22} role={user['role']:<7} active={user['is_active']}")

    show("Who may call what (every entry point verifies the token in code)")
    member = stack.person_token("ben@fund.example")
    print("  member lists users:")
    call(stack, "GET", "/admin_api/users", member)
    forged = SandboxIssuer(stack.issuer.issuer.issuer).mint(ADMIN, "admin-console.apps.local")
    print("  forged admin token:")
    print("  ", brief(call(stack, "GET", "/admin_api/me", forged).json()))
    print("  admin token on the scheduler's function:")
    call(stack, "POST", "/sync_poll", admin, {})
    print("  push identity on the scheduler's function:")
    call(stack, "POST", "/sync_poll", stack.service_token(PUSH_IDENTITY, "sync_poll"), {})

    show("CRM records the capture will match against (lookup by address and by domain)")
    org = Organization(name="Zeta Capital", domains=["zeta.vc"])
    investor = Investor(name="Zeta Capital Fund I", organization_id=org.id)
    contact = Contact(name="Zoe Zeta", investor_id=investor.id, emails=["Zoe@Zeta.vc"])
    store.upsert_organization(org)
    store.upsert_investor(investor)
    store.upsert_contact(contact)
    print(
        "   by address zoe@zeta.vc ->",
        [c.name for c in store.find_contacts_by_addresses(["zoe@zeta.vc"])],
    )
    print(
        "   by domain zeta.vc      ->",
        [o.name for o in store.find_organizations_by_domains(["zeta.vc"])],
    )

    show(
        "Cloud Scheduler -> sync_poll -> sync-requests topic -> sync_mailbox (local ticker + queue)"
    )
    status = stack.server.ticker.fire_now("sync_poll")
    print(f"  ticker called sync_poll as {SCHEDULER_IDENTITY}: {status}")
    wiring.local_queue().wait_idle(30)
    for message in wiring.local_queue().published:
        print(f"   published {message.topic}: {dict(message.message)}")
    for account in store.list_email_accounts():
        print(
            f"   mailbox {account.address:<20} status={account.sync.status.value:<6}"
            f" last_attempt={account.sync.last_attempt_at}"
        )
    print(
        "   (Gmail capture itself arrives with the capture issue; the lease and fan-out run now.)"
    )

    show("Audit trail")
    for entry in store.list_audit():
        print(f"   {entry.at:%H:%M:%S} {entry.actor} {entry.action} {brief(entry.details)}")


def main() -> int:
    import logging

    # The local server's access log would drown the story the demo tells; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="crm-demo-") as folder:
        path = Path(folder) / "crm.sqlite3"
        print(f"Local stack on SQLite {path}")
        with local_stack(sqlite_path=path, bootstrap_admin=ADMIN, start_ticker=True) as stack:
            print(f"Local server {stack.base_url}; issuer {stack.issuer.certs_url}")
            run(stack)
    print("\nDemo finished.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
