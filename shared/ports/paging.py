"""One page of a listing, shared by the store areas that page (mail, proposals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: the items and an opaque token for the next page (empty = done)."""

    items: list[T]
    next_token: str = ""
