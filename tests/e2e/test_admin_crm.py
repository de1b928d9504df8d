"""CRM records over HTTP with real tokens, on the local stack after a real capture from the Gmail
sandbox: create and update each kind, bulk JSON, CSV import with a per-row report, graveyard,
soft delete and restore, the exclusion list, and the re-match job each matching change queues
(delivered by the local queue to ``rematch_job``), which links and unlinks the captured mail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from embedded.stack import Stack, local_stack
from sandbox.scenario import TEAM, Scenario, seed_crm, seed_mail
from shared import wiring
from shared.domain.models import ProposalStatus, email_id_for, proposal_id_for
from tests.support.admin_api import call

ADMIN, MEMBER = TEAM
SAM = "sam@startup.example"
COLD_PITCH = "<pitch.42@startup.example>"


@pytest.fixture
def synced_stack(tmp_path: Path) -> Iterator[tuple[Stack, Scenario]]:
    with local_stack(
        sqlite_path=tmp_path / "crm.sqlite3", bootstrap_admin=ADMIN, start_ticker=False
    ) as running:
        scenario = seed_crm(wiring.store())
        seed_mail(running.gmail, scenario)
        running.server.ticker.fire_now("sync_poll")
        assert wiring.local_queue().wait_idle(30)
        yield running, scenario


def finished_job(synced_stack: Stack, job_id: str) -> dict[str, Any]:
    """Wait for the local queue to deliver the job to rematch_job, then read its progress."""
    assert wiring.local_queue().wait_idle(30)
    progress = call(synced_stack, "GET", f"/jobs/{job_id}")
    assert progress.status_code == 200
    body: dict[str, Any] = progress.json()
    assert body["state"] == "done"
    return body


def linked_investors(email_key: str) -> list[str]:
    email = wiring.store().get_email(email_id_for(email_key))
    assert email is not None
    return email.investor_ids


def test_a_new_contact_links_old_mail_and_removing_its_address_unlinks_it(
    synced_stack: tuple[Stack, Scenario],
) -> None:
    running, _ = synced_stack
    assert linked_investors(COLD_PITCH) == []
    created = call(running, "POST", "/investors", json={"name": "Startup Angels"})
    assert created.status_code == 201  # no address yet: nothing to re-match
    investor = created.json()["record"]
    assert created.json()["job_id"] is None
    assert investor["name_key"] == "startup angels"

    contact = call(
        running,
        "POST",
        "/contacts",
        json={
            "name": "Sam Stranger",
            "investor_id": investor["id"],
            "emails": ["SAM@startup.example"],
        },
    )
    assert contact.status_code == 202
    body = contact.json()
    assert body["created"] is True
    assert body["record"]["emails"] == [SAM]
    progress = finished_job(running, body["job_id"])
    assert progress["addresses"] == [SAM]
    assert progress["requested_by"] == ADMIN
    assert (progress["done"], progress["linked"], progress["bodies_fetched"]) == (1, 1, 1)

    assert linked_investors(COLD_PITCH) == [investor["id"]]
    pitch = wiring.store().get_email(email_id_for(COLD_PITCH))
    assert pitch is not None
    assert "Would love 15 minutes." in pitch.body  # fetched from Gmail by the job
    proposal = wiring.store().get_proposal(proposal_id_for(pitch.id, investor["id"]))
    assert proposal is not None
    assert proposal.status is ProposalStatus.PROPOSED

    # A rename changes nothing matching sees: 200, no job.
    renamed = call(running, "PUT", f"/contacts/{body['record']['id']}", json={"name": "Sam S."})
    assert renamed.status_code == 200
    assert renamed.json()["record"]["emails"] == [SAM]  # fields left out are kept
    assert renamed.json()["job_id"] is None
    # The same again: nothing changed, nothing written.
    again = call(running, "PUT", f"/contacts/{body['record']['id']}", json={"name": "Sam S."})
    assert (again.status_code, again.json()["changed"]) == (200, False)

    removed = call(running, "PUT", f"/contacts/{body['record']['id']}", json={"emails": []})
    assert removed.status_code == 202
    unlinked = finished_job(running, removed.json()["job_id"])
    assert unlinked["unlinked"] == 1
    assert linked_investors(COLD_PITCH) == []
    withdrawn = wiring.store().get_proposal(proposal_id_for(pitch.id, investor["id"]))
    assert withdrawn is not None
    assert withdrawn.status is ProposalStatus.WITHDRAWN

    audit = wiring.store().list_audit(target=body["record"]["id"])
    assert [(a.action, a.actor) for a in audit] == [
        ("contact.update", ADMIN),
        ("contact.update", ADMIN),
        ("contact.create", ADMIN),
    ]
    assert audit[0].details["fields"] == ["emails"]
    assert audit[0].details["job_id"] == removed.json()["job_id"]


def test_soft_delete_unlinks_and_restore_relinks_graveyard_changes_nothing(
    synced_stack: tuple[Stack, Scenario],
) -> None:
    running, scenario = synced_stack
    intro, partner = (scenario.message_ids[k] for k in ("intro", "partner"))
    fund = scenario.investor.id
    assert linked_investors(intro) == [fund]
    assert linked_investors(partner) == [fund]  # by the organisation's domain

    graveyard = call(running, "POST", f"/investors/{fund}/graveyard", json={"graveyard": True})
    assert graveyard.status_code == 200
    assert graveyard.json()["record"]["graveyard"] is True
    assert graveyard.json()["job_id"] is None
    assert linked_investors(intro) == [fund]  # graveyard mail keeps its links
    assert wiring.store().list_audit(target=fund)[0].action == "investor.graveyard"

    deleted = call(running, "DELETE", f"/investors/{fund}")
    assert deleted.status_code == 202
    record = deleted.json()["record"]
    assert (record["deleted"], record["graveyard"]) == (True, True)
    assert record["deleted_at"]
    progress = finished_job(running, deleted.json()["job_id"])
    # Its contact's address and its organisation's domain went with it.
    assert "zoe@zeta.vc" in progress["addresses"]
    assert progress["domains"] == ["zeta.vc"]
    assert progress["unlinked"] == 2
    assert linked_investors(intro) == []
    assert linked_investors(partner) == []
    # Still readable, marked deleted; deleting again changes nothing.
    assert call(running, "GET", f"/investors/{fund}").json()["deleted"] is True
    again = call(running, "DELETE", f"/investors/{fund}")
    assert (again.status_code, again.json()["changed"], again.json()["job_id"]) == (
        200,
        False,
        None,
    )
    listed = call(running, "GET", "/investors").json()["items"]
    assert fund not in [i["id"] for i in listed]
    # A deleted investor cannot be given to a contact.
    refused = call(running, "POST", "/contacts", json={"name": "X", "investor_id": fund})
    assert refused.status_code == 400
    assert f"investor_id: the investor {fund} is deleted" in refused.json()["reason"]

    restored = call(running, "PUT", f"/investors/{fund}", json={"deleted": False})
    assert restored.status_code == 202
    assert restored.json()["record"]["deleted_at"] is None
    relinked = finished_job(running, restored.json()["job_id"])
    assert relinked["linked"] == 2
    assert linked_investors(intro) == [fund]
    assert linked_investors(partner) == [fund]
    actions = [a.action for a in wiring.store().list_audit(target=fund)]
    assert actions == ["investor.restore", "investor.delete", "investor.graveyard"]


def test_the_exclusion_list_is_read_and_written_and_rematches(
    synced_stack: tuple[Stack, Scenario],
) -> None:
    running, scenario = synced_stack
    intro = scenario.message_ids["intro"]
    assert call(running, "GET", "/exclusions").json() == {"addresses": [], "domains": []}

    changed = call(
        running,
        "PUT",
        "/exclusions",
        json={"addresses": ["Someone@Else.example"], "domains": ["@Zeta.vc"]},
    )
    assert changed.status_code == 202
    assert changed.json()["addresses"] == ["someone@else.example"]
    assert changed.json()["domains"] == ["zeta.vc"]
    progress = finished_job(running, changed.json()["job_id"])
    assert (progress["addresses"], progress["domains"]) == (["someone@else.example"], ["zeta.vc"])
    assert progress["unlinked"] == 2
    assert linked_investors(intro) == []
    assert wiring.store().get_setting("exclusions") == ["someone@else.example", "@zeta.vc"]
    assert call(running, "GET", "/exclusions").json() == {
        "addresses": ["someone@else.example"],
        "domains": ["zeta.vc"],
    }

    same = call(
        running,
        "PUT",
        "/exclusions",
        json={"addresses": ["someone@else.example"], "domains": ["zeta.vc"]},
    )
    assert (same.status_code, same.json()["job_id"]) == (200, None)

    cleared = call(running, "PUT", "/exclusions", json={})
    assert cleared.status_code == 202
    assert finished_job(running, cleared.json()["job_id"])["linked"] == 2
    assert linked_investors(intro) == [scenario.investor.id]
    (entry, _) = wiring.store().list_audit(target="exclusions")
    assert entry.details["removed"] == ["@zeta.vc", "someone@else.example"]

    bad = call(running, "PUT", "/exclusions", json={"domains": ["not a domain"]})
    assert bad.status_code == 400
    assert "domains.0" in bad.json()["reason"]


def test_bulk_json_is_all_or_nothing_and_queues_one_job(
    synced_stack: tuple[Stack, Scenario],
) -> None:
    running, _ = synced_stack
    orgs = call(
        running,
        "POST",
        "/organizations/bulk",
        json={
            "items": [
                {"id": "org-startup", "name": "Startup Inc", "domains": ["startup.example"]},
                {"name": "Nameless Ventures"},
            ]
        },
    )
    # No investor belongs to them yet: their domains link nothing, so no job.
    assert orgs.status_code == 200
    assert (orgs.json()["created"], orgs.json()["job_id"]) == (2, None)

    # Field rules first (every bad field named), then what needs the store.
    malformed = call(
        running,
        "POST",
        "/investors/bulk",
        json={
            "items": [
                {"id": "inv-a", "name": "A", "organization_id": "org-startup"},
                {"id": "inv-b", "name": "B", "emails": ["not-an-address"]},
                {"id": "inv-c", "name": "", "domains": ["bad domain"]},
            ]
        },
    )
    assert malformed.status_code == 400
    reason = malformed.json()["reason"]
    for field in ("items.1.emails.0", "items.2.name", "items.2.domains.0"):
        assert field in reason
    refused = call(
        running,
        "POST",
        "/investors/bulk",
        json={
            "items": [
                {"id": "inv-a", "name": "A", "organization_id": "org-startup"},
                {"id": "inv-c", "name": "C", "organization_id": "org-missing"},
                {"id": "inv-a", "name": "A again"},
                {"emails": ["x@y.example"]},
            ]
        },
    )
    assert refused.status_code == 400
    reason = refused.json()["reason"]
    assert "items.1.organization_id: no organization has the id org-missing" in reason
    assert "items.2.id: inv-a is given twice (also 0)" in reason
    assert "items.3.name: required for a new record" in reason
    assert call(running, "GET", "/investors/inv-a").status_code == 404  # nothing written

    accepted = call(
        running,
        "POST",
        "/investors/bulk",
        json={
            "items": [
                {"id": "inv-a", "name": "A", "organization_id": "org-startup"},
                {"id": "inv-b", "name": "B", "emails": ["b@b.example"]},
            ]
        },
    )
    assert accepted.status_code == 202
    assert [i["id"] for i in accepted.json()["items"]] == ["inv-a", "inv-b"]
    progress = finished_job(running, accepted.json()["job_id"])
    assert (progress["addresses"], progress["domains"]) == (["b@b.example"], ["startup.example"])
    assert linked_investors(COLD_PITCH) == ["inv-a"]  # Sam is at startup.example

    too_many = call(running, "POST", "/contacts/bulk", json={"items": [{}] * 501})
    assert too_many.status_code == 413  # the route's declared "split it", not a malformed body
    assert "items" in too_many.json()["reason"]


def test_csv_import_writes_good_rows_and_reports_bad_ones(
    synced_stack: tuple[Stack, Scenario],
) -> None:
    running, scenario = synced_stack
    angel = scenario.angel.id
    data = "\r\n".join(
        [
            "name,emails,investor_id,id",
            f"Sam Stranger,{SAM};sam@startup.example,{angel},",
            f"Bad Address,nope,{angel},",
            "Lost,lost@lp.example,inv-missing,",
            f"Jo Smith,j.smith@gmail.com;jo@angel.example,{angel},{scenario.angel_contact.id}",
            f"Twice,twice@lp.example,{angel},{scenario.angel_contact.id}",
            "",
        ]
    )
    response = call(
        running,
        "POST",
        "/contacts/import",
        data=data.encode(),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 202
    report = response.json()
    assert (report["rows"], report["created"], report["updated"], report["unchanged"]) == (
        5,
        1,
        1,
        0,
    )
    assert [(r["row"], r["outcome"]) for r in report["imported"]] == [
        (2, "created"),
        (5, "updated"),
    ]
    errors = {e["row"]: e["errors"] for e in report["errors"]}
    assert set(errors) == {3, 4, 6}
    assert errors[3][0].startswith("emails.0:")
    assert errors[4] == ["investor_id: no investor has the id inv-missing"]
    assert errors[6] == [f"id: {scenario.angel_contact.id} is given twice (also 5)"]

    sam_id = report["imported"][0]["id"]
    assert call(running, "GET", f"/contacts/{sam_id}").json()["emails"] == [SAM]
    contacts = call(running, "GET", f"/investors/{angel}/contacts").json()["items"]
    assert sorted(c["id"] for c in contacts) == sorted([sam_id, scenario.angel_contact.id])
    progress = finished_job(running, report["job_id"])
    assert progress["addresses"] == ["jo@angel.example", SAM]
    assert linked_investors(COLD_PITCH) == [angel]
    audit = wiring.store().list_audit(target=sam_id)
    assert (audit[0].action, audit[0].details["source"], audit[0].details["row"]) == (
        "contact.create",
        "csv",
        2,
    )

    header_only = call(
        running, "POST", "/investors/import", data=b"name,phone\r\nA,1\r\n",
        headers={"Content-Type": "text/csv"},
    )  # fmt: skip
    assert header_only.status_code == 400
    assert "unknown column(s): 'phone'" in header_only.json()["reason"]
    wrong_type = call(running, "POST", "/investors/import", json={"name": "A"})
    assert wrong_type.status_code == 415
    too_big = call(
        running,
        "POST",
        "/organizations/import",
        data=b"name\r\n" + b"x" * (2 * 1024 * 1024 + 1),
        headers={"Content-Type": "text/csv"},
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "too_large"


def test_organisations_update_their_investors_matching(
    synced_stack: tuple[Stack, Scenario],
) -> None:
    running, scenario = synced_stack
    org = scenario.organization.id
    partner = scenario.message_ids["partner"]
    assert linked_investors(partner) == [scenario.investor.id]
    dropped = call(running, "PUT", f"/organizations/{org}", json={"domains": []})
    assert dropped.status_code == 202
    progress = finished_job(running, dropped.json()["job_id"])
    assert progress["domains"] == ["zeta.vc"]
    assert linked_investors(partner) == []  # Kim matched only by the domain
    assert linked_investors(scenario.message_ids["intro"]) == [scenario.investor.id]  # Zoe

    # PUT on an unknown id creates; POST with a taken id is a conflict.
    made = call(running, "PUT", "/organizations/org-new", json={"name": "New"})
    assert (made.status_code, made.json()["created"]) == (201, True)
    taken = call(running, "POST", "/organizations", json={"id": "org-new", "name": "Again"})
    assert taken.status_code == 409


def test_bad_requests_unknown_records_and_members(synced_stack: tuple[Stack, Scenario]) -> None:
    running, scenario = synced_stack
    bad_email = call(running, "PUT", "/investors/inv-x", json={"name": "X", "emails": ["nope"]})
    assert bad_email.status_code == 400
    assert "emails.0" in bad_email.json()["reason"]
    unknown_field = call(running, "POST", "/investors", json={"name": "X", "phone": "1"})
    assert unknown_field.status_code == 400
    assert "phone" in unknown_field.json()["reason"]
    no_name = call(running, "PUT", "/investors/inv-x", json={"emails": ["x@x.example"]})
    assert no_name.status_code == 400
    assert "name: required" in no_name.json()["reason"]
    other_id = call(running, "PUT", "/investors/inv-x", json={"id": "inv-y", "name": "X"})
    assert other_id.status_code == 400
    bad_id = call(running, "PUT", "/investors/a%20b", json={"name": "X"})
    assert bad_id.status_code == 400
    assert "id: not a valid id" in bad_id.json()["reason"]
    bad_ref = call(running, "POST", "/investors", json={"name": "X", "organization_id": "nope"})
    assert bad_ref.status_code == 400
    assert "organization_id: no organization has the id nope" in bad_ref.json()["reason"]
    bad_page = call(running, "GET", "/investors", params={"page_token": "!!"})
    assert bad_page.status_code == 400

    for method, path in [
        ("GET", "/investors/nope"),
        ("GET", "/organizations/nope"),
        ("GET", "/contacts/nope"),
        ("DELETE", "/contacts/nope"),
        ("POST", "/investors/nope/graveyard"),
        ("GET", "/investors/nope/contacts"),
        ("GET", "/jobs/nope"),
        ("GET", "/jobs/" + "0" * 32),
    ]:
        body = {"graveyard": True} if path.endswith("graveyard") else None
        response = call(running, method, path, json=body)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"] == "not_found"

    for method, path in [
        ("GET", "/investors"),
        ("GET", f"/investors/{scenario.investor.id}"),
        ("PUT", "/exclusions"),
        ("GET", "/exclusions"),
        ("DELETE", f"/contacts/{scenario.contact.id}"),
    ]:
        response = call(running, method, path, who=MEMBER, json={})
        assert response.status_code == 403, (method, path)
    assert wiring.store().get_contact(scenario.contact.id).deleted is False  # type: ignore[union-attr]


def test_investors_are_listed_by_name_a_page_at_a_time(
    synced_stack: tuple[Stack, Scenario],
) -> None:
    running, scenario = synced_stack
    call(running, "POST", "/investors", json={"id": "inv-aa", "name": "aardvark capital"})
    call(running, "POST", "/investors", json={"id": "inv-gy", "name": "Gone Ventures"})
    call(running, "POST", "/investors/inv-gy/graveyard", json={"graveyard": True})
    names, token, pages = [], "", 0
    while True:
        params = {"limit": 2, **({"page_token": token} if token else {})}
        page = call(running, "GET", "/investors", params=params).json()
        names += [i["name"] for i in page["items"]]
        pages += 1
        token = page["next_page_token"]
        if not token:
            break
    assert names == ["aardvark capital", "Gone Ventures", "Jo Smith (angel)", "Zeta Capital Fund I"]
    assert pages == 2
    live = call(running, "GET", "/investors", params={"include_graveyard": "false"}).json()
    assert [i["id"] for i in live["items"]] == ["inv-aa", scenario.angel.id, scenario.investor.id]
