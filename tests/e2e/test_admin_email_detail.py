"""Email detail, member views, proposal evidence and "not investor mail" corrections over HTTP,
with real signed tokens against the local stack (Gmail sandbox, SQLite).

The fund's mail (``seed_mail``) plus Zoe's answer to her intro, in the intro's Gmail thread in
both mailboxes (``threaded``): Ada (admin) and Ben (member) both hold the intro and the answer;
only Ada holds her reply to Jo; only Ben holds Kim's diligence questions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest

from embedded.stack import DRAFTING_AGENT_IDENTITY, Stack
from sandbox.scenario import TEAM, Scenario, message, seed_crm, seed_mail
from shared import wiring
from shared.domain.models import Proposal, ProposalStatus, email_id_for, proposal_id_for
from shared.services import crm, rematch
from tests.support.admin_api import call

ADMIN, MEMBER = TEAM
ZETA, ANGEL = "inv-zeta-fund-1", "inv-jo-smith"
INTRO = email_id_for("<intro.q3@zeta.vc>")
ANSWER = email_id_for("<intro.answer@zeta.vc>")
REPLY = email_id_for("<follow-on.1@fund.example>")
PARTNER = email_id_for("<diligence.7@zeta.vc>")
COLD = email_id_for("<pitch.42@startup.example>")
PARTNER_BODY = "Ben, a few questions on the cap table."


def partner_raw(now: datetime) -> bytes:
    """Kim's diligence mail exactly as ``seed_mail`` wrote it (same Message-ID)."""
    return message(
        message_id="<diligence.7@zeta.vc>",
        sender="Kim Partner <kim@zeta.vc>",
        to=[MEMBER],
        subject="Diligence questions",
        body=PARTNER_BODY,
        date=now - timedelta(days=1),
    )[1]


@pytest.fixture
def threaded(stack: Stack) -> Scenario:
    scenario = seed_crm(wiring.store())
    now = datetime.now(UTC)
    seed_mail(stack.gmail, scenario, now=now)
    _, answer = message(
        message_id="<intro.answer@zeta.vc>",
        sender="Zoe Zeta <zoe@zeta.vc>",
        to=[ADMIN],
        cc=[MEMBER],
        subject="Re: Intro: Zeta Capital x Fund",
        body="And the deck, as promised.",
        date=now - timedelta(hours=30),
        in_reply_to="<intro.q3@zeta.vc>",
    )
    for mailbox in TEAM:
        stack.gmail.add_message(mailbox, answer, label_ids=("INBOX",))
    sync(stack)
    return scenario


def sync(stack: Stack) -> None:
    stack.server.ticker.fire_now("sync_poll")
    assert wiring.local_queue().wait_idle(30)


