"""The relationship terms on small hand-made rows: exchanges, one-way mail, the score's parts,
snapshots and going cold, and the ranking's page tokens."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.models import Direction
from shared.domain.relationships import (
    ColdReason,
    Contribution,
    RelationshipSort,
    figures_of,
    going_cold_of,
    ranking_page_key,
    score_of,
    strength_of,
)
from shared.errors import BadRequestError

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def row(n: int, days_ago: int, direction: Direction, thread: str = "t") -> Contribution:
    at = NOW - timedelta(days=days_ago)
    return Contribution(
        id=f"r{n}",
        email_id=f"e{n}",
        investor_id="acme",
        at=at,
        thread_key=thread,
        direction=direction,
        account_ids=["box"],
        at_key=f"{at.isoformat()}|e{n}",
    )


class TestTerms:
    def test_a_thread_counts_once_however_many_replies(self) -> None:
        ways = [Direction.OUTBOUND, Direction.INBOUND]
        rows = [row(i, 50 - i, ways[i % 2]) for i in range(6)]
        found = figures_of(rows, {}, NOW)
        assert found.two_way_exchanges == 1
        assert (found.one_way_inbound, found.one_way_outbound) == (0, 0)

    def test_unanswered_mail_is_one_way(self) -> None:
        rows = [row(1, 10, Direction.INBOUND, "a"), row(2, 9, Direction.OUTBOUND, "b")]
        found = figures_of(rows, {}, NOW)
        assert found.two_way_exchanges == 0
        assert (found.one_way_inbound, found.one_way_outbound) == (1, 1)

    def test_no_mail_is_strength_zero(self) -> None:
        found = figures_of([], {}, NOW)
        assert found.strength == 0 and found.first_contact is None

    def test_strength_parts(self) -> None:
        strength, inputs = strength_of(NOW, 60, 6, NOW)
        assert strength == 100
        assert (inputs.recency_points, inputs.frequency_points, inputs.reciprocity_points) == (
            40.0,
            30.0,
            30.0,
        )
        strength, inputs = strength_of(NOW - timedelta(days=400), 0, 0, NOW)
        assert strength == 0 and inputs.days_since_last_contact == 400


class TestScores:
    def test_snapshots_keep_35_days_and_measure_the_30_day_drop(self) -> None:
        rows = [row(1, 5, Direction.INBOUND), row(2, 4, Direction.OUTBOUND)]
        previous = None
        for day in range(40, -1, -1):
            when = NOW - timedelta(days=day)
            figures = figures_of(rows if day > 20 else [], {}, when)
            previous = score_of("acme", figures, listed=True, previous=previous, now=when)
        assert previous is not None and len(previous.snapshots) == 35
        assert previous.strength == 0 and previous.drop_30d > 20
        cold = going_cold_of(previous, now=NOW, cold_days=90, cold_drop=20)
        assert cold is not None and cold.reasons == [ColdReason.STRENGTH_DROP]
        unlisted = previous.model_copy(update={"listed": False})
        assert going_cold_of(unlisted, now=NOW, cold_days=90, cold_drop=20) is None


class TestPageTokens:
    @pytest.mark.parametrize(
        "key",
        [b"0000|", b'["zeta", "a/b"]', b"2024-06-03T10:00:00.000000Z|a/b", b"101|x", b"|x"],
    )
    def test_forged_tokens_are_refused(self, key: bytes) -> None:
        token = base64.urlsafe_b64encode(key).decode()
        for sort in RelationshipSort:
            with pytest.raises(BadRequestError):
                ranking_page_key(sort, token)

    def test_own_keys_are_taken(self) -> None:
        def token(key: bytes) -> str:
            return base64.urlsafe_b64encode(key).decode()

        assert ranking_page_key(RelationshipSort.STRENGTH, token(b"042|inv")) == "042|inv"
        last = b"2024-06-03T10:00:00.000000Z|inv"
        assert ranking_page_key(RelationshipSort.LAST_CONTACT, token(last)) == last.decode()
        assert ranking_page_key(RelationshipSort.LAST_CONTACT, token(b"0|inv")) == "0|inv"
