"""The console's record pages in a real Chromium: organisations, contacts, investors (list and
one investor's page) and the audit trail, with the CSP enforced and the hostile message in
every list (the ``console`` fixture fails a test on any dialog or foreign request).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embedded.stack import Stack
from sandbox.scenario import TEAM, Scenario
from shared import wiring
from shared.services import relationships
from tests.support.browser import HOSTILE_SUBJECT, ConsolePage

ADMIN = TEAM[0]


def _download(page: Any, button: str) -> str:
    with page.expect_download() as info:
        page.get_by_role("button", name=button).click()
    return Path(info.value.path()).read_text()


def test_organisations_are_searched_created_edited_and_exported(console: ConsolePage) -> None:
    console.open("organizations")
    console.sign_in(ADMIN)
    page = console.page
    table = page.get_by_test_id("organizations")
    table.get_by_role("cell", name="Zeta Capital", exact=True).wait_for()
    # Search by domain: only the owner of that domain stays.
    page.get_by_label("Domain").fill("nowhere.example")
    table.get_by_text("No organisation matches.").wait_for()
    page.get_by_label("Domain").fill("")
    page.get_by_role("button", name="New organisation").click()
    page.get_by_label("Name", exact=True).fill("Kappa Ventures")
    page.get_by_label("Domains (one per line)").fill("kappa.example")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Kappa Ventures saved.").wait_for()
    page.get_by_label("Name starts with").fill("kap")
    row = table.get_by_role("row").filter(has_text="Kappa Ventures")
    table.get_by_role("cell", name="Zeta Capital", exact=True).wait_for(state="detached")
    assert row.count() == 1
    # Edit, then delete: gone from the list unless deleted ones are shown.
    row.get_by_role("button", name="Edit Kappa Ventures").click()
    page.get_by_label("Domains (one per line)").fill("kappa.example\nkappa.vc")
    page.get_by_role("button", name="Save").click()
    table.get_by_text("kappa.example, kappa.vc").wait_for()
    csv = _download(page, "Export organisations (CSV)")
    assert "Kappa Ventures,kappa.example;kappa.vc" in csv
    assert re.search(r"# rows=\d+", csv)
    row.get_by_role("button", name="Delete Kappa Ventures").click()
    table.get_by_text("No organisation matches.").wait_for()
    page.get_by_label("Show deleted").check()
    table.get_by_text("Kappa Ventures (deleted)").wait_for()


def test_contacts_are_searched_by_address_and_domain_and_created(console: ConsolePage) -> None:
    console.open("contacts")
    console.sign_in(ADMIN)
    page = console.page
    table = page.get_by_test_id("contacts")
    table.get_by_role("cell", name="Zoe Zeta", exact=True).wait_for()
    page.get_by_label("Address", exact=True).fill("j.smith@gmail.com")
    table.get_by_role("cell", name="Zoe Zeta", exact=True).wait_for(state="detached")
    assert table.get_by_role("cell", name="Jo Smith", exact=True).count() == 1
    page.get_by_label("Search by").select_option("domain")
    page.get_by_label("Domain", exact=True).fill("zeta.vc")
    table.get_by_role("cell", name="Jo Smith", exact=True).wait_for(state="detached")
    assert table.get_by_role("cell", name="Zoe Zeta", exact=True).count() == 1
    page.get_by_role("button", name="New contact").click()
    page.get_by_label("Name", exact=True).fill("Zack Zeta")
    page.get_by_label("Addresses (one per line)").fill("zack@zeta.vc")
    page.get_by_label("Investor", exact=True).select_option(label="Zeta Capital Fund I")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Zack Zeta saved.").wait_for()
    row = table.get_by_role("row").filter(has_text="Zack Zeta")
    row.get_by_role("link", name="Zeta Capital Fund I").wait_for()
    csv = _download(page, "Export contacts (CSV)")
    assert "zack@zeta.vc" in csv


def test_investors_sort_search_and_open_the_investor_page(console: ConsolePage) -> None:
    console.open("investors")
    console.sign_in(ADMIN)
    page = console.page
    table = page.get_by_test_id("investors")
    table.get_by_role("link", name="Jo Smith (angel)").wait_for()
    page.get_by_label("Name starts with").fill("zet")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=investors]').innerText.includes('Jo Smith')"
    )
    assert table.get_by_role("link", name="Zeta Capital Fund I").count() == 1
    # Last contact first: Zeta (mailed) comes before the angel (no mail in the scenario's
    # newest), and the name search is off in that order.
    page.get_by_label("Sort by").select_option("last_contact")
    assert page.get_by_label("Name starts with").is_disabled()
    table.get_by_role("link", name="Jo Smith (angel)").wait_for()
    names = table.get_by_role("link").all_inner_texts()
    assert names.index("Zeta Capital Fund I") < names.index("Jo Smith (angel)")
    csv = _download(page, "Export investors (CSV)")
    assert "inv-zeta-fund-1,Zeta Capital Fund I" in csv
    # The investor page: record, contacts, timeline with the hostile mail as text.
    table.get_by_role("link", name="Zeta Capital Fund I").click()
    page.wait_for_url(re.compile(r"#/investors/inv-zeta-fund-1$"))
    page.get_by_role("heading", name="Zeta Capital Fund I").wait_for()
    page.get_by_test_id("investor-contacts").get_by_text("Zoe Zeta").wait_for()
    timeline = page.get_by_test_id("timeline")
    timeline.get_by_role("link", name=HOSTILE_SUBJECT).wait_for()
    assert timeline.locator("script, img, iframe").count() == 0
    dates = timeline.locator("tbody tr td:first-child").all_inner_texts()
    assert len(dates) >= 2
    # Back returns to the list, listed again.
    page.go_back()
    page.get_by_role("heading", name="Investors").wait_for()
    page.get_by_test_id("investors").get_by_role("link", name="Zeta Capital Fund I").wait_for()


def test_the_audit_trail_is_filtered(console: ConsolePage) -> None:
    console.open("investors")
    console.sign_in(ADMIN)
    page = console.page
    _download(page, "Export investors (CSV)")  # an audited action to find
    console.go("audit")
    page.get_by_role("heading", name="Audit").wait_for()
    table = page.get_by_test_id("audit")
    page.get_by_label("Filter by").select_option("action")
    page.get_by_label("Value").fill("export")
    page.wait_for_url(re.compile(r"term=export"))
    table.get_by_role("cell", name="investors", exact=True).first.wait_for()
    kinds = set(table.locator("tbody tr td:nth-child(3)").all_inner_texts())
    assert kinds == {"export"}
    page.get_by_label("Filter by").select_option("actor")
    page.get_by_label("Value").fill(ADMIN)
    page.wait_for_url(re.compile(r"by=actor"))
    page.wait_for_url(re.compile(r"term=ada(%40|@)fund\.example"))
    # Read the rows in the same tick they are seen: the table re-renders once the new filter's
    # answer lands, and reading between a wait and a read could see it empty.
    cells = page.wait_for_function(
        """() => {
            const cells = [...document.querySelectorAll(
                '[data-testid=audit] tbody tr td:nth-child(2)')].map((c) => c.innerText);
            return cells.length > 0 ? cells : null;
        }"""
    ).json_value()
    actors = set(cells)
    assert actors == {ADMIN}
    # A range that ended before anything happened shows nothing.
    page.get_by_label("To (UTC day, included)").fill("2000-01-01")
    page.get_by_text("0 entries").wait_for()


def test_proposals_show_their_evidence_as_text(console: ConsolePage) -> None:
    console.open("proposals")
    console.sign_in(ADMIN)
    page = console.page
    table = page.get_by_test_id("proposals")
    evidence = table.get_by_test_id("evidence").filter(has_text="Matched ")
    evidence.first.wait_for()
    text = table.inner_text()
    assert re.search(
        r"Matched \S+@zeta\.vc \((from|to|cc)\) by (a contact's address|the domain)", text
    )
    assert "in ada@fund.example" in text or "in ben@fund.example" in text
    assert table.locator("script, img, iframe").count() == 0


def test_relationships_show_on_the_investor_page_the_ranking_and_home(
    console: ConsolePage, console_stack: tuple[Stack, Scenario]
) -> None:
    relationships.rescore_all(wiring.store(), now=datetime.now(UTC))  # the daily re-score
    console.open("investors/inv-zeta-fund-1")
    console.sign_in(ADMIN)
    page = console.page
    relationship = page.get_by_test_id("relationship")
    relationship.wait_for()
    strength = int(page.get_by_test_id("strength").inner_text())
    assert 0 <= strength <= 100
    assert "points for recency" in page.get_by_test_id("strength-why").inner_text()
    # Zoe's own figures beside her name (GET /contacts/{id}/relationship).
    zoe = page.get_by_test_id("investor-contacts").get_by_role("listitem").filter(has_text="Zoe")
    zoe.get_by_test_id("contact-figures").wait_for()
    assert re.search(r"strength \d+, last contact", zoe.inner_text())
    who = page.get_by_test_id("who-knows")
    assert "Ada" in who.inner_text() or ADMIN in who.inner_text()
    console.go("investors")
    page.get_by_label("Sort by").select_option("strength")
    ranked = page.get_by_test_id("ranked")
    ranked.get_by_role("link", name="Zeta Capital Fund I").wait_for()
    console.go("")
    page.get_by_role("heading", name="Going cold").wait_for()
    page.locator("[data-testid=going-cold], [data-testid=going-cold-none]").filter(
        has_not_text="…"
    ).first.wait_for()