def detail(stack: Stack, email_id: str, who: str = ADMIN) -> dict[str, Any]:
    response = call(stack, "GET", f"/emails/{email_id}", who=who)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def correct(stack: Stack, email_id: str, investor_id: str, **extra: Any) -> dict[str, Any]:
    response = call(
        stack,
        "POST",
        f"/emails/{email_id}/not-investor-mail",
        json={"investor_id": investor_id, **extra},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def undo(stack: Stack, email_id: str, investor_id: str) -> dict[str, Any]:
    response = call(
        stack,
        "DELETE",
        f"/emails/{email_id}/not-investor-mail",
        params={"investor_id": investor_id},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def proposal_status(email_id: str, investor_id: str) -> ProposalStatus:
    proposal = wiring.store().get_proposal(proposal_id_for(email_id, investor_id))
    assert proposal is not None
    return proposal.status


class TestEmailDetail:
    def test_an_admin_sees_headers_matches_mailboxes_thread_and_text(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        ada, ben = threaded.accounts
        seen = detail(stack, INTRO)
        assert seen["subject"] == "Intro: Zeta Capital x Fund"
        assert seen["sender"] == {"name": "Zoe Zeta", "address": "zoe@zeta.vc"}
        assert seen["body"].startswith("Hi Ada, great to meet.")
        assert seen["body_format"] == "text/plain"
        assert seen["snippet"]

        zoe = next(p for p in seen["participants"] if p["address"] == "zoe@zeta.vc")
        assert zoe["header"] == "from"
        assert [
            (m["investor_id"], m["via"], m["contact_id"], m["contact_name"]) for m in zoe["matches"]
        ] == [(ZETA, "contact", "con-zoe", "Zoe Zeta")]
        team = [p for p in seen["participants"] if p["address"] in TEAM]
        assert team and all(p["matches"] == [] for p in team)

        assert sorted(s["mailbox"] for s in seen["sightings"]) == sorted(TEAM)
        assert {s["account_id"] for s in seen["sightings"]} == {ada.id, ben.id}
        assert all("INBOX" in s["label_ids"] and not s["deleted"] for s in seen["sightings"])
        # The answer, in the same Gmail thread, once per mailbox that holds it.
        assert sorted((t["email_id"], t["account_id"]) for t in seen["thread"]) == sorted(
            [(ANSWER, ada.id), (ANSWER, ben.id)]
        )

    def test_a_domain_match_names_the_organisation_and_its_domain(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        seen = detail(stack, PARTNER)
        kim = next(p for p in seen["participants"] if p["address"] == "kim@zeta.vc")
        assert [
            (m["investor_id"], m["via"], m["domain"], m["organization_id"], m["organization_name"])
            for m in kim["matches"]
        ] == [(ZETA, "domain", "zeta.vc", "org-zeta", "Zeta Capital")]

    def test_html_mail_is_served_as_the_text_capture_stored(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        html = EmailMessage()
        html["Message-ID"] = "<html.1@zeta.vc>"
        html["From"] = "Zoe Zeta <zoe@zeta.vc>"
        html["To"] = ADMIN
        html["Subject"] = "Formatted"
        html["Date"] = format_datetime(datetime.now(UTC) - timedelta(hours=2))
        html.set_content(
            "<html><body><script>alert('x')</script><p>Hello <b>Ada</b> &amp; team</p>"
            "<img src=x onerror=alert(1)></body></html>",
            subtype="html",
        )
        stack.gmail.add_message(ADMIN, html.as_bytes(), label_ids=("INBOX",))
        sync(stack)
        seen = detail(stack, email_id_for("<html.1@zeta.vc>"))
        assert "Hello Ada & team" in seen["body"]
        assert "<" not in seen["body"] and "alert" not in seen["body"]
        assert seen["body_format"] == "text/plain"

    def test_unmatched_mail_shows_no_text(self, stack: Stack, threaded: Scenario) -> None:
        seen = detail(stack, COLD)
        assert (seen["matched"], seen["body"], seen["snippet"]) == (False, "", "")
        assert seen["subject"] == "Pitch: the next big thing"

    def test_a_member_sees_only_their_own_mailboxes_part(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        _, ben = threaded.accounts
        seen = detail(stack, INTRO, who=MEMBER)
        assert [s["account_id"] for s in seen["sightings"]] == [ben.id]
        assert [(t["email_id"], t["account_id"]) for t in seen["thread"]] == [(ANSWER, ben.id)]
        assert seen["body"].startswith("Hi Ada")
        assert seen["corrections"] == []

    def test_mail_the_member_does_not_hold_and_unknown_ids_are_the_same_404(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        unknown = email_id_for("<never@nowhere.example>")
        answers = [
            call(stack, "GET", f"/emails/{email_id}", who=MEMBER) for email_id in (REPLY, unknown)
        ]
        assert [r.status_code for r in answers] == [404, 404]
        assert answers[0].json()["error"] == answers[1].json()["error"]
        assert answers[0].json()["reason"] == answers[1].json()["reason"]
        assert call(stack, "GET", f"/emails/{unknown}").status_code == 404  # admin too

    def test_the_drafting_agent_sees_nothing(self, stack: Stack, threaded: Scenario) -> None:
        token = stack.service_token(DRAFTING_AGENT_IDENTITY, "admin_api")
        response = call(
            stack, "GET", f"/emails/{INTRO}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 403
        assert "Zeta" not in response.text


class TestMemberViews:
    def test_each_person_lists_their_own_mailboxes_with_sync_status(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        for who in TEAM:
            response = call(stack, "GET", "/me/mailboxes", who=who)
            assert response.status_code == 200, response.text
            items = response.json()["items"]
            assert [m["address"] for m in items] == [who]
            assert items[0]["state"] == "ok"
            assert items[0]["backfill"]["done"] is True

    def test_a_member_searches_only_mail_their_mailbox_holds(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        ada, ben = threaded.accounts
        response = call(stack, "GET", "/me/activity", who=MEMBER)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert sorted(i["id"] for i in items) == sorted([INTRO, ANSWER, PARTNER])
        assert all([m["account_id"] for m in i["mailboxes"]] == [ben.id] for i in items)
        words = call(stack, "GET", "/me/activity", who=MEMBER, params={"q": "cap table"})
        assert [i["id"] for i in words.json()["items"]] == [PARTNER]

        others = call(stack, "GET", "/me/activity", who=MEMBER, params={"account_id": ada.id})
        assert others.status_code == 404
        admin = call(stack, "GET", "/me/activity", who=ADMIN)
        assert REPLY in {i["id"] for i in admin.json()["items"]}
        assert PARTNER not in {i["id"] for i in admin.json()["items"]}  # not in Ada's mailbox


class TestProposalEvidence:
    def test_proposals_carry_what_a_person_needs_to_decide(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        _, ben = threaded.accounts
        response = call(stack, "GET", "/proposals", params={"investor_id": ZETA, "limit": 200})
        by_email = {p["email_id"]: p for p in response.json()["items"]}
        partner = by_email[PARTNER]["evidence"]
        assert partner["subject"] == "Diligence questions"
        assert partner["sender"]["address"] == "kim@zeta.vc"
        assert partner["snippet"].startswith("Ben, a few questions")
        assert (partner["account_id"], partner["mailbox"]) == (ben.id, MEMBER)
        assert (partner["matched_address"], partner["header"], partner["via"]) == (
            "kim@zeta.vc",
            "from",
            "domain",
        )
        assert by_email[INTRO]["evidence"]["via"] == "contact"
        assert datetime.fromisoformat(partner["date"]) < datetime.now(UTC)

    def test_a_proposal_made_before_evidence_existed_gets_it_when_listed(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        ada, _ = threaded.accounts
        store = wiring.store()
        old = Proposal.new(COLD, ANGEL, account_id=ada.id)
        assert store.create_proposal(old)
        assert store.get_proposal(old.id).evidence is None  # type: ignore[union-attr]
        one = call(stack, "GET", f"/proposals/{old.id}").json()
        assert one["evidence"]["subject"] == "Pitch: the next big thing"
        assert one["evidence"]["mailbox"] == ADMIN
        assert one["evidence"]["matched_address"] == ""  # no link: nothing matched


class TestCorrections:
    def test_correcting_unlinks_withdraws_purges_and_capture_elsewhere_keeps_it_off(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        store = wiring.store()
        result = correct(stack, PARTNER, ZETA)
        assert (result["unlinked"], result["proposal_status"], result["changed"]) == (
            1,
            "withdrawn",
            True,
        )
        email = store.get_email(PARTNER)
        assert email is not None
        assert (email.matched, email.body, email.snippet) == (False, "", "")
        assert email.corrected_investor_ids == {ZETA}
        assert proposal_status(PARTNER, ZETA) is ProposalStatus.WITHDRAWN
        words = call(stack, "GET", "/activity", params={"q": "cap table"}).json()
        assert words["items"] == []  # its search words went with the link
        audit = [e for e in store.list_audit(limit=50) if e.target == PARTNER]
        assert [e.action for e in audit] == ["email.not_investor_mail"]
        assert audit[0].actor == ADMIN

        # Ada's mailbox now sees the same message: capture there must not link it back.
        stack.gmail.add_message(ADMIN, partner_raw(datetime.now(UTC)), label_ids=("INBOX",))
        sync(stack)
        again = store.get_email(PARTNER)
        assert again is not None and len(again.live_account_ids) == 2
        assert (again.matched, again.body) == (False, "")
        assert proposal_status(PARTNER, ZETA) is ProposalStatus.WITHDRAWN

        # Nor does a re-match of its sender's domain.
        rematch.queue_rematch(
            store, wiring.queue(), domains=["zeta.vc"], reason="test", actor=ADMIN
        )
        assert wiring.local_queue().wait_idle(30)
        assert store.list_links(PARTNER) == []
        assert store.list_links(INTRO) != []  # the rest of Zeta's mail is still Zeta's

        # Undo: linked again, proposal reopened, the purged body fetched again.
        undone = undo(stack, PARTNER, ZETA)
        assert (undone["relinked"], undone["body_fetched"], undone["proposal_status"]) == (
            True,
            True,
            "proposed",
        )
        back = store.get_email(PARTNER)
        assert back is not None and back.matched and back.corrections == []
        assert back.body.strip() == PARTNER_BODY
        newest = store.list_audit(limit=1)[0]
        assert (newest.action, newest.target) == ("email.not_investor_mail.undo", PARTNER)
        assert (
            call(
                stack,
                "DELETE",
                f"/emails/{PARTNER}/not-investor-mail",
                params={"investor_id": ZETA},
            ).status_code
            == 404
        )  # nothing left to undo

    def test_an_approved_activity_stays_and_is_marked_corrected(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        store = wiring.store()
        proposal_id = proposal_id_for(INTRO, ZETA)
        assert call(stack, "POST", f"/proposals/{proposal_id}/approve").status_code == 200
        result = correct(stack, INTRO, ZETA)
        assert (result["proposal_status"], result["activity_corrected"]) == ("approved", True)
        activity = store.get_activity(proposal_id)
        assert activity is not None
        assert (activity.corrected, activity.corrected_by) == (True, ADMIN)
        assert proposal_status(INTRO, ZETA) is ProposalStatus.APPROVED
        assert detail(stack, INTRO)["corrections"][0]["investor_id"] == ZETA

        undo(stack, INTRO, ZETA)
        activity = store.get_activity(proposal_id)
        assert activity is not None and not activity.corrected
        assert proposal_status(INTRO, ZETA) is ProposalStatus.APPROVED

    def test_always_exclude_adds_the_matched_address_and_undo_removes_it(
        self, stack: Stack, threaded: Scenario
    ) -> None:
        store = wiring.store()
        result = correct(stack, REPLY, ANGEL, exclude_address=True)
        assert result["excluded_address"] == "j.smith+vc@googlemail.com"
        assert result["exclusion_job_id"]
        assert wiring.local_queue().wait_idle(30)
        addresses, _ = crm.get_exclusions(store)
        assert "j.smith+vc@googlemail.com" in addresses

        undo(stack, REPLY, ANGEL)
        assert wiring.local_queue().wait_idle(30)
        addresses, _ = crm.get_exclusions(store)
        assert "j.smith+vc@googlemail.com" not in addresses
        assert store.list_links(REPLY) != []

    def test_refusals(self, stack: Stack, threaded: Scenario) -> None:
        unlinked = call(
            stack, "POST", f"/emails/{COLD}/not-investor-mail", json={"investor_id": ZETA}
        )
        assert unlinked.status_code == 404
        member = call(
            stack,
            "POST",
            f"/emails/{PARTNER}/not-investor-mail",
            who=MEMBER,
            json={"investor_id": ZETA},
        )
        assert member.status_code == 403
        assert wiring.store().list_links(PARTNER) != []
