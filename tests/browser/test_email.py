"""The email detail page in a real Chromium: headers, participants and why they matched,
mailboxes, thread and body as text; a reply-all draft found in the Gmail sandbox with the right
recipients; "not investor mail" and its undo. The hostile message renders inert (the
``console`` fixture fails a test on any dialog or foreign request).
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.utils import getaddresses
from typing import Any

from embedded.stack import Stack
from sandbox.scenario import TEAM, Scenario
from tests.support.browser import HOSTILE_SUBJECT, ConsolePage

ADMIN, MEMBER = TEAM


def _open_from_communications(console: ConsolePage, search: str, subject: str) -> None:
    page = console.page
    page.get_by_label("Search").fill(search)
    page.wait_for_function(
        "q => document.querySelector('[data-testid=activity-results]').dataset.renderedQuery === q",
        arg=search,
    )
    page.get_by_test_id("activity-results").get_by_role("link", name=subject).click()
    page.wait_for_url(re.compile(r"#/emails/"))
    page.get_by_test_id("email-headers").wait_for()


def test_the_hostile_email_renders_as_text_and_a_reply_links_to_gmail(
    console: ConsolePage, console_stack: tuple[Stack, Scenario]
) -> None:
    stack, _ = console_stack
    console.open("communications")
    console.sign_in(ADMIN)
    page = console.page
    _open_from_communications(console, "Fund update", HOSTILE_SUBJECT)
    assert page.get_by_test_id("email-subject").inner_text() == HOSTILE_SUBJECT
    body = page.get_by_test_id("email-body")
    assert "<script>alert('body')</script>" in body.inner_text()
    main = page.locator("main")
    assert main.locator("script, img, iframe").count() == 0
    assert main.locator("a[href^='javascript']").count() == 0
    assert body.locator("a").count() == 0
    # Why it matched: Zoe is a contact of Zeta Capital Fund I.
    participants = page.get_by_test_id("participants")
    assert "Zeta Capital Fund I by a contact's address (Zoe Zeta)" in participants.inner_text()
    assert ADMIN in page.get_by_test_id("sightings").inner_text()
    # A reply into the admin's own mailbox: a link to Gmail's drafts, nothing sent.
    drafts = len(stack.gmail.drafts(ADMIN))
    sends = len(stack.gmail.sends)
    page.get_by_label("Into the mailbox").select_option(label=ADMIN)
    page.get_by_label("Text").fill("Thanks, noted.")
    page.get_by_role("button", name="Draft a reply").click()
    created = page.get_by_test_id("draft-created")
    created.get_by_role("link", name="Open your Gmail drafts").wait_for()
    link = created.get_by_role("link", name="Open your Gmail drafts")
    assert link.get_attribute("href") == "https://mail.google.com/mail/u/0/#drafts"
    assert len(stack.gmail.drafts(ADMIN)) == drafts + 1
    assert len(stack.gmail.sends) == sends


def test_a_reply_all_draft_lands_in_the_chosen_mailbox_with_everyone(
    console: ConsolePage, console_stack: tuple[Stack, Scenario]
) -> None:
    stack, _ = console_stack
    console.open("communications")
    console.sign_in(ADMIN)
    page = console.page
    _open_from_communications(console, "Intro", "Intro: Zeta Capital x Fund")
    before = {d.id for d in stack.gmail.drafts(MEMBER)}
    page.get_by_label("Into the mailbox").select_option(label=MEMBER)
    page.get_by_label("Everyone").check()
    page.get_by_label("Text").fill("Happy to join the call.")
    page.get_by_role("button", name="Draft a reply-all").click()
    created = page.get_by_test_id("draft-created")
    created.wait_for()
    assert f"It was left in {MEMBER}'s Drafts." in created.inner_text()
    new = [d for d in stack.gmail.drafts(MEMBER) if d.id not in before]
    assert len(new) == 1
    headers = message_from_bytes(new[0].raw)
    recipients = {a.lower() for _, a in getaddresses(headers.get_all("To", []))}
    copied = {a.lower() for _, a in getaddresses(headers.get_all("Cc", []))}
    assert recipients | copied == {"zoe@zeta.vc", ADMIN}
    assert MEMBER not in recipients | copied
    assert headers["Subject"] == "Re: Intro: Zeta Capital x Fund"


def test_not_investor_mail_is_marked_and_undone(console: ConsolePage) -> None:
    console.open("communications")
    console.sign_in(ADMIN)
    page = console.page
    _open_from_communications(console, "Intro", "Intro: Zeta Capital x Fund")
    page.get_by_role("button", name="Not mail of Zeta Capital Fund I").click()
    marked = "Marked as not mail of Zeta Capital Fund I"
    page.get_by_role("status").filter(has_text=marked).wait_for()
    corrections = page.get_by_test_id("corrections")
    assert ADMIN in corrections.inner_text()
    corrections.get_by_role("button", name="Undo").click()
    page.get_by_role("status").filter(has_text="Correction undone").wait_for()
    corrections.wait_for(state="detached")
    page.get_by_role("button", name="Not mail of Zeta Capital Fund I").wait_for()


def test_the_email_page_has_no_serious_accessibility_violation(
    console: ConsolePage, chromium: Any
) -> None:
    console.open("communications")
    console.sign_in(ADMIN)
    page = console.page
    results = page.get_by_test_id("activity-results")
    href = results.get_by_role("link", name=HOSTILE_SUBJECT).get_attribute("href")
    assert href is not None and href.startswith("#/emails/")
    violations = console.axe_serious(chromium, href.removeprefix("#/"), ADMIN)
    assert violations == [], [(v["id"], v["help"]) for v in violations]


def test_a_draft_is_made_from_the_keyboard(
    console: ConsolePage, console_stack: tuple[Stack, Scenario]
) -> None:
    stack, _ = console_stack
    console.open("communications")
    console.sign_in(ADMIN)
    page = console.page
    link = page.get_by_test_id("activity-results").get_by_role("link", name="Diligence questions")
    link.focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("email-headers").wait_for()
    before = len(stack.gmail.drafts(MEMBER))
    page.get_by_label("The sender").focus()
    page.keyboard.press("ArrowDown")  # radio group: to "Everyone"
    assert page.get_by_label("Everyone").is_checked()
    page.get_by_label("Text").focus()
    page.keyboard.type("Answers below.")
    page.get_by_role("button", name="Draft a reply-all").focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("draft-created").wait_for()
    assert len(stack.gmail.drafts(MEMBER)) == before + 1
