"""The digest's pure composition: sections, counts, the fallback paragraph, escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.digest import (
    MAX_PARAGRAPH_CHARS,
    Digest,
    InvestorActivity,
    MailboxHealth,
    MessageLine,
    UserActivity,
    clean_paragraph,
    compose,
    fallback_paragraph,
    is_earlier,
    narrator_prompt,
)
from shared.domain.models import Direction

UNTIL = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=1)
HOSTILE = "<script>alert('x')</script>"


def line(
    email_id: str,
    direction: Direction = Direction.INBOUND,
    *,
    subject: str = "Hello",
    investor: str = "Zeta Fund",
    counterpart: str = "Zoe",
) -> MessageLine:
    return MessageLine(
        email_id=email_id,
        direction=direction,
        subject=subject,
        date=UNTIL - timedelta(hours=2),
        counterpart=counterpart,
        investor=investor,
        snippet="a snippet",
    )


def ada(*messages: MessageLine, earlier: int = 0) -> UserActivity:
    return UserActivity("u-ada", "Ada Admin", "ada@fund.example", list(messages), earlier)


def ben(*messages: MessageLine) -> UserActivity:
    return UserActivity("u-ben", "Ben Member", "ben@fund.example", list(messages))


def zeta(*messages: MessageLine, earlier: int = 0) -> InvestorActivity:
    return InvestorActivity("inv-z", "Zeta Fund", "Zeta Capital", list(messages), earlier)


def build(**overrides: Any) -> Digest:
    args: dict[str, Any] = {
        "since": SINCE,
        "until": UNTIL,
        "users": [],
        "investors": [],
        "health": [],
        "paragraphs": {},
    }
    args.update(overrides)
    return compose(**args)


class TestFallbackParagraph:
    def test_counts_directions_and_investors(self) -> None:
        user = ada(
            line("e1"),
            line("e2", Direction.OUTBOUND, investor="Jo Smith"),
            line("e3", Direction.OUTBOUND),
        )
        assert fallback_paragraph(user) == (
            "3 investor emails (1 received, 2 sent) with 2 investors: Jo Smith, Zeta Fund."
        )

    def test_singular_and_earlier_messages(self) -> None:
        assert fallback_paragraph(ada(line("e1"), earlier=2)) == (
            "1 investor email (1 received, 0 sent) with 1 investor: Zeta Fund. "
            "2 earlier messages newly linked."
        )

    def test_no_activity(self) -> None:
        assert fallback_paragraph(ada()) == "No investor email in this period."

    def test_prompt_holds_only_the_users_facts(self) -> None:
        prompt = narrator_prompt(ada(line("e1", subject="Term sheet")))
        assert "Ada Admin" in prompt
        assert "Term sheet" in prompt
        assert "Ben" not in prompt


class TestCompose:
    def test_two_sections_then_health_in_order(self) -> None:
        intro = line("e1", subject="Intro")
        digest = build(
            users=[ben(intro), ada(intro)],
            investors=[zeta(intro)],
            paragraphs={"u-ada": "Ada met Zeta."},
            mailbox_count=2,
        )
        text = digest.text
        assert text.index("By team member") < text.index("By investor") < text.index("Sync health")
        # Users sorted by name; Ada's narrative, Ben's fallback.
        assert text.index("Ada Admin") < text.index("Ben Member")
        assert "Ada met Zeta." in text
        assert "1 investor email (1 received, 0 sent)" in text
        assert "Zeta Fund (Zeta Capital): 1 email (1 received, 0 sent)" in text
        assert "All 2 mailboxes are syncing normally." in text
        # The intro is one email however many teammates saw it.
        assert digest.email_count == 1
        assert digest.user_count == 2
        assert digest.investor_count == 1
        assert digest.has_activity
        assert "1 email, 1 investor" in digest.subject
        for section in ("By team member", "By investor", "Sync health"):
            assert f"<h2>{section}</h2>" in digest.html

    def test_earlier_messages_are_counted_not_listed(self) -> None:
        digest = build(users=[ada(earlier=3)], investors=[zeta(earlier=3)], earlier_count=3)
        text = digest.text
        assert "Zeta Fund (Zeta Capital): 3 earlier messages newly linked" in text
        assert digest.has_activity
        assert digest.email_count == 0
        assert digest.investor_count == 1

    def test_empty_window_still_says_so(self) -> None:
        digest = build(users=[ada()], mailbox_count=1)
        assert not digest.has_activity
        assert digest.subject.endswith("no activity")
        assert "There was no investor email activity in this period." in digest.text
        assert "No investor email in this period." in digest.html
        assert (digest.user_count, digest.email_count, digest.investor_count) == (0, 0, 0)

    def test_health_lines(self) -> None:
        digest = build(
            health=[
                MailboxHealth("ok@fund.example"),
                MailboxHealth("late@fund.example", behind=True, lag_seconds=3600),
                MailboxHealth("new@fund.example", behind=True),
                MailboxHealth("bad@fund.example", error=True, coverage_gap=4),
            ]
        )
        text = digest.text
        assert "- late@fund.example: behind (60 min since last sync)" in text
        assert "- new@fund.example: behind (never synced)" in text
        assert "- bad@fund.example: in error, coverage gap of 4 messages" in text
        assert "ok@fund.example" not in text

    def test_every_value_is_escaped_in_html(self) -> None:
        hostile = line("e1", subject=HOSTILE, investor=HOSTILE, counterpart="<b>Zoe</b> & co")
        user = UserActivity("u-x", "<i>Eve</i>", "eve@fund.example", [hostile])
        inv = InvestorActivity("inv-x", HOSTILE, "<org>", [hostile])
        digest = build(
            users=[user],
            investors=[inv],
            paragraphs={"u-x": "<img src=x onerror=alert(1)> & done"},
            health=[MailboxHealth("<svg>@fund.example", error=True)],
        )
        html_body = digest.html
        for raw in ("<script>", "<img", "<b>", "<i>", "<org>", "<svg>"):
            assert raw not in html_body
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html_body
        assert "&lt;img src=x onerror=alert(1)&gt; &amp; done" in html_body
        assert "&lt;b&gt;Zoe&lt;/b&gt; &amp; co" in html_body
        # The plain-text body carries the values as they are.
        assert HOSTILE in digest.text


def test_is_earlier_is_seven_days_before_matching() -> None:
    matched = UNTIL
    assert is_earlier(matched - timedelta(days=8), matched)
    assert not is_earlier(matched - timedelta(days=6), matched)
    assert not is_earlier(None, matched)


def test_clean_paragraph() -> None:
    assert clean_paragraph("  two\n\nlines  ") == "two lines"
    assert clean_paragraph("   ") is None
    assert clean_paragraph(None) is None
    assert len(clean_paragraph("x" * 5000) or "") == MAX_PARAGRAPH_CHARS
