"""Reply and request models shared by several routes, the base every API model uses, and the
bounded types every request model's fields are made of.

``defer_build`` keeps the cold start cheap: a model's validator is built on its first use.

**Bounds.** Every string a request may send has a maximum length and every list a maximum
number of items, declared in the model (so the OpenAPI document shows them, and schemathesis
sends longer ones to check the 400). The body as a whole is bounded by the router
(``shared.web.MAX_BODY_BYTES``, 413). A test walks every route's query and body models and fails
on a field without its bound, so use these types (or ``Field(max_length=...)``) in new models.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from shared.domain.addresses import normalize_address

MAX_LIMIT = 200
DEFAULT_LIMIT = 50

# Ids are at most 200 characters (``models.RecordId``); addresses at most RFC 5321's 254.
MAX_ID = 200
MAX_ADDRESS = 254
MAX_NAME = 300
MAX_SEARCH_TEXT = 500
# Tokens carry a listing's last key: a name of up to 300 characters, JSON-escaped, base64.
MAX_PAGE_TOKEN = 4096
MAX_DRAFT_TEXT = 100_000
MAX_RECIPIENTS = 100

IdText = Annotated[str, StringConstraints(max_length=MAX_ID)]
"""An id as the caller gives it (checked against stored records by the service)."""
AddressText = Annotated[str, StringConstraints(max_length=MAX_ADDRESS)]
"""An e-mail address as the caller gives it, checked by the service."""
EmailAddress = Annotated[
    str,
    StringConstraints(max_length=MAX_ADDRESS),
    AfterValidator(normalize_address),
    Field(json_schema_extra={"format": "email"}),
]
"""An e-mail address, checked and normalized (lower case) here; its length first."""
NameText = Annotated[str, StringConstraints(max_length=MAX_NAME)]
SearchText = Annotated[str, StringConstraints(max_length=MAX_SEARCH_TEXT)]
PageToken = Annotated[str, StringConstraints(max_length=MAX_PAGE_TOKEN)]
DraftText = Annotated[str, StringConstraints(max_length=MAX_DRAFT_TEXT)]


class ApiModel(BaseModel):
    """Base of the API's own request and reply models (unknown request fields are refused)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")


class ErrorBody(ApiModel):
    """Every refusal: a stable code, a reason a person can read, and sometimes details."""

    model_config = ConfigDict(defer_build=True, extra="allow")

    error: str
    reason: str


class PageQuery(ApiModel):
    """Paging of a list: an opaque token from the previous page's ``next_page_token``."""

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    page_token: PageToken = ""
