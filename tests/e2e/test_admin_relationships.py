"""Relationship intelligence over HTTP: the scenario's mail captured from the Gmail sandbox by
the real sync, then read through the relationship routes with real admin and member tokens.

The figures' rules are proven on both stores in ``tests/contract/test_relationships.py``; this
file proves the routes: that capture kept the rows, the replies' shape, the ranking after the
daily re-score, going cold, 404 and the roles.
"""

from __future__ import annotations

from typing import Any

import requests

from embedded.stack import Stack
from sandbox.scenario import TEAM, Scenario
from shared import wiring
from shared.services import relationships

ADMIN, MEMBER = TEAM


def get(stack: Stack, path: str, who: str = ADMIN, **params: Any) -> requests.Response:
    return requests.get(
        f"{stack.base_url}/admin_api{path}",
        params=params,
        headers={"Authorization": f"Bearer {stack.person_token(who)}"},
        timeout=30,
    )


def test_an_investors_figures_come_from_the_captured_mail(stack: Stack, synced: Scenario) -> None:
    reply = get(stack, f"/investors/{synced.investor.id}/relationship")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["name"] == synced.investor.name
    figures = body["figures"]
    assert figures["messages"] >= 2
    assert figures["last_contact"]["email_id"]
    assert {t["teammate"]["email"] for t in figures["teammates"]} <= set(TEAM)
    assert figures["teammates"], "the team's mailboxes saw the mail"
    inputs = figures["strength_inputs"]
    assert figures["strength"] == round(
        inputs["recency_points"] + inputs["frequency_points"] + inputs["reciprocity_points"]
    )
    contact = get(stack, f"/contacts/{synced.contact.id}/relationship")
    assert contact.status_code == 200, contact.text
    assert contact.json()["figures"]["messages"] >= 1


def test_the_ranking_lists_investors_after_the_daily_rescore(
    stack: Stack, synced: Scenario
) -> None:
    assert get(stack, "/investors/relationships").json()["items"] == []
    relationships.rescore_all(wiring.store(), now=wiring.clock().now())
    for sort in ("strength", "last_contact"):
        reply = get(stack, "/investors/relationships", sort=sort, limit=1)
        assert reply.status_code == 200, reply.text
        first = reply.json()
        assert len(first["items"]) == 1 and first["next_page_token"]
        rest = get(
            stack,
            "/investors/relationships",
            sort=sort,
            limit=50,
            page_token=first["next_page_token"],
        ).json()
        ids = [i["investor_id"] for i in first["items"] + rest["items"]]
        assert synced.investor.id in ids and len(ids) == len(set(ids))
    assert get(stack, "/investors/relationships", sort="name").status_code == 400


def test_going_cold_answers_with_its_thresholds(stack: Stack, synced: Scenario) -> None:
    relationships.rescore_all(wiring.store(), now=wiring.clock().now())
    reply = get(stack, "/relationships/going-cold")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["cold_days"], body["cold_drop"]) == (90, 20)
    assert isinstance(body["items"], list)


def test_unknown_records_are_404_and_members_are_refused(stack: Stack, synced: Scenario) -> None:
    assert get(stack, "/investors/no-such-investor/relationship").status_code == 404
    assert get(stack, "/contacts/no-such-contact/relationship").status_code == 404
    for path in (
        f"/investors/{synced.investor.id}/relationship",
        f"/contacts/{synced.contact.id}/relationship",
        "/investors/relationships",
        "/relationships/going-cold",
    ):
        assert get(stack, path, who=MEMBER).status_code == 403, path
