"""Proposals over HTTP with real signed tokens: listing by status, investor, mailbox and
creation time with paging; approving and rejecting one (409 with the state once decided, either
way); bulk decisions by investor, mailbox or window, capped, audited per item; refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from embedded.stack import Stack
from sandbox.scenario import TEAM, Scenario
from shared import wiring
from shared.domain.models import Proposal, ProposalStatus
from tests.support.admin_api import call

ADMIN, MEMBER = TEAM
ZETA, ANGEL = "inv-zeta-fund-1", "inv-jo-smith"


def listed(stack: Stack, **params: Any) -> list[Proposal]:
    response = call(stack, "GET", "/proposals", params=params)
    assert response.status_code == 200, response.text
    return [Proposal.model_validate(p) for p in response.json()["items"]]


def every(stack: Stack) -> list[Proposal]:
    return listed(stack, limit=200)


def audit(prefix: str = "proposal.") -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.action, e.target, e.details)
        for e in reversed(wiring.store().list_audit(limit=1000))
        if e.action.startswith(prefix)
    ]


def test_the_list_filters_by_status_investor_mailbox_and_time(
    stack: Stack, synced: Scenario
) -> None:
    ada, ben = (a.id for a in synced.accounts)
    proposals = every(stack)
    assert sorted(p.investor_id for p in proposals) == [ANGEL, ZETA, ZETA]
    assert [p.sort_key for p in proposals] == sorted((p.sort_key for p in proposals), reverse=True)

    assert {p.investor_id for p in listed(stack, investor_id=ANGEL)} == {ANGEL}
    by_mailbox = {a: listed(stack, account_id=a) for a in (ada, ben)}
    assert all(p.account_id == a for a, items in by_mailbox.items() for p in items)
    assert sorted(p.id for items in by_mailbox.values() for p in items) == sorted(
        p.id for p in proposals
    )
    assert ANGEL in {p.investor_id for p in by_mailbox[ada]}  # Ada's reply to Jo
    assert listed(stack, account_id=ben, investor_id=ANGEL) == []

    newest = proposals[0].created_at
    assert listed(stack, created_from=(newest + timedelta(seconds=1)).isoformat()) == []
    assert listed(stack, created_to=proposals[-1].created_at.isoformat()) == []
    window = {
        "created_from": proposals[-1].created_at.isoformat(),
        "created_to": (newest + timedelta(seconds=1)).isoformat(),
    }
    assert [p.id for p in listed(stack, **window)] == [p.id for p in proposals]

    call(stack, "POST", f"/proposals/{proposals[0].id}/approve")
    approved = listed(stack, status="approved")
    assert [p.id for p in approved] == [proposals[0].id]
    assert [p.id for p in listed(stack, status="proposed")] == [p.id for p in proposals[1:]]
    assert listed(stack, status="rejected", account_id=ada) == []


def test_pages_return_every_proposal_once(stack: Stack, synced: Scenario) -> None:
    ids: list[str] = []
    token = ""
    pages = 0
    while True:
        page = call(stack, "GET", "/proposals", params={"limit": 1, "page_token": token}).json()
        ids += [p["id"] for p in page["items"]]
        pages += 1
        token = page["next_page_token"]
        if not token:
            break
    assert ids == [p.id for p in every(stack)]
    assert pages == 3


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"status": "maybe"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"page_token": "%%%"}, "page_token"),
        ({"created_from": "2026-01-01T00:00:00"}, "created_from"),  # no time zone
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "0001-01-01T00:00:00+05:00"}, "created_to"),
        ({"created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"}, "after"),
        ({"mailbox": "a_x"}, "mailbox"),
    ],
)
def test_bad_list_parameters_are_refused_naming_them(
    stack: Stack, params: dict[str, Any], named: str
) -> None:
    response = call(stack, "GET", "/proposals", params=params)
    assert response.status_code == 400
    assert named in response.json()["reason"]


def test_approve_and_reject_one_then_409_with_the_state(stack: Stack, synced: Scenario) -> None:
    first, second, _ = every(stack)
    one = call(stack, "GET", f"/proposals/{first.id}")
    assert (one.status_code, one.json()["status"]) == (200, "proposed")

    approved = call(stack, "POST", f"/proposals/{first.id}/approve")
    assert approved.status_code == 200
    assert approved.json()["proposal"]["status"] == "approved"
    assert approved.json()["proposal"]["decided_by"] == ADMIN
    assert approved.json()["activity"]["proposal_id"] == first.id
    for verdict in ("approve", "reject"):  # approving again is a conflict too
        again = call(stack, "POST", f"/proposals/{first.id}/{verdict}")
        assert again.status_code == 409
        assert again.json() == {
            "error": "conflict",
            "reason": "proposal already approved",
            "proposal_id": first.id,
            "status": "approved",
        }

    assert call(stack, "POST", f"/proposals/{second.id}/reject").status_code == 200
    refused = call(stack, "POST", f"/proposals/{second.id}/approve")
    assert (refused.status_code, refused.json()["status"]) == (409, "rejected")
    assert wiring.store().get_activity(second.id) is None

    assert call(stack, "POST", "/proposals/p_missing/approve").status_code == 404
    assert call(stack, "GET", "/proposals/p_missing").status_code == 404
    assert call(stack, "POST", "/proposals/x/accept").status_code == 404  # no such action
    assert call(stack, "POST", f"/proposals/{first.id}/approve", MEMBER).status_code == 403
    assert call(stack, "GET", "/proposals", MEMBER).status_code == 403
    assert [(action, target) for action, target, _ in audit()] == [
        ("proposal.approved", first.id),
        ("proposal.rejected", second.id),
    ]


def test_bulk_decisions_by_investor_are_capped_and_audited_per_item(
    stack: Stack, synced: Scenario
) -> None:
    zeta = [p.id for p in listed(stack, investor_id=ZETA)]
    assert len(zeta) == 2
    capped = call(
        stack,
        "POST",
        "/proposals/bulk-decisions",
        json={"decision": "reject", "investor_id": ZETA, "limit": 1},
    )
    assert capped.status_code == 200
    assert capped.json() == {
        "decision": "reject",
        "decided_count": 1,
        "decided": zeta[:1],
        "skipped": [],
        "more": True,
    }
    rest = call(
        stack, "POST", "/proposals/bulk-decisions", json={"decision": "reject", "investor_id": ZETA}
    ).json()
    assert (rest["decided"], rest["more"]) == (zeta[1:], False)
    done = call(
        stack,
        "POST",
        "/proposals/bulk-decisions",
        json={"decision": "approve", "investor_id": ZETA},
    ).json()
    assert (done["decided_count"], done["more"]) == (0, False)  # nothing open is left
    assert {p.status for p in listed(stack, investor_id=ZETA)} == {ProposalStatus.REJECTED}
    assert [p.status for p in listed(stack, investor_id=ANGEL)] == [ProposalStatus.PROPOSED]
    assert [(a, t, d.get("bulk")) for a, t, d in audit()] == [
        ("proposal.rejected", zeta[0], True),
        ("proposal.rejected", zeta[1], True),
    ]


def test_bulk_decisions_by_mailbox_and_by_window(stack: Stack, synced: Scenario) -> None:
    ada = synced.accounts[0].id
    adas = [p.id for p in listed(stack, account_id=ada)]
    approved = call(
        stack, "POST", "/proposals/bulk-decisions", json={"decision": "approve", "account_id": ada}
    ).json()
    assert approved["decided"] == adas
    for proposal_id in adas:
        assert wiring.store().get_activity(proposal_id) is not None

    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    nothing = call(
        stack,
        "POST",
        "/proposals/bulk-decisions",
        json={"decision": "reject", "created_from": later},
    ).json()
    assert nothing["decided"] == []
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    rest = call(
        stack,
        "POST",
        "/proposals/bulk-decisions",
        json={"decision": "reject", "created_from": since},
    ).json()
    open_before = {p.id for p in every(stack) if p.id not in adas}
    assert set(rest["decided"]) == open_before
    assert {p.status for p in listed(stack, status="proposed")} == set()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"decision": "approve"}, "at least one"),
        ({"decision": "approve", "investor_id": ""}, "at least one"),
        ({"decision": "maybe", "investor_id": ZETA}, "decision"),
        ({"investor_id": ZETA}, "decision"),
        ({"decision": "approve", "investor_id": ZETA, "limit": 501}, "limit"),
        ({"decision": "approve", "investor_id": ZETA, "status": "x"}, "status"),
        ({"decision": "approve", "created_from": "2026-01-01"}, "created_from"),
    ],
)
def test_bad_bulk_requests_are_refused(
    stack: Stack, synced: Scenario, body: dict[str, Any], named: str
) -> None:
    response = call(stack, "POST", "/proposals/bulk-decisions", json=body)
    assert response.status_code == 400
    assert named in response.json()["reason"]
    assert audit() == []


def test_members_cannot_decide_in_bulk(stack: Stack, synced: Scenario) -> None:
    body = {"decision": "approve", "investor_id": ZETA}
    assert call(stack, "POST", "/proposals/bulk-decisions", MEMBER, json=body).status_code == 403
    assert {p.status for p in every(stack)} == {ProposalStatus.PROPOSED}
