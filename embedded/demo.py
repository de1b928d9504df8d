"""``make demo``: the whole flow that exists so far, end to end, on the embedded default.

Starts the sandbox issuer, the Gmail sandbox, the sandbox narrator and the local server on a
fresh SQLite file, then acts as the admin console, Cloud Scheduler and Pub/Sub would, over HTTP
with real signed tokens, printing what happened. The team's Gmail accounts hold their mail before
the admin adds the mailboxes, as in a real Workspace, so every sync and watch succeeds and any
failure printed is a real one. Each later issue extends this script with its part of the flow
(tests/e2e/test_demo.py checks what it must show).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from embedded.stack import PUSH_IDENTITY, SCHEDULER_IDENTITY, Stack, local_stack
from sandbox.issuer import SandboxIssuer
from sandbox.narrator_stub import NarratorStub, facts_paragraph, serve_narrator_stub
from sandbox.scenario import TEAM, TEAM_DOMAINS, crm_records, message, seed_mail
from shared import wiring
from shared.domain.models import email_id_for, utcnow

ADMIN = "ada@fund.example"
# What an admin sends for a CRM record (the rest are the store's bookkeeping).
CRM_FIELDS = {"name", "domains", "organization_id", "investor_id", "emails"}


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
    me = call(stack, "GET", "/admin_api/me", admin).json()
    print("  ", brief(me))

    show("Admin adds a team member")
    new_user = {"email": TEAM[1], "name": "Ben Member", "role": "member"}
    call(stack, "POST", "/admin_api/users", admin, new_user)
    users = call(stack, "GET", "/admin_api/users", admin).json()["items"]
    for user in users:
        print(f"   user {user['email']:<22} role={user['role']:<7} active={user['is_active']}")

    show("The fund's own domains (CRM_TEAM_DOMAINS): a user outside them is refused")
    outsider = {"email": "eve@evil.example", "role": "admin"}
    print("  ", brief(call(stack, "POST", "/admin_api/users", admin, outsider).json()))

    show("Who may call what (every entry point verifies the token in code)")
    member = stack.person_token(TEAM[1])
    print("  member lists users:")
    call(stack, "GET", "/admin_api/users", member)
    forged = SandboxIssuer(stack.issuer.issuer.issuer).mint(ADMIN, "admin-console.apps.local")
    print("  forged admin token:")
    print("  ", brief(call(stack, "GET", "/admin_api/me", forged).json()))
    print("  admin token on the scheduler's function:")
    call(stack, "POST", "/sync_poll", admin, {})
    print("  push identity on the scheduler's function:")
    call(stack, "POST", "/sync_poll", stack.service_token(PUSH_IDENTITY, "sync_poll"), {})

    show("CRM records the capture matches against (PUT /admin_api/<kind>/<id>)")
    records = crm_records()
    for kind, record in (
        ("organizations", records.organization),
        ("investors", records.investor),
        ("investors", records.angel),
        ("contacts", records.contact),
        ("contacts", records.angel_contact),
    ):
        body = record.model_dump(mode="json", include=CRM_FIELDS)
        call(stack, "PUT", f"/admin_api/{kind}/{record.id}", admin, body)
    wiring.local_queue().wait_idle(30)
    organization = records.organization
    print(f"   organisation {organization.name} (domains {organization.domains})")
    for contact in (records.contact, records.angel_contact):
        print(f"   contact {contact.name} {contact.emails} -> investor {contact.investor_id}")

    show("The team's Gmail (the sandbox): the mail already in their mailboxes")
    seed_mail(stack.gmail)
    for address in TEAM:
        print(f"   Gmail {address}: {len(stack.gmail.message_ids(address))} messages")

    show("Admin adds the two team mailboxes: each is synced at once (a full sync) and watched")
    for address in TEAM:
        added = call(stack, "POST", "/admin_api/mailboxes", admin, {"address": address}).json()
        print(
            f"   {address}: sync_requested={added['sync_requested']}"
            f" watch_started={added['watch_started']} watch_error={added['watch_error']}"
        )
    wiring.local_queue().wait_idle(60)
    print_mailboxes(stack, admin)

    show("Cloud Scheduler -> sync_poll -> sync-requests -> sync_mailbox: the poll behind the push")
    status = stack.server.ticker.fire_now("sync_poll")
    print(f"  ticker called sync_poll as {SCHEDULER_IDENTITY}: {status}")
    wiring.local_queue().wait_idle(60)
    print_mailboxes(stack, admin)

    show("What was captured (match-only storage: bodies only for investor mail)")
    own = store.own_addresses()
    for email_id in captured_email_ids(stack):
        email = store.get_email(email_id)
        if email is None:
            continue
        direction = "outbound" if email.sender and email.sender.address in own else "inbound"
        seen = len([s for s in store.list_sightings(email.id) if not s.deleted])
        print(
            f"   {email.subject[:30]:<30} {direction:<8} matched={email.matched!s:<5}"
            f" investors={email.investor_ids} mailboxes={seen} body={'yes' if email.body else 'no'}"
        )

    show("Gmail watch -> push -> gmail_push -> sync: new mail arrives")
    print(f"  ticker called watch_renew: {stack.server.ticker.fire_now('watch_renew')}")
    mid, raw = message(
        sender="Zoe Zeta <zoe@zeta.vc>",
        to=[TEAM[0]],
        subject="Signed side letter",
        body="Ada, signed copy attached.",
        date=utcnow(),
    )
    started = time.monotonic()
    stack.gmail.add_message(TEAM[0], raw)
    while store.get_email(email_id_for(mid)) is None and time.monotonic() - started < 30:
        time.sleep(0.01)
    elapsed_ms = 1000 * (time.monotonic() - started)
    print(f"   'Signed side letter' stored {elapsed_ms:.0f} ms after it arrived")
    wiring.local_queue().wait_idle(30)

    show("Proposals: nothing reaches a contact record until a person approves")
    listed = call(stack, "GET", "/admin_api/proposals?status=proposed", admin).json()["items"]
    by_subject: dict[str, str] = {}
    for item in listed:
        email = store.get_email(item["email_id"])
        subject = email.subject if email else ""
        by_subject[subject] = item["id"]
        print(f"   {item['id'][:14]} {item['investor_id']:<18} {subject}")
    first, second = by_subject["Signed side letter"], by_subject["Diligence questions"]
    approved = call(stack, "POST", f"/admin_api/proposals/{first}/approve", admin).json()
    print(f"   approved -> activity {brief(approved.get('activity', {}).get('summary'))}")
    again = call(stack, "POST", f"/admin_api/proposals/{first}/approve", admin)
    print(f"   approved again -> {again.status_code} {brief(again.json())} (one activity)")
    call(stack, "POST", f"/admin_api/proposals/{second}/reject", admin)
    conflict = call(stack, "POST", f"/admin_api/proposals/{second}/approve", admin)
    print(f"   approving the rejected one -> {conflict.status_code} {brief(conflict.json())}")
    bulk = {"decision": "reject", "investor_id": records.angel.id}
    rejected = call(stack, "POST", "/admin_api/proposals/bulk-decisions", admin, bulk).json()
    print(f"   bulk reject of {bulk['investor_id']}'s open proposals -> {brief(rejected)}")

    show("Email-activity panel: investor mail only, filters, words, the picker")
    print_activity(stack, admin, "")
    print(
        "   The rejected 'Diligence questions' is still listed: rejecting declines the CRM\n"
        "   activity (nothing is written to the investor's record), but the email is still\n"
        "   mail with an investor, so the panel keeps showing it."
    )
    print_activity(stack, admin, "direction=outbound")
    print_activity(stack, admin, "q=Z%C3%A9ta%20intro")
    picker = call(stack, "GET", "/admin_api/activity/investors", admin).json()["items"]
    print(f"   picker: {[i['name'] for i in picker]}")
    show_relationship(stack, admin, records.investor.id)
    email_detail_and_correction(stack, admin, records.investor.id)

    show_drafts(stack, admin)

    show("CRM records: a new contact re-matches old mail (202, a job); graveyard leaves the picker")
    sam: dict[str, Any] = {
        "name": "Sam Stranger",
        "investor_id": records.angel.id,
        "emails": ["sam@startup.example"],
    }
    added = call(stack, "POST", "/admin_api/contacts", admin, sam)
    job_id = added.json()["job_id"]
    print(f"   re-match job {job_id} queued")
    wiring.local_queue().wait_idle(30)
    job = call(stack, "GET", f"/admin_api/jobs/{job_id}", admin).json()
    print(f"   job state={job['state']} linked={job['linked']}")
    print_activity(stack, admin, "q=pitch")
    grave = {"graveyard": True}
    call(stack, "POST", f"/admin_api/investors/{records.angel.id}/graveyard", admin, grave)
    picker = call(stack, "GET", "/admin_api/activity/investors", admin).json()["items"]
    print(f"   {records.angel.name} marked graveyard; picker now: {[i['name'] for i in picker]}")
    print_activity(stack, admin, f"investor_id={records.angel.id}")

    show("Mailboxes: pause, resume, full resync; deactivating a user pauses theirs")
    ben = store.get_email_account_by_address(TEAM[1])
    assert ben is not None
    assert ben.user_id is not None
    paused = call(stack, "POST", f"/admin_api/mailboxes/{ben.id}/pause", admin).json()["mailbox"]
    print(f"   paused -> state={paused['state']} reasons={paused['pause_reasons']}")
    off = call(stack, "PATCH", f"/admin_api/users/{ben.user_id}", admin, {"is_active": False})
    print(f"   deactivate Ben -> paused mailboxes {off.json()['paused_mailboxes']}")
    on = call(stack, "PATCH", f"/admin_api/users/{ben.user_id}", admin, {"is_active": True})
    print(
        f"   reactivate Ben -> resumed {on.json()['resumed_mailboxes']} (the admin's pause stays)"
    )
    call(stack, "POST", f"/admin_api/mailboxes/{ben.id}/resume", admin)
    resync = call(stack, "POST", f"/admin_api/mailboxes/{ben.id}/resync", admin).json()
    print(f"   full resync requested -> sync_requested={resync['sync_requested']}")
    wiring.local_queue().wait_idle(30)
    print_mailboxes(stack, admin)
    last_admin = call(
        stack, "PATCH", f"/admin_api/users/{me['user_id']}", admin, {"role": "member"}
    )
    print(f"   demoting the only admin -> {last_admin.status_code} {brief(last_admin.json())}")

    show("The daily digest: policy, send-now through Gmail, the SMTP fallback, the daily tick")
    stack.gmail.allow_send_to([ADMIN])
    stack.smtp.allow_send_to([ADMIN])
    print("  ", brief(call(stack, "GET", "/admin_api/digest/policy", admin).json()))
    policy = {"enabled": True, "send_hour": 0}
    print("  ", brief(call(stack, "PATCH", "/admin_api/digest/policy", admin, policy).json()))
    print("  ", brief(call(stack, "POST", "/admin_api/digest/send-now", admin).json()))
    sent = stack.gmail.sends[-1]
    print(f"   Gmail sandbox recorded a send from {sent.mailbox} to {list(sent.recipients)}:")
    print("   (each team member's paragraph is written by the narrator: here the sandbox's)")
    for line in email_text(sent.raw).splitlines():
        print(f"     | {line}")
    print(f"  ticker called digest_tick: {stack.server.ticker.fire_now('digest_tick')}")
    print(f"  ticker called digest_tick again: {stack.server.ticker.fire_now('digest_tick')}")
    print(f"   Gmail sends so far: {len(stack.gmail.sends)} (one send-now, one daily digest)")
    stack.gmail.inject_fault("messages.send", status=500, count=10)
    print("  Gmail now fails; send-now again:")
    print("  ", brief(call(stack, "POST", "/admin_api/digest/send-now", admin).json()))
    print(
        f"   SMTP sink received {len(stack.smtp.messages)} message(s), after AUTH as"
        f" {stack.smtp.messages[-1].auth_user if stack.smtp.messages else '-'}"
    )
    refused = call(
        stack, "POST", "/admin_api/digest/test-email", admin, {"recipients": ["lp@zeta.vc"]}
    )
    print(f"   test email to an investor -> {refused.status_code} {brief(refused.json())}")

    show("Audit trail")
    for entry in store.list_audit():
        print(f"   {entry.at:%H:%M:%S} {entry.actor} {entry.action} {brief(entry.details)}")


def show_drafts(stack: Stack, token: str) -> None:
    """A reply and a reply-all draft to the intro (from Zoe, To Ada, Cc Ben), in Ada's mailbox."""
    show("Reply drafts: written into the thread in Gmail, sent only by a person")
    email_id = call(stack, "GET", "/admin_api/activity?q=intro", token).json()["items"][0]["id"]
    sends_before = len(stack.gmail.sends)
    for mode, text in (
        ("reply", "Zoe, thank you: let's find a time next week."),
        ("reply_all", "Zoe, Ben: looping in the team. Thursday works for us."),
    ):
        body = {"email_id": email_id, "mailbox": ADMIN, "body": text, "mode": mode}
        created = call(stack, "POST", "/admin_api/drafts", token, body).json()
        to = [m["address"] for m in created["to"]]
        cc = [m["address"] for m in created["cc"]]
        print(f"   {mode:<9} draft {created['draft_id']} {created['subject']!r} to={to} cc={cc}")
        draft = next(d for d in stack.gmail.drafts(ADMIN) if d.id == created["draft_id"])
        for line in draft_lines(draft.raw):
            print(f"     | {line}")
    print(
        f"   Gmail sends while drafting: {len(stack.gmail.sends) - sends_before}"
        " (agents draft; humans send)"
    )


