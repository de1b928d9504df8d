"""A bulk decision is validated once, as the router reads the body, and passed on as is: the
service takes the same model and has no second set of checks."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.models import ProposalStatus
from shared.domain.proposal_requests import BULK_LIMIT, VERDICTS, BulkDecision, Verdict


def test_the_bulk_route_passes_its_validated_body_to_the_service() -> None:
    from functions.admin_api import api
    from shared.services import proposals

    (route,) = [r for r in api.routes if r.path == "/proposals/bulk-decisions"]
    assert route.body is BulkDecision
    parameters = inspect.signature(proposals.decide_matching).parameters
    assert [p.annotation for p in parameters.values()] == [
        "ProposalDecisionStore",
        "Caller",
        "BulkDecision",
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "approve"},  # no filter: never "everything"
        {"decision": "approve", "investor_id": "inv-1", "limit": 0},
        {"decision": "approve", "investor_id": "inv-1", "limit": BULK_LIMIT + 1},
        {"decision": "approve", "created_from": "2026-01-01T00:00:00"},  # no zone
        {
            "decision": "reject",
            "created_from": "2026-02-01T00:00:00Z",
            "created_to": "2026-01-01T00:00:00Z",
        },
        {"decision": "send", "investor_id": "inv-1"},
    ],
)
def test_a_bulk_decision_needs_a_filter_a_limit_and_an_ordered_window(body: Any) -> None:
    with pytest.raises(ValidationError):
        BulkDecision.model_validate(body)


def test_a_verdict_names_the_state_it_decides_into() -> None:
    decided = BulkDecision.model_validate({"decision": "reject", "account_id": "a_1"})
    assert (decided.limit, VERDICTS[decided.decision]) == (BULK_LIMIT, ProposalStatus.REJECTED)
    assert VERDICTS[Verdict.APPROVE] is ProposalStatus.APPROVED
