"""The sandbox narrator's paragraph: written from the digest's own prompt, and signed."""

from __future__ import annotations

from datetime import UTC, datetime

from sandbox.narrator_stub import SANDBOX_SIGNATURE, facts_paragraph
from shared.domain.digest import NARRATOR_SYSTEM_PROMPT, MessageLine, UserActivity, narrator_prompt
from shared.domain.models import Direction


def _request(prompt: str) -> dict[str, object]:
    return {
        "messages": [
            {"role": "system", "content": NARRATOR_SYSTEM_PROMPT},
            {"role": "user", "content": prompt},
        ]
    }


def test_the_paragraph_names_the_member_the_counts_and_every_subject() -> None:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    messages = [
        MessageLine("e1", Direction.INBOUND, "Intro", when, "Zoe Zeta", "Zeta Fund I"),
        MessageLine("e2", Direction.OUTBOUND, "Re: terms", when, "Jo Smith", "Jo (angel)"),
    ]
    user = UserActivity(user_id="u1", name="Ada Admin", email="ada@fund.example", messages=messages)

    paragraph = facts_paragraph(_request(narrator_prompt(user)))

    assert paragraph.startswith("Ada Admin exchanged 2 emails with investors (1 received, 1 sent)")
    assert "'Intro'" in paragraph
    assert "'Re: terms'" in paragraph
    assert paragraph.endswith(SANDBOX_SIGNATURE)


def test_a_request_without_a_prompt_still_gets_a_signed_paragraph() -> None:
    requests: list[dict[str, object]] = [{}, {"messages": []}, {"messages": ["not a message"]}]
    for request in requests:
        assert facts_paragraph(request).endswith(SANDBOX_SIGNATURE)