def draft_lines(raw: bytes) -> list[str]:
    """The headers a person reviewing the draft sees, then its text and the quote."""
    import email
    import email.policy

    message = email.message_from_bytes(raw, policy=email.policy.default)
    shown = [f"{name}: {message[name]}" for name in ("To", "Cc", "Subject", "In-Reply-To")]
    return [line for line in shown if not line.endswith(": None")] + email_text(raw).splitlines()


def email_text(raw: bytes) -> str:
    """The text part of a sent message, as its recipient would read it."""
    import email
    import email.policy
    from email.message import EmailMessage

    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def show_relationship(stack: Stack, admin: str, investor_id: str) -> None:
    """An investor's relationship figures as an admin reads them: who knows them, when we last
    spoke, and a strength whose every input is shown (docs/relationships.md)."""
    show("Relationship: who on the team knows this LP, how well, and when we last spoke")
    reply = call(stack, "GET", f"/admin_api/investors/{investor_id}/relationship", admin).json()
    figures = reply["figures"]
    inputs = figures["strength_inputs"]
    print(f"   {reply['name']}: strength {figures['strength']}/100 =")
    print(
        f"     recency {inputs['recency_points']} (last contact"
        f" {inputs['days_since_last_contact']} days ago)"
        f" + frequency {inputs['frequency_points']} ({inputs['messages_365']} messages in a year)"
        f" + reciprocity {inputs['reciprocity_points']}"
        f" ({inputs['two_way_exchanges_365']} two-way exchanges)"
    )
    print(
        f"   {figures['messages']} messages: {figures['inbound']} in, {figures['outbound']} out;"
        f" one-way in {figures['one_way_inbound']}, one-way out {figures['one_way_outbound']}"
    )
    last = figures["last_contact"]
    if last:
        print(f"   last contact {last['at']} ({last['direction']})")
    for mate in figures["teammates"]:
        who = mate["teammate"]["email"] or mate["teammate"]["key"]
        print(
            f"   knows them: {who} ({mate['teammate']['status']}): {mate['messages']} messages,"
            f" {mate['two_way_exchanges']} two-way, last {mate['last_contact_at']}"
        )


