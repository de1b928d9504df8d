"""The local server end to end: functions mounted as functions-framework serves them, health,
real tokens from the sandbox issuer, the ticker driving a scheduled function, and the in-process
queue delivering Pub/Sub push envelopes to the subscribing function."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from embedded.stack import PUSH_IDENTITY, SCHEDULER_IDENTITY, Stack, local_stack
from sandbox.scenario import TEAM, message, seed_crm, seed_mail
from shared import wiring
from shared.catalog import FUNCTIONS, FunctionSpec, Trigger
from shared.domain.models import SyncStatus, email_id_for

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin@fund.example"
NOW = datetime.now(UTC)


@pytest.fixture
def admin_stack(tmp_path: Path) -> Iterator[Stack]:
    with local_stack(
        sqlite_path=tmp_path / "crm.sqlite3", bootstrap_admin=ADMIN, start_ticker=False
    ) as running:
        yield running


def call(
    admin_stack: Stack, method: str, path: str, token: str, **kwargs: object
) -> requests.Response:
    return requests.request(
        method,
        f"{admin_stack.base_url}{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )


def test_every_entry_point_of_main_is_in_the_catalog_and_back() -> None:
    tree = ast.parse((ROOT / "functions" / "main.py").read_text())
    exported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("functions.")
        for alias in node.names
    }
    assert exported == {spec.name for spec in FUNCTIONS}
    declared = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    )
    assert set(ast.literal_eval(declared)) == exported


def test_health_lists_every_function(admin_stack: Stack) -> None:
    response = requests.get(f"{admin_stack.base_url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "functions": [s.name for s in FUNCTIONS]}


def test_bootstrap_admin_can_call_the_admin_api(admin_stack: Stack) -> None:
    response = call(admin_stack, "GET", "/admin_api/me", admin_stack.person_token(ADMIN))
    assert response.status_code == 200
    assert response.json()["role"] == "admin"


def test_an_unknown_person_is_refused(admin_stack: Stack) -> None:
    response = call(
        admin_stack, "GET", "/admin_api/me", admin_stack.person_token("eve@elsewhere.example")
    )
    assert response.status_code == 403
    assert response.json()["reason"]


def test_admin_adds_a_member_who_then_cannot_list_users(admin_stack: Stack) -> None:
    admin = admin_stack.person_token(ADMIN)
    added = call(
        admin_stack,
        "POST",
        "/admin_api/users",
        admin,
        json={"email": "Member@Fund.example", "name": "Mem", "role": "member"},
    )
    assert added.status_code == 201
    assert added.json()["email"] == "member@fund.example"
    again = call(
        admin_stack, "POST", "/admin_api/users", admin, json={"email": "member@fund.example"}
    )
    assert again.status_code == 409
    bad = call(admin_stack, "POST", "/admin_api/users", admin, json={"email": "not-an-address"})
    assert bad.status_code == 400
    assert "email" in bad.json()["reason"]
    member = admin_stack.person_token("member@fund.example")
    assert call(admin_stack, "GET", "/admin_api/users", member).status_code == 403
    assert call(admin_stack, "GET", "/admin_api/me", member).json()["role"] == "member"
    audit = wiring.store().list_audit()
    assert [(a.action, a.actor) for a in audit] == [("user.add", ADMIN)]


def test_ticker_poll_fans_out_through_the_queue_to_sync_mailbox(admin_stack: Stack) -> None:
    store = wiring.store()
    scenario = seed_crm(store)
    seed_mail(admin_stack.gmail, scenario)
    paused = store.get_email_account_by_address(TEAM[1])
    assert paused is not None
    store.set_email_account_paused(paused.id, True)

    assert admin_stack.server.ticker.fire_now("sync_poll") == 200
    assert wiring.local_queue().wait_idle(30)

    published = wiring.local_queue().published
    ada = store.get_email_account_by_address(TEAM[0])
    assert ada is not None
    assert [m.message for m in published] == [{"account_id": ada.id, "coverage": True}]
    assert ada.sync.status is SyncStatus.OK
    assert ada.sync.backfill_done
    assert ada.sync.coverage_gap == 0
    assert store.get_email(email_id_for(scenario.message_ids["intro"])) is not None
    assert store.get_email_account(paused.id).sync.last_attempt_at is None  # type: ignore[union-attr]
    assert wiring.local_queue().dead_letters == []


def test_new_mail_reaches_the_store_through_gmail_push(admin_stack: Stack) -> None:
    store = wiring.store()
    scenario = seed_crm(store)
    seed_mail(admin_stack.gmail, scenario)
    admin_stack.server.ticker.fire_now("sync_poll")
    assert wiring.local_queue().wait_idle(30)
    assert admin_stack.server.ticker.fire_now("watch_renew") == 200
    ada = store.get_email_account_by_address(TEAM[0])
    assert ada is not None
    assert ada.sync.watch_expiration is not None
    assert admin_stack.gmail.wait_for_pushes(10)  # the notification a new watch sends at once

    mid, raw = message(
        sender="Zoe Zeta <zoe@zeta.vc>", to=[TEAM[0]], subject="Signed", body="Done.", date=NOW
    )
    admin_stack.gmail.add_message(TEAM[0], raw)
    assert admin_stack.gmail.wait_for_pushes(10)
    assert wiring.local_queue().wait_idle(30)

    email = store.get_email(email_id_for(mid))
    assert email is not None
    assert email.matched
    delivered = [d for d in admin_stack.gmail.deliveries if d.done]
    assert delivered
    assert all(d.statuses[-1] == 204 for d in delivered)


def test_a_grant_without_the_scope_is_a_clear_error_in_the_mailbox_status(
    admin_stack: Stack,
) -> None:
    from shared.adapters.gmail.credentials import SCOPE_READONLY

    store = wiring.store()
    scenario = seed_crm(store)
    seed_mail(admin_stack.gmail, scenario)
    admin_stack.gmail.revoke_scopes(admin_stack.gmail.client_id, [SCOPE_READONLY])
    admin_stack.server.ticker.fire_now("sync_poll")
    assert wiring.local_queue().wait_idle(30)
    ada = store.get_email_account_by_address(TEAM[0])
    assert ada is not None
    assert ada.sync.status is SyncStatus.ERROR
    assert "gmail.readonly" in ada.sync.last_error
    assert "unauthorized" in ada.sync.last_error.lower()


def test_scheduled_and_push_functions_refuse_people_and_each_other(admin_stack: Stack) -> None:
    admin = admin_stack.person_token(ADMIN)
    assert call(admin_stack, "POST", "/sync_poll", admin, json={}).status_code in (401, 403)
    push_token = admin_stack.service_token(PUSH_IDENTITY, "sync_poll")
    assert call(admin_stack, "POST", "/sync_poll", push_token, json={}).status_code == 403
    # A scheduler token minted for another function's URL is the wrong audience.
    stolen = admin_stack.service_token(SCHEDULER_IDENTITY, "sync_mailbox")
    assert call(admin_stack, "POST", "/sync_poll", stolen, json={}).status_code == 401


def test_a_malformed_push_is_acknowledged_not_retried(admin_stack: Stack) -> None:
    for function in ("sync_mailbox", "gmail_push"):
        token = admin_stack.service_token(PUSH_IDENTITY, function)
        response = call(
            admin_stack, "POST", f"/{function}", token, json={"message": {"data": "%%%"}}
        )
        assert response.status_code == 204


@pytest.mark.parametrize("function", ["gmail_push", "sync_mailbox"])
def test_push_functions_refuse_missing_forged_and_misaddressed_tokens(
    admin_stack: Stack, function: str
) -> None:
    from sandbox.issuer import SandboxIssuer

    envelope = {"message": {"data": "e30="}}
    url = f"{admin_stack.base_url}/{function}"
    assert requests.post(url, json=envelope, timeout=10).status_code == 401
    forged = SandboxIssuer(admin_stack.issuer.issuer.issuer).mint(PUSH_IDENTITY, url)
    assert call(admin_stack, "POST", f"/{function}", forged, json=envelope).status_code == 401
    other = admin_stack.service_token(PUSH_IDENTITY, "sync_poll")  # another function's audience
    assert call(admin_stack, "POST", f"/{function}", other, json=envelope).status_code == 401
    admin = admin_stack.person_token(ADMIN)
    assert call(admin_stack, "POST", f"/{function}", admin, json=envelope).status_code == 403


def test_the_ticker_fires_scheduled_functions_on_their_cron(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from embedded.server import Ticker

    now = [datetime(2026, 11, 25, 12, 3, 30, tzinfo=UTC)]
    fired: list[str] = []

    def record(spec: FunctionSpec) -> int:
        fired.append(spec.name)
        return 200

    every_five = [s for s in FUNCTIONS if s.schedule == "*/5 * * * *"]
    ticker = Ticker(record, now=lambda: now[0], functions=every_five)
    scheduled = {
        s.name for s in FUNCTIONS if s.trigger is Trigger.SCHEDULE and s.schedule == "*/5 * * * *"
    }
    assert ticker.tick() == []  # 12:03:30, next */5 run is 12:05
    now[0] += timedelta(minutes=1, seconds=30)  # 12:05:00
    assert set(ticker.tick()) == scheduled
    assert ticker.tick() == []  # once per fire time
    now[0] += timedelta(minutes=12)  # a late tick fires once, not once per missed slot
    assert set(ticker.tick()) == scheduled
    assert len(fired) == 2 * len(scheduled)
