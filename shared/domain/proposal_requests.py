"""What a person asks of the proposals in bulk: the one schema of ``POST
/proposals/bulk-decisions``, validated once by the router and passed on to the service as is.

``Window`` (a creation-time window, with its zone, in the years a listing key can hold) is
shared with the listing's query (``GET /proposals``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from shared.domain.models import ProposalStatus

# Proposals one bulk request decides at most (each its own transaction and audit entry).
BULK_LIMIT = 500
# An id as a request gives it (checked against stored records by the store).
_IdText = Annotated[str, StringConstraints(max_length=200)]


def _instant(value: datetime) -> datetime:
    """A time with its zone, as UTC, within the years the listing key can hold."""
    if value.tzinfo is None:
        raise ValueError("give a time zone (e.g. Z)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None
    if not 1000 <= utc.year <= 9998:
        raise ValueError("out of range")
    return utc


Instant = Annotated[datetime, AfterValidator(_instant)]


class Window(BaseModel):
    # As the admin API's own models (``functions.admin.schemas.ApiModel``): unknown fields refused.
    model_config = ConfigDict(defer_build=True, extra="forbid")

    created_from: Instant | None = Field(
        default=None, description="Created at or after this time (RFC 3339, with a zone)."
    )
    created_to: Instant | None = Field(
        default=None, description="Created before this time (RFC 3339, with a zone)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Any:  # Any: subclasses return themselves
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValueError("created_from is after created_to")
        return self


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


VERDICTS = {Verdict.APPROVE: ProposalStatus.APPROVED, Verdict.REJECT: ProposalStatus.REJECTED}


class BulkDecision(Window):
    """Decide every open proposal matching the filter (at least one field of it), newest
    first, at most ``limit`` (up to 500) per request."""

    decision: Verdict
    investor_id: _IdText | None = None
    account_id: _IdText | None = Field(
        default=None, description="The mailbox whose capture proposed it."
    )
    limit: int = Field(default=BULK_LIMIT, ge=1, le=BULK_LIMIT)

    @model_validator(mode="after")
    def _filtered(self) -> BulkDecision:
        if not (self.investor_id or self.account_id or self.created_from or self.created_to):
            raise ValueError(
                "give at least one of investor_id, account_id, created_from, created_to"
            )
        return self