def email_detail_and_correction(stack: Stack, admin: str, investor_id: str) -> None:
    """One email in detail (why it matched, who saw it), a member's own view, and a "not
    investor mail" correction and its undo (docs/email-detail-and-corrections.md)."""
    show("Email detail, a member's own view, a 'not investor mail' correction and its undo")
    member = stack.person_token(TEAM[1])
    partner = email_id_for("<diligence.7@zeta.vc>")
    path = f"/admin_api/emails/{partner}"
    detail = call(stack, "GET", path, admin).json()
    for person in detail["participants"]:
        for why in person["matches"]:
            reason = why["domain"] or why["contact_name"] or why["matched_address"]
            print(
                f"   {person['address']} ({person['header']}) -> {why['investor_name']}"
                f" via {why['via']} {reason}"
            )
    print(f"   seen by {[s['mailbox'] for s in detail['sightings']]}; body {brief(detail['body'])}")
    mine = call(stack, "GET", "/admin_api/me/activity", member).json()["items"]
    print(f"   Ben's own mail: {[item['subject'] for item in mine]}")
    hidden = call(
        stack, "GET", f"/admin_api/emails/{email_id_for('<follow-on.1@fund.example>')}", member
    )
    print(f"   Ben asks for Ada's reply to Jo -> {hidden.status_code} (not his to see)")
    body = {"investor_id": investor_id}
    done = call(stack, "POST", f"{path}/not-investor-mail", admin, body).json()
    print(f"   corrected -> {brief(done)}")
    after = call(stack, "GET", path, admin).json()
    print(f"   now matched={after['matched']} body={after['body']!r}")
    undone = call(stack, "DELETE", f"{path}/not-investor-mail?investor_id={investor_id}", admin)
    print(f"   undone -> {brief(undone.json())}")
    again = call(stack, "GET", path, admin).json()
    print(f"   matched again={again['matched']} body {brief(again['body'])}")


