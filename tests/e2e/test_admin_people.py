"""Users over HTTP with real signed tokens: read, change role, deactivate and reactivate; the
last active admin; the user's mailboxes following them; the digest leaving them out; audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from embedded.stack import Stack, local_stack
from sandbox.scenario import TEAM, Scenario
from shared import wiring
from shared.domain.models import EmailAccount, PauseReason, Role, User, user_id_for
from shared.services.digest import build_digest
from tests.support.admin_api import call

ADMIN, MEMBER = TEAM
MEMBER_ID = user_id_for(MEMBER)


def patch(stack: Stack, user_id: str, body: object, who: str = ADMIN) -> requests.Response:
    return call(stack, "PATCH", f"/users/{user_id}", who, json=body)


def audit(action: str) -> list[tuple[str, str, dict[str, object]]]:
    return [
        (entry.actor, entry.target, entry.details)
        for entry in reversed(wiring.store().list_audit())
        if entry.action == action
    ]


def test_admin_reads_a_user_and_changes_their_role(stack: Stack, synced: Scenario) -> None:
    listed = call(stack, "GET", "/users", ADMIN).json()["items"]
    assert [u["email"] for u in listed] == [ADMIN, MEMBER]
    one = call(stack, "GET", f"/users/{MEMBER_ID}", ADMIN)
    assert one.status_code == 200
    assert User.model_validate(one.json()).role == "member"

    promoted = patch(stack, MEMBER_ID, {"role": "admin"})
    assert promoted.status_code == 200
    body = promoted.json()
    assert (body["user"]["role"], body["changed"]) == ("admin", True)
    assert (body["paused_mailboxes"], body["resumed_mailboxes"]) == ([], [])
    assert call(stack, "GET", "/users", MEMBER).status_code == 200  # now an admin

    same = patch(stack, MEMBER_ID, {"role": "admin"})
    assert (same.status_code, same.json()["changed"]) == (200, False)
    # One entry for the change, none for the request that changed nothing.
    assert audit("user.change") == [
        (
            ADMIN,
            MEMBER_ID,
            {
                "email": MEMBER,
                "changes": {"role": {"from": "member", "to": "admin"}},
                "paused_mailboxes": [],
                "resumed_mailboxes": [],
            },
        )
    ]


def test_bad_input_unknown_users_and_members_are_refused(stack: Stack, synced: Scenario) -> None:
    nothing = patch(stack, MEMBER_ID, {})
    assert nothing.status_code == 400
    assert "role or is_active" in nothing.json()["reason"]
    bad_role = patch(stack, MEMBER_ID, {"role": "owner"})
    assert (bad_role.status_code, "role" in bad_role.json()["reason"]) == (400, True)
    bad_flag = patch(stack, MEMBER_ID, {"is_active": "maybe"})
    assert (bad_flag.status_code, "is_active" in bad_flag.json()["reason"]) == (400, True)
    extra = patch(stack, MEMBER_ID, {"role": "admin", "email": "x@fund.example"})
    assert extra.status_code == 400

    unknown = user_id_for("nobody@fund.example")
    assert patch(stack, unknown, {"role": "admin"}).status_code == 404
    assert call(stack, "GET", f"/users/{unknown}", ADMIN).status_code == 404

    assert patch(stack, MEMBER_ID, {"role": "admin"}, who=MEMBER).status_code == 403
    assert call(stack, "GET", f"/users/{MEMBER_ID}", MEMBER).status_code == 403
    stored = wiring.store().get_user(MEMBER_ID)
    assert stored is not None
    assert stored.role == "member"
    assert audit("user.change") == []


def test_the_last_active_admin_stays(stack: Stack, synced: Scenario) -> None:
    admin_id = user_id_for(ADMIN)
    for change in ({"role": "member"}, {"is_active": False}):
        refused = patch(stack, admin_id, change)
        assert refused.status_code == 409
        body = refused.json()
        assert body["error"] == "conflict"
        assert "no active admin" in body["reason"]
        assert body["user_id"] == admin_id
    still = wiring.store().get_user(admin_id)
    assert still is not None
    assert (still.role, still.is_active) == ("admin", True)
    assert audit("user.change") == []

    # With a second admin, the first may step down.
    assert patch(stack, MEMBER_ID, {"role": "admin"}).status_code == 200
    stepped_down = patch(stack, admin_id, {"role": "member"})
    assert stepped_down.status_code == 200
    assert call(stack, "GET", "/users", ADMIN).status_code == 403  # no longer an admin
    # Now the member-turned-admin is the last one.
    assert patch(stack, MEMBER_ID, {"is_active": False}, who=MEMBER).status_code == 409


def test_deactivation_pauses_the_users_mailboxes_and_leaves_them_out_of_the_digest(
    stack: Stack, synced: Scenario
) -> None:
    store = wiring.store()
    ben_box = synced.accounts[1]
    since = datetime.now(UTC) - timedelta(hours=1)

    def digest_text() -> str:
        return build_digest(store, since, datetime.now(UTC) + timedelta(minutes=1), None).text

    before = digest_text()
    assert "Ben Member" in before
    assert "Diligence questions" in before  # mail only Ben's mailbox holds

    off = patch(stack, MEMBER_ID, {"is_active": False})
    assert off.status_code == 200
    assert off.json()["user"]["is_active"] is False
    assert off.json()["paused_mailboxes"] == [ben_box.id]
    paused = store.get_email_account(ben_box.id)
    assert paused is not None
    assert (paused.paused, paused.pause_reasons) == (True, [PauseReason.OWNER_INACTIVE])

    after = digest_text()
    assert "Ben Member" not in after
    assert "Diligence questions" not in after
    assert "Intro: Zeta Capital x Fund" in after  # Ada's mailbox holds it too
    # An inactive person is refused at the door, and the poll no longer syncs the mailbox.
    assert call(stack, "GET", "/me", MEMBER).status_code == 403
    wiring.local_queue().published.clear()
    stack.server.ticker.fire_now("sync_poll")
    assert wiring.local_queue().wait_idle(30)
    requested = {m.message["account_id"] for m in wiring.local_queue().published}
    assert ben_box.id not in requested

    wiring.local_queue().published.clear()
    on = patch(stack, MEMBER_ID, {"is_active": True})
    assert on.status_code == 200
    assert on.json()["resumed_mailboxes"] == [ben_box.id]
    assert wiring.local_queue().wait_idle(30)
    assert {"account_id": ben_box.id, "coverage": False} in [
        m.message for m in wiring.local_queue().published
    ]
    resumed = store.get_email_account(ben_box.id)
    assert resumed is not None
    assert (resumed.paused, resumed.pause_reasons) == (False, [])
    assert "Ben Member" in digest_text()

    assert [(target, d["changes"]) for _, target, d in audit("user.change")] == [
        (MEMBER_ID, {"is_active": {"from": True, "to": False}}),
        (MEMBER_ID, {"is_active": {"from": False, "to": True}}),
    ]
    assert [t for _, t, d in audit("mailbox.pause") if d["reason"] == "owner_inactive"] == [
        ben_box.id
    ]
    assert [t for _, t, _ in audit("mailbox.resume")] == [ben_box.id]


def test_reactivation_keeps_a_pause_an_admin_made(stack: Stack, synced: Scenario) -> None:
    ben_box = synced.accounts[1]
    assert call(stack, "POST", f"/mailboxes/{ben_box.id}/pause", ADMIN).status_code == 200
    assert patch(stack, MEMBER_ID, {"is_active": False}).json()["paused_mailboxes"] == [ben_box.id]
    # Resuming while the owner is inactive is refused: reactivating the owner is the way.
    refused = call(stack, "POST", f"/mailboxes/{ben_box.id}/resume", ADMIN)
    assert refused.status_code == 409
    assert refused.json()["pause_reasons"] == ["admin", "owner_inactive"]

    back = patch(stack, MEMBER_ID, {"is_active": True})
    assert back.json()["resumed_mailboxes"] == []
    kept = wiring.store().get_email_account(ben_box.id)
    assert kept is not None
    assert (kept.paused, kept.pause_reasons) == (True, [PauseReason.ADMIN])
    assert [d["still_paused_for"] for _, _, d in audit("mailbox.pause_reason_lifted")] == [
        ["admin"]
    ]
    resumed = call(stack, "POST", f"/mailboxes/{ben_box.id}/resume", ADMIN)
    assert resumed.status_code == 200
    assert resumed.json()["mailbox"]["state"] != "paused"


def test_users_and_mailboxes_outside_the_team_domains(stack: Stack) -> None:
    """CRM_TEAM_DOMAINS=fund.example (the local stack's): a user or mailbox at another domain
    is a 400 saying so (a subdomain or a look-alike is another domain) and nothing is stored.
    One stored before the setting is kept, flagged in GET /users and GET /mailboxes, and cannot
    sign in (its token's hd is not the fund's)."""
    for outsider in ("eve@evil.example", "eve@sub.fund.example", "eve@fund.example.evil"):
        refused = call(stack, "POST", "/users", json={"email": outsider, "role": "admin"})
        assert refused.status_code == 400, refused.text
        body = refused.json()
        assert body["error"] == "outside_team_domains"
        assert "fund.example" in body["reason"] and outsider in body["reason"]
        assert body["team_domains"] == ["fund.example"]
        mailbox = call(stack, "POST", "/mailboxes", json={"address": outsider})
        assert mailbox.status_code == 400 and mailbox.json()["error"] == "outside_team_domains"
    assert [u.email for u in wiring.store().list_users()] == [ADMIN]  # the bootstrap admin
    assert wiring.store().list_email_accounts() == []
    assert call(stack, "POST", "/users", json={"email": "cy@fund.example"}).status_code == 201

    old = User.new("old@partner.example", "Old", Role.ADMIN)
    wiring.store().add_user(old)
    wiring.store().add_email_account(EmailAccount.new("deals@partner.example"))
    users = call(stack, "GET", "/users").json()
    flags = {u["email"]: u["outside_team_domains"] for u in users["items"]}
    assert flags == {ADMIN: False, "cy@fund.example": False, old.email: True}
    assert users["team_domains"] == ["fund.example"]
    team = call(stack, "GET", "/mailboxes").json()["team"]
    assert team["domains"] == ["fund.example"] and team["source"] == "CRM_TEAM_DOMAINS"
    assert team["outside_users"] == [old.email]
    assert team["outside_mailboxes"] == ["deals@partner.example"]
    assert "outside them: 1 user(s), 1 mailbox(es)" in team["status"]
    assert [
        i["outside_team_domains"] for i in call(stack, "GET", "/mailboxes").json()["items"]
    ] == [True]
    assert wiring.store().get_user(old.id) is not None  # kept, not deleted
    refused = call(stack, "GET", "/me", old.email)
    assert refused.status_code == 403 and "hosted domain" in refused.json()["reason"]


def test_on_one_machine_the_team_domain_defaults_to_the_bootstrap_admins(tmp_path: Path) -> None:
    with local_stack(
        sqlite_path=tmp_path / "crm.sqlite3",
        bootstrap_admin=ADMIN,
        team_domains=(),
        start_ticker=False,
    ) as stack:
        team = call(stack, "GET", "/mailboxes").json()["team"]
        assert (team["domains"], team["source"]) == (["fund.example"], "CRM_BOOTSTRAP_ADMIN")
        refused = call(stack, "POST", "/users", json={"email": "eve@evil.example"})
        assert refused.status_code == 400 and refused.json()["error"] == "outside_team_domains"
        assert call(stack, "POST", "/users", json={"email": MEMBER}).status_code == 201
