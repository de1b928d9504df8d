"""Reply and request models shared by several routes, and the base every API model uses.

``defer_build`` keeps the cold start cheap: a model's validator is built on its first use.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


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
    page_token: str = ""