def print_activity(stack: Stack, token: str, params: str) -> None:
    page = call(stack, "GET", f"/admin_api/activity?{params}", token).json()
    print(f"   {len(page['items'])} item(s), has_more={page['has_more']}")
    for item in page["items"]:
        names = [i["name"] for i in item["investors"]]
        print(
            f"     {item['date'][:10]} {item['direction']:<8} {item['subject'][:28]:<28}"
            f" {item['sender']['address'] if item['sender'] else '':<22} {names}"
        )


def print_mailboxes(stack: Stack, token: str) -> None:
    for account in call(stack, "GET", "/admin_api/mailboxes", token).json()["items"]:
        sync = account["sync"]
        print(
            f"   mailbox {account['address']:<18} state={account['state']:<7}"
            f" history_id={sync['history_id']} done={sync['messages_done']}"
            f" failed={sync['messages_failed']} gap={sync['coverage_gap']}"
            f" backfill={account['backfill']['percent']}%"
            f" lag_s={_rounded(account['lag_seconds'])} behind={account['behind']}"
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def captured_email_ids(stack: Stack) -> list[str]:
    store = wiring.store()
    ids: list[str] = []
    for address in TEAM:
        account = store.get_email_account_by_address(address)
        if account is None:
            continue
        for gid in stack.gmail.message_ids(address):
            sighting = store.get_sighting(account.id, gid)
            if sighting is not None and sighting.email_id not in ids:
                ids.append(sighting.email_id)
    return ids


def main() -> int:
    import logging

    # The local server's access log and the functions' INFO lines would drown the story the
    # demo tells; warnings and errors still show (as JSON lines, as Cloud Logging reads them).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("CRM_LOG_LEVEL", "WARNING")
    with (
        tempfile.TemporaryDirectory(prefix="crm-demo-") as folder,
        serve_narrator_stub(NarratorStub(reply=facts_paragraph)) as narrator,
    ):
        path = Path(folder) / "crm.sqlite3"
        print(f"Local stack on SQLite {path}")
        narrator_env = {"CRM_NARRATOR_URL": narrator.base_url, "CRM_NARRATOR_MODEL": "sandbox"}
        with local_stack(
            sqlite_path=path,
            bootstrap_admin=ADMIN,
            team_domains=TEAM_DOMAINS,
            env=narrator_env,
            start_ticker=True,
        ) as stack:
            print(f"Local server {stack.base_url}; issuer {stack.issuer.certs_url}")
            run(stack)
    print("\nDemo finished.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
