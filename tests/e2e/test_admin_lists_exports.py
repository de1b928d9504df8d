"""The admin lists, the investor timeline, the audit trail and the CSV exports over HTTP, with
real tokens, on the local stack after a real capture from the Gmail sandbox."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from embedded.stack import Stack, local_stack
from sandbox.scenario import TEAM, Scenario, seed_crm, seed_mail
from shared import wiring
from shared.domain.crm_csv import FORMULA_TRIGGERS, MAX_CSV_ROWS
from shared.domain.models import Contact, Investor, Organization, ProposalStatus
from tests.support.admin_api import call

ADMIN, MEMBER = TEAM
# Names a spreadsheet would run as formulas, and ones that only look escaped. (A name cannot
# start with a tab or CR: inputs are stripped; tests/unit/test_csv_export.py covers those.)
HOSTILE = [
    '=HYPERLINK("http://evil.example","x")',
    "+1+2",
    "-2",
    "@SUM(A1)",
    "=\tTab inside",
    "'quoted",
    "''=twice",
    'Plain, with "quotes" and, commas',
    "Ünïcode ß",
]


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


def rows_of(text: str) -> tuple[list[list[str]], str]:
    """The CSV records before the trailer, and the trailer line."""
    body, _, last = text.rstrip("\r\n").rpartition("\r\n")
    return list(csv.reader(io.StringIO(body, newline=""))), last


def export(stack: Stack, kind: str, **params: Any) -> Any:
    response = call(stack, "GET", f"/exports/{kind}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    return response


class TestLists:
    def test_search_and_page_the_records(self, synced_stack: tuple[Stack, Scenario]) -> None:
        running, scenario = synced_stack
        orgs = call(running, "GET", "/organizations", params={"name_prefix": "zeta"}).json()
        assert [o["id"] for o in orgs["items"]] == [scenario.organization.id]
        by_domain = call(running, "GET", "/contacts", params={"domain": "zeta.vc"}).json()
        assert [c["id"] for c in by_domain["items"]] == [scenario.contact.id]
        by_address = call(
            running, "GET", "/contacts", params={"address": "J.Smith+lp@gmail.com"}
        ).json()
        assert [c["id"] for c in by_address["items"]] == [scenario.angel_contact.id]
        both = call(running, "GET", "/contacts", params={"address": "a@b.example", "domain": "b.x"})
        assert both.status_code == 400

        names, token = [], ""
        while True:
            params = {"limit": 1, **({"page_token": token} if token else {})}
            page = call(running, "GET", "/investors", params=params).json()
            names += [i["name"] for i in page["items"]]
            token = page["next_page_token"]
            if not token:
                break
        assert names == ["Jo Smith (angel)", "Zeta Capital Fund I"]
        refused = call(
            running, "GET", "/investors", params={"sort": "last_contact", "name_prefix": "z"}
        )
        assert refused.status_code == 400

    def test_investors_by_last_contact_after_a_refresh(
        self, synced_stack: tuple[Stack, Scenario]
    ) -> None:
        running, scenario = synced_stack
        store = wiring.store()
        store.upsert_investor(Investor(id="inv-quiet", name="Aaa Quiet"))
        assert store.refresh_listing_keys() >= 1
        page = call(running, "GET", "/investors", params={"sort": "last_contact"}).json()
        ids = [i["id"] for i in page["items"]]
        assert ids[-1] == "inv-quiet"  # never contacted: last
        assert set(ids[:-1]) == {scenario.investor.id, scenario.angel.id}

    def test_approved_activities_and_the_timeline(
        self, synced_stack: tuple[Stack, Scenario]
    ) -> None:
        running, scenario = synced_stack
        proposals = call(
            running, "GET", "/proposals", params={"investor_id": scenario.investor.id}
        ).json()["items"]
        assert proposals
        approved = call(running, "POST", f"/proposals/{proposals[0]['id']}/approve")
        assert approved.status_code == 200
        activity = approved.json()["activity"]

        listed = call(
            running, "GET", "/activities", params={"investor_id": scenario.investor.id}
        ).json()
        assert [a["id"] for a in listed["items"]] == [activity["id"]]
        assert listed["items"][0]["account_id"] == proposals[0]["account_id"]
        other = call(running, "GET", "/activities", params={"investor_id": scenario.angel.id})
        assert other.json()["items"] == []

        items: list[dict[str, Any]] = []
        token = ""
        while True:
            params = {"limit": 2, **({"page_token": token} if token else {})}
            page = call(
                running, "GET", f"/investors/{scenario.investor.id}/timeline", params=params
            ).json()
            items += page["items"]
            token = page["next_page_token"]
            if not page["has_more"]:
                break
        kinds = [i["kind"] for i in items]
        assert kinds.count("activity") == 1 and kinds.count("email") >= 1
        dates = [i["date"] for i in items]
        assert dates == sorted(dates, reverse=True)
        emails = [i["email"]["id"] for i in items if i["kind"] == "email"]
        assert len(emails) == len(set(emails))
        assert call(running, "GET", "/investors/nope/timeline").status_code == 404


class TestAuditAndRoles:
    def test_members_are_refused_and_exports_are_audited(
        self, synced_stack: tuple[Stack, Scenario]
    ) -> None:
        running, _ = synced_stack
        for path in ("/audit", "/exports/contacts", "/activities", "/organizations"):
            assert call(running, "GET", path, who=MEMBER).status_code == 403, path
        export(running, "contacts")
        audit = call(running, "GET", "/audit", params={"action": "export"}).json()["items"]
        assert [(e["actor"], e["target"]) for e in audit] == [(ADMIN, "contacts")]
        by_actor = call(running, "GET", "/audit", params={"actor": ADMIN}).json()["items"]
        assert audit[0]["id"] in [e["id"] for e in by_actor]
        assert (
            call(running, "GET", "/audit", params={"actor": "a", "target": "b"}).status_code == 400
        )


class TestExports:
    def test_a_round_trip_is_lossless_and_spreadsheet_safe(
        self, synced_stack: tuple[Stack, Scenario]
    ) -> None:
        running, scenario = synced_stack
        store = wiring.store()
        originals: dict[str, list[Any]] = {"organizations": [], "investors": [], "contacts": []}
        for n, name in enumerate(HOSTILE):
            org = Organization(id=f"org-h{n}", name=name, domains=[f"h{n}.example"])
            investor = Investor(
                id=f"inv-h{n}",
                name=name,
                organization_id=org.id,
                emails=[f"-lp{n}@h{n}.example"],
                graveyard=n % 2 == 0,
            )
            contact = Contact(
                id=f"con-h{n}", name=name, investor_id=investor.id, emails=[f"+c{n}@h{n}.example"]
            )
            store.upsert_organization(org)
            store.upsert_investor(investor)
            store.upsert_contact(contact)
            originals["organizations"].append(org)
            originals["investors"].append(investor)
            originals["contacts"].append(contact)

        for kind, records in originals.items():
            text = export(running, kind).text
            rows, last = rows_of(text)
            assert last == f"# rows={len(rows) - 1}"
            # Spreadsheet-safe: no cell starts a formula unless behind the escaping quote.
            for row in rows:
                for cell in row:
                    assert cell[:1] not in FORMULA_TRIGGERS - {"'"}, (kind, cell)
                    if cell.startswith("'"):
                        assert cell[1:2] in FORMULA_TRIGGERS, (kind, cell)
            # Scramble the stored records, then import the export over them.
            get = getattr(store, f"get_{kind[:-1]}")
            upsert = getattr(store, f"upsert_{kind[:-1]}")
            for record in records:
                upsert(record.model_copy(update={"name": "scrambled"}))
            imported = call(
                running,
                "POST",
                f"/{kind}/import",
                data=text.encode("utf-8"),
                headers={"Content-Type": "text/csv"},
            )
            assert imported.status_code in (200, 202), imported.text
            assert imported.json()["errors"] == []
            for record in records:
                back = get(record.id)
                assert back is not None
                fields = (
                    "name",
                    "domains",
                    "emails",
                    "organization_id",
                    "investor_id",
                    "graveyard",
                )
                for field in fields:
                    if hasattr(record, field):
                        assert getattr(back, field) == getattr(record, field), (kind, field)
        assert scenario.investor.id  # the scenario's own records were exported too

    def test_a_cut_short_export_is_refused_by_the_import(
        self, synced_stack: tuple[Stack, Scenario]
    ) -> None:
        running, _ = synced_stack
        text = export(running, "contacts").text
        rows, last = rows_of(text)
        assert len(rows) >= 3
        cut = "\r\n".join(text.split("\r\n")[:-3]) + "\r\n" + last + "\r\n"  # a row lost
        refused = call(
            running,
            "POST",
            "/contacts/import",
            data=cut.encode("utf-8"),
            headers={"Content-Type": "text/csv"},
        )
        assert refused.status_code == 400
        assert "cut short" in refused.json()["reason"]

    def test_chunks_follow_the_cursor_and_cover_every_row_once(
        self, synced_stack: tuple[Stack, Scenario]
    ) -> None:
        running, _ = synced_stack
        store = wiring.store()
        for n in range(7):
            store.upsert_contact(Contact(id=f"con-c{n}", name=f"Chunk {n}"))
        whole, _ = rows_of(export(running, "contacts").text)
        seen: list[list[str]] = []
        cursor = ""
        chunks = 0
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            rows, last = rows_of(export(running, "contacts", **params).text)
            assert rows[0] == whole[0]  # every chunk has the header: it imports on its own
            count, _, rest = last.removeprefix("# rows=").partition(" next_cursor=")
            assert int(count) == len(rows) - 1 <= 3
            seen += rows[1:]
            chunks += 1
            cursor = rest
            if not cursor:
                break
        assert seen == whole[1:]
        assert chunks == -(-(len(whole) - 1) // 3)
        assert call(running, "GET", "/exports/contacts", params={"cursor": "!!"}).status_code == 400
        assert MAX_CSV_ROWS == 2000  # the default chunk is the import's cap

    def test_activities_export_by_investor(self, synced_stack: tuple[Stack, Scenario]) -> None:
        running, scenario = synced_stack
        store = wiring.store()
        for proposal in store.list_proposals(limit=50).items:
            store.decide_proposal(proposal.id, ProposalStatus.APPROVED, ADMIN)
        rows, last = rows_of(export(running, "activities", investor_id=scenario.investor.id).text)
        assert rows[0][:3] == ["id", "occurred_at", "investor_id"]
        assert {row[2] for row in rows[1:]} == {scenario.investor.id}
        assert last == f"# rows={len(rows) - 1}"
        refused = call(running, "GET", "/exports/contacts", params={"investor_id": "x"})
        assert refused.status_code == 400
