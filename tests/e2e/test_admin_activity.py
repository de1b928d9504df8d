"""The email-activity panel over HTTP: the scenario's mailboxes captured from the Gmail sandbox
by the real sync, then searched through ``GET /admin_api/activity`` with a real admin token.

The panel's rules are proven one by one, on both stores, in
``tests/integration/test_activity_panel.py``; this file proves the route: parameters, filters,
paging, the picker, 400s, and that a CRM change made through the API shows in the panel once
its re-match job has run.
"""

from __future__ import annotations

from typing import Any

import requests

from embedded.stack import Stack
from sandbox.scenario import TEAM, Scenario
from shared import wiring
from shared.domain.models import account_id_for

ADMIN, MEMBER = TEAM


def get(stack: Stack, path: str, who: str = ADMIN, **params: Any) -> requests.Response:
    return requests.get(
        f"{stack.base_url}/admin_api{path}",
        params=params,
        headers={"Authorization": f"Bearer {stack.person_token(who)}"},
        timeout=30,
    )


def subjects(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["subject"] for item in response.json()["items"]]


def test_lists_only_matched_mail_newest_first_with_what_the_panel_shows(
    stack: Stack,
    synced: Scenario,
) -> None:
    running = stack
    page = get(running, "/activity").json()
    assert [i["subject"] for i in page["items"]] == [
        "Diligence questions",
        "Re: follow-on round",
        "Intro: Zeta Capital x Fund",
    ]
    assert page["has_more"] is False
    intro = page["items"][2]
    assert intro["direction"] == "inbound"
    assert intro["sender"] == {"name": "Zoe Zeta", "address": "zoe@zeta.vc"}
    assert {m["address"] for m in intro["mailboxes"]} == set(TEAM)
    assert [i["name"] for i in intro["investors"]] == ["Zeta Capital Fund I"]
    assert intro["snippet"]


def test_each_filter_alone_and_combined(stack: Stack, synced: Scenario) -> None:
    running, scenario = stack, synced
    ben = account_id_for(MEMBER)
    assert subjects(get(running, "/activity", direction="outbound")) == ["Re: follow-on round"]
    assert subjects(get(running, "/activity", investor_id=scenario.angel.id)) == [
        "Re: follow-on round"
    ]
    assert subjects(get(running, "/activity", account_id=ben)) == [
        "Diligence questions",
        "Intro: Zeta Capital x Fund",
    ]
    both = get(running, "/activity", account_id=ben, investor_id=scenario.investor.id, q="intro")
    assert subjects(both) == ["Intro: Zeta Capital x Fund"]
    assert subjects(get(running, "/activity", account_id=ben, direction="outbound")) == []


def test_q_matches_word_prefixes_ignoring_case_and_accents(stack: Stack, synced: Scenario) -> None:
    running = stack
    assert subjects(get(running, "/activity", q="DILIG")) == ["Diligence questions"]
    assert subjects(get(running, "/activity", q="Zéta intro")) == ["Intro: Zeta Capital x Fund"]
    assert subjects(get(running, "/activity", q="zeta nothingmatches")) == []
    # Sender name and address are searchable too.
    assert subjects(get(running, "/activity", q="kim")) == ["Diligence questions"]


def test_paging_returns_every_item_once(stack: Stack, synced: Scenario) -> None:
    running = stack
    seen: list[str] = []
    token = ""
    for _ in range(10):
        page = get(running, "/activity", limit=1, page_token=token).json()
        seen += [item["id"] for item in page["items"]]
        token = page["next_page_token"]
        if not page["has_more"]:
            break
    assert len(seen) == len(set(seen)) == 3


def test_bad_parameters_are_400_with_a_reason(stack: Stack, synced: Scenario) -> None:
    running = stack
    for params in (
        {"direction": "sideways"},
        {"limit": "0"},
        {"limit": "201"},
        {"investor": "x"},
        {"page_token": "%%%"},
        {"q": "a"},
    ):
        response = get(running, "/activity", **params)
        assert response.status_code == 400, params
        assert response.json()["reason"]


def test_a_rule_the_types_cannot_say_is_a_400_naming_the_parameter(
    stack: Stack, synced: Scenario
) -> None:
    running = stack
    response = get(running, "/activity", investor_id=" a/b ")
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_request",
        "reason": "investor_id is not a valid id",
        "investor_id": "a/b",
    }
    response = get(running, "/activity", q=" a ? ")
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_request",
        "reason": "q has no word of at least 2 letters or digits",
        "q": "a ?",
    }


def test_members_may_not_search(stack: Stack, synced: Scenario) -> None:
    running = stack
    assert get(running, "/activity", who=MEMBER).status_code == 403
    assert get(running, "/activity/investors", who=MEMBER).status_code == 403


def test_graveyard_investor_leaves_the_picker_but_its_mail_stays_searchable(
    stack: Stack,
    synced: Scenario,
) -> None:
    running, scenario = stack, synced
    picker = get(running, "/activity/investors").json()["items"]
    assert [i["name"] for i in picker] == ["Jo Smith (angel)", "Zeta Capital Fund I"]
    marked = requests.post(
        f"{running.base_url}/admin_api/investors/{scenario.angel.id}/graveyard",
        json={"graveyard": True},
        headers={"Authorization": f"Bearer {running.person_token(ADMIN)}"},
        timeout=30,
    )
    assert marked.status_code == 200, marked.text
    picker = get(running, "/activity/investors").json()["items"]
    assert [i["name"] for i in picker] == ["Zeta Capital Fund I"]
    assert subjects(get(running, "/activity", q="follow")) == ["Re: follow-on round"]
    assert subjects(get(running, "/activity", investor_id=scenario.angel.id)) == [
        "Re: follow-on round"
    ]


def test_a_contact_added_through_the_api_brings_its_old_mail_into_the_panel(
    stack: Stack,
    synced: Scenario,
) -> None:
    running, scenario = stack, synced
    assert "Pitch: the next big thing" not in subjects(get(running, "/activity"))
    added = requests.post(
        f"{running.base_url}/admin_api/contacts",
        json={
            "name": "Sam Stranger",
            "investor_id": scenario.angel.id,
            "emails": ["sam@startup.example"],
        },
        headers={"Authorization": f"Bearer {running.person_token(ADMIN)}"},
        timeout=30,
    )
    assert added.status_code == 202, added.text
    job_id = added.json()["job_id"]
    assert wiring.local_queue().wait_idle(30)
    job = get(running, f"/jobs/{job_id}").json()
    assert job["state"] == "done"
    assert subjects(get(running, "/activity", q="pitch")) == ["Pitch: the next big thing"]
