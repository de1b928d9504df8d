"""A member in a real Chromium: Home lists only their own mailboxes, Communications searches
only the mail their mailboxes hold (``GET /me/activity``), and an email's detail shows only
their own mailboxes. And someone the fund does not admit is told why, and how to try again."""

from __future__ import annotations

import re

import pytest

from embedded.stack import Stack
from sandbox.scenario import TEAM, Scenario
from shared import wiring
from shared.domain.models import Role, User
from tests.support.browser import HOSTILE_SUBJECT, ConsolePage

ADMIN, MEMBER = TEAM


def test_a_member_sees_only_their_own_mailboxes_mail(console: ConsolePage) -> None:
    console.open()
    console.sign_in(MEMBER)
    page = console.page
    mine = page.get_by_test_id("my-mailboxes")
    mine.get_by_role("cell", name=MEMBER).wait_for()
    assert ADMIN not in mine.inner_text()
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Communications").click()
    results = page.get_by_test_id("activity-results")
    results.get_by_role("link", name="Diligence questions").wait_for()
    results.get_by_role("link", name="Intro: Zeta Capital x Fund").wait_for()
    # Mail only the admin's mailbox holds is not there, even when searched for.
    assert results.get_by_role("link", name="Re: follow-on round").count() == 0
    page.get_by_label("Search").fill("Fund update")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=activity-results]')"
        ".dataset.renderedQuery === 'Fund update'"
    )
    assert results.get_by_role("link", name=HOSTILE_SUBJECT).count() == 0
    assert page.get_by_label("Investor").count() == 0  # the picker is admins'
    page.get_by_label("Search").fill("Intro")
    results.get_by_role("link", name="Intro: Zeta Capital x Fund").click()
    page.wait_for_url(re.compile(r"#/emails/"))
    sightings = page.get_by_test_id("sightings")
    sightings.wait_for()
    assert MEMBER in sightings.inner_text()
    assert ADMIN not in sightings.inner_text()
    # No corrections for members.
    assert page.get_by_role("heading", name="Not investor mail").count() == 0


@pytest.mark.parametrize(
    ("email", "said"),
    [
        ("zed@fund.example", "not a user of the fund's console"),
        ("carl@fund.example", "has been deactivated"),
    ],
)
def test_a_refused_sign_in_says_why_and_how_to_sign_in_again(
    console: ConsolePage, console_stack: tuple[Stack, Scenario], email: str, said: str
) -> None:
    store = wiring.store()
    if email.startswith("carl") and store.get_user_by_email(email) is None:
        carl = User.new(email, "Carl Gone", Role.MEMBER)
        store.add_user(carl.model_copy(update={"is_active": False}))
    console.open()
    page = console.page
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_label("Another address").fill(email)
    page.get_by_role("button", name="Sign in", exact=True).click()
    alert = page.get_by_role("alert").filter(has_text=said)
    alert.wait_for()
    assert "sign in again" in alert.inner_text()
    assert page.get_by_role("button", name="Sign out").count() == 0
