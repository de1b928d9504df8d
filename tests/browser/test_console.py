"""The console's flows in a real Chromium, one per page, with the CSP enforced throughout.

Every test's ``console`` fixture watches for dialogs and requests to foreign origins and fails
the test if any happened: the hostile message (tests/browser/conftest.py) is in every list.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from embedded.stack import Stack
from sandbox.scenario import TEAM, Scenario
from shared import wiring
from shared.services import digest_schedule
from tests.support.browser import CONSOLE_PATH, HOSTILE_SUBJECT, ConsolePage

ADMIN, MEMBER = TEAM
CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def expect_text(page: Any, text: str | re.Pattern[str], timeout: float = 10_000) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout)


def test_static_files_need_no_token_and_carry_the_headers(
    console_stack: tuple[Stack, Scenario],
) -> None:
    stack, _ = console_stack
    index = requests.get(stack.base_url + CONSOLE_PATH, timeout=10)
    assert index.status_code == 200
    assert index.headers["Content-Security-Policy"] == CSP
    assert index.headers["X-Content-Type-Options"] == "nosniff"
    assert index.headers["Referrer-Policy"] == "no-referrer"
    assert index.headers["Cache-Control"] == "no-store"
    assert "<script>" not in index.text.replace('<script type="module"', "")  # no inline script
    asset = re.search(r'src="\./(assets/[^"]+\.js)"', index.text)
    assert asset is not None
    served = requests.get(stack.base_url + CONSOLE_PATH + asset.group(1), timeout=10)
    assert served.status_code == 200
    assert "immutable" in served.headers["Cache-Control"]
    assert served.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    config = requests.get(stack.base_url + CONSOLE_PATH + "config.json", timeout=10).json()
    assert config["mode"] == "sandbox"
    assert config["google_client_id"] == ""
    # Nothing outside the built folder, and the API still wants its token.
    assert (
        requests.get(stack.base_url + CONSOLE_PATH + "..%2f..%2fmain.py", timeout=10).status_code
        == 404
    )
    assert requests.get(stack.base_url + "/admin_api/me", timeout=10).status_code == 401
    # The machine's front door is the console.
    front = requests.get(stack.base_url + "/", allow_redirects=False, timeout=10)
    assert front.headers["Location"] == CONSOLE_PATH


def test_sign_in_lands_on_home_with_the_open_proposals(console: ConsolePage) -> None:
    console.open()
    console.sign_in(ADMIN)
    page = console.page
    page.get_by_role("heading", name="Home").wait_for()
    count = page.get_by_test_id("open-proposals")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=open-proposals]').textContent.includes('…')"
    )
    assert int(count.text_content().rstrip("+")) >= 1
    expect_text(page, re.compile(r"Times are in the fund's time zone, UTC"))


def test_communications_searches_and_renders_hostile_mail_as_text(console: ConsolePage) -> None:
    console.open("communications")
    console.sign_in(ADMIN)
    page = console.page
    page.get_by_role("heading", name="Communications").wait_for()
    results = page.get_by_test_id("activity-results")
    page.get_by_label("Search").fill("Fund update")
    link = results.get_by_role("link", name=HOSTILE_SUBJECT)
    link.wait_for()
    # Rendered as text: the markup shows as characters and made no element.
    assert results.locator("script, img, iframe").count() == 0
    assert "<script>" in results.inner_text()
    # The filters are in the URL: Back and a reload (after signing in again) restore them.
    page.wait_for_function("() => location.hash.includes('q=Fund+update')")
    page.get_by_label("Investor").select_option(label="Zeta Capital Fund I")
    page.wait_for_url(re.compile("investor=inv-zeta-fund-1"))
    page.get_by_label("Search").fill("")
    expect_text(results, "Intro: Zeta Capital x Fund")


def test_a_proposal_is_approved_from_the_queue(console: ConsolePage) -> None:
    console.open("proposals")
    console.sign_in(ADMIN)
    page = console.page
    table = page.get_by_test_id("proposals")
    table.get_by_role("button", name="Approve").first.wait_for()
    before = table.get_by_role("button", name="Approve").count()
    table.get_by_role("button", name="Approve").first.click()
    page.get_by_role("status").filter(has_text="Approved").wait_for()
    assert table.get_by_role("button", name="Approve").count() == before - 1


def test_csv_import_reports_the_bad_row(console: ConsolePage, tmp_path: Any) -> None:
    csv = tmp_path / "investors.csv"
    csv.write_text(
        "name,emails,domains\nOmega Partners,ops@omega.example,omega.example\n,nobody,\n"
    )
    console.open("investors")
    console.sign_in(ADMIN)
    page = console.page
    page.get_by_label("File").set_input_files(str(csv))
    page.get_by_role("button", name="Import").click()
    summary = page.get_by_test_id("import-summary")
    summary.wait_for()
    assert "1 created" in summary.inner_text()
    assert "1 refused" in summary.inner_text()
    errors = page.get_by_test_id("import-errors")
    assert errors.get_by_role("cell", name="3", exact=True).count() == 1
    expect_text(page.get_by_test_id("investors"), "Omega Partners")


def test_a_mailbox_is_paused_and_resumed(console: ConsolePage) -> None:
    console.open("mailboxes")
    console.sign_in(ADMIN)
    page = console.page
    row = page.locator(f'tr[data-mailbox="{MEMBER}"]')
    row.get_by_role("button", name="Pause").click()
    row.get_by_role("button", name="Resume").wait_for()
    assert "paused" in row.inner_text()
    row.get_by_role("button", name="Resume").click()
    row.get_by_role("button", name="Pause").wait_for()


def test_digest_policy_changes_and_a_test_digest_is_sent(
    console: ConsolePage, console_stack: tuple[Stack, Scenario]
) -> None:
    stack, _ = console_stack
    console.open("settings")
    console.sign_in(ADMIN)
    page = console.page
    page.get_by_label("Send the daily digest to the admins").check()
    page.get_by_label(re.compile(r"Send at \(UTC\)")).select_option(label="07:00")
    page.get_by_role("button", name="Save digest settings").click()
    page.get_by_role("status").filter(has_text="sent at 07:00").wait_for()
    policy = digest_schedule.load_policy(wiring.store())
    assert (policy.enabled, policy.send_hour) == (True, 7)
    stack.gmail.allow_send_to([ADMIN])  # the session's send guard: admins only
    sends = len(stack.gmail.sends)
    page.get_by_label("Test recipients").fill(ADMIN)
    page.get_by_role("button", name="Send Test Digest Email").click()
    page.get_by_role("status").filter(has_text="Test digest sent").wait_for()
    assert len(stack.gmail.sends) == sends + 1
    assert list(stack.gmail.sends[-1].recipients) == [ADMIN]


def test_a_member_is_refused_admin_pages(console: ConsolePage) -> None:
    console.open()
    console.sign_in(MEMBER)
    page = console.page
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Proposals").count() == 0
    console.go("users")
    expect_text(page, "This page is for the fund's admins.")


def test_an_expiring_token_asks_to_sign_in_again_and_keeps_the_page(console: ConsolePage) -> None:
    page = console.page
    page.clock.install()
    console.open("communications")
    console.sign_in(ADMIN, lifetime_s=60)
    page.get_by_label("Search").fill("Diligence")
    page.clock.fast_forward("00:45")
    dialog = page.get_by_role("dialog", name="Sign in again")
    dialog.wait_for()
    expect_text(dialog, "Your sign-in expired.")
    dialog.get_by_role("button", name="Ada Admin").click()
    dialog.wait_for(state="detached")
    assert page.get_by_label("Search").input_value() == "Diligence"


def test_the_csp_is_enforced_in_the_page(console: ConsolePage) -> None:
    console.open()
    page = console.page
    page.get_by_role("heading", name="Sign in").wait_for()
    blocked = page.evaluate(
        """() => new Promise(resolve => {
            document.addEventListener('securitypolicyviolation', e => resolve(e.violatedDirective));
            const s = document.createElement('script');
            s.textContent = 'window.__ran = true';
            document.body.append(s);
            setTimeout(() => resolve(window.__ran ? 'ran' : 'timeout'), 2000);
        })"""
    )
    assert blocked.startswith("script-src")


def test_every_action_works_from_the_keyboard(console: ConsolePage) -> None:
    console.open()
    page = console.page
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_role("button", name="Ada Admin").focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Sign out").wait_for()
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Mailboxes").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Mailboxes").wait_for()
    row = page.locator(f'tr[data-mailbox="{MEMBER}"]')
    row.get_by_role("button", name="Offboard…").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")


@pytest.mark.parametrize(
    "route",
    [
        "",
        "communications",
        "proposals",
        "investors",
        "mailboxes",
        "users",
        "settings",
        "organizations",
        "contacts",
        "investors/inv-zeta-fund-1",
        "audit",
    ],
    ids=lambda route: route.replace("/", "-") or "home",
)
def test_no_serious_accessibility_violation(
    console: ConsolePage, chromium: Any, route: str
) -> None:
    violations = console.axe_serious(chromium, route, ADMIN)
    assert violations == [], [(v["id"], v["help"]) for v in violations]
