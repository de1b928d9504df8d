"""The email-activity panel: its query, what the stores return, and what the admin API answers.

The pydantic models here (``ActivityQuery``, ``ActivityPage`` and its parts, ``PickerInvestor``)
become the HTTP schema (OpenAPI), so their field names are the API's. What the panel lists (the
seed spec, "Email-activity panel"): mail linked to an investor or contact, with at least one live
(not soft-deleted) sighting, newest first by the email's date, ties by id; its direction decided
per email (outbound when the sender is one of the team's mailbox addresses).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.domain import search
from shared.domain.activity_keys import activity_page_key
from shared.domain.models import Direction, Email, Mailbox, RecordId
from shared.errors import BadRequestError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# A request reads at most this many times (limit + 1) email documents (Firestore, when words or
# filters are checked in memory); a page left short by it says so with has_more and a token.
READ_BUDGET_FACTOR = 5
# What a request's parameters may hold (the ids' bound is ``models.RecordId``'s).
MAX_ID = 200
MAX_SEARCH_TEXT = 500
MAX_PAGE_TOKEN = 4096
_RECORD_ID: TypeAdapter[str] = TypeAdapter(RecordId)


class _Model(BaseModel):
    # defer_build: built on first use, not at import (cold starts), like shared.domain.models.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ActivityParams(BaseModel):
    """The query of ``GET /activity``, validated once, by the router: the one schema of the
    panel's parameters (the OpenAPI document's, and the 400s').

    Surrounding spaces are dropped and an empty parameter is an absent one. Beyond the types,
    the rules the types cannot say raise :class:`BadRequestError` naming the parameter (pydantic
    lets it through, so the reply keeps its field, e.g. ``{"q": ...}``): an id no record can
    have, a ``q`` with no word of two or more letters or digits (one-letter words are ignored: as
    prefixes they match nearly everything, so a ``q`` of nothing but those is an error, not "no
    text filter"), a malformed page token (before any read).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    investor_id: str = Field(
        default="", max_length=MAX_ID, description="Only mail linked to this investor."
    )
    account_id: str = Field(
        default="", max_length=MAX_ID, description="Only mail a live sighting puts in this mailbox."
    )
    direction: Direction | None = Field(
        default=None, description="outbound: sent from one of the team's mailboxes."
    )
    q: str = Field(
        default="",
        max_length=MAX_SEARCH_TEXT,
        description=(
            "Words over subject, snippet and sender name and address; each must match the start"
            " of a word, ignoring case and accents. One-letter words are ignored."
        ),
    )
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    page_token: str = Field(
        default="", max_length=MAX_PAGE_TOKEN, description="next_page_token of the previous page."
    )

    @field_validator("investor_id", "account_id", "q", "page_token")
    @classmethod
    def _stripped(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _checked(self) -> ActivityParams:
        # After the types (their 400s come first), in the order the parameters are listed.
        for name in ("investor_id", "account_id"):
            value = getattr(self, name)
            if value:  # one that no record can have is a 400, not an empty page
                try:
                    _RECORD_ID.validate_python(value)
                except ValidationError:
                    raise BadRequestError(f"{name} is not a valid id", **{name: value}) from None
        if self.q and not search.query_words(self.q):
            raise BadRequestError(
                f"q has no word of at least {search.MIN_PREFIX} letters or digits", q=self.q
            )
        activity_page_key(self.page_token)  # a malformed token is the caller's 400, before any read
        return self

    def query(self) -> ActivityQuery:
        """The search the stores run: the ids as None when absent, ``q``'s words tokenized."""
        return ActivityQuery(
            investor_id=self.investor_id or None,
            account_id=self.account_id or None,
            direction=self.direction,
            q=self.q,
            words=tuple(search.query_words(self.q)),
            limit=self.limit,
            page_token=self.page_token,
        )


class ActivityQuery(_Model):
    """One search of the panel as the stores run it (``ActivityParams.query``).

    ``words`` are the query's words as the tokenizer normalised them (``search.query_words``);
    ``q`` is kept as typed, for logs and echoes only: stores search on ``words``.
    """

    investor_id: str | None = None
    account_id: str | None = None
    direction: Direction | None = None
    q: str = ""
    words: tuple[str, ...] = ()
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    page_token: str = ""

    @field_validator("words")
    @classmethod
    def _tokenized(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        # Whoever builds a query, stores only ever see the tokenizer's words (letters and
        # digits): nothing reaches an FTS5 expression that could change its meaning.
        return tuple(search.query_words(" ".join(words)))


class ActivityMailbox(_Model):
    """A team mailbox that holds the email (a live sighting)."""

    account_id: str
    address: str


class ActivityInvestor(_Model):
    """An investor the email is linked to; a soft-deleted one is named by the matched address."""

    id: str
    name: str
    graveyard: bool = False
    deleted: bool = False


class ActivityItem(_Model):
    """One row of the panel. ``date`` is what the list is ordered by: the Date header, or when
    the mail was first seen if it had none."""

    id: str
    date: datetime
    direction: Direction
    sender: Mailbox | None
    to: list[Mailbox]
    cc: list[Mailbox]
    subject: str
    snippet: str
    mailboxes: list[ActivityMailbox]
    investors: list[ActivityInvestor]


class ActivityPage(_Model):
    """A page of the panel, newest first. ``next_page_token`` is empty when ``has_more`` is
    false. A page may hold fewer than ``limit`` items and still have more (Firestore stops
    reading at its per-request budget): keep paging while ``has_more``."""

    items: list[ActivityItem]
    has_more: bool
    next_page_token: str = ""


class PickerInvestor(_Model):
    """An investor offered as a filter: not graveyard, not soft-deleted."""

    id: str
    name: str


@dataclass(frozen=True)
class ActivityHit:
    """An email the store found, with the direction it stores for it."""

    email: Email
    direction: Direction


@dataclass(frozen=True)
class ActivityHits:
    """What ``Store.query_activity`` returns: hits newest first, whether more may follow, and
    the token that resumes after the last hit (or after the last email read, on a short page)."""

    hits: list[ActivityHit]
    has_more: bool
    next_token: str = ""
