"""The token verifier port: who is calling, from a bearer token."""

from __future__ import annotations

from typing import Protocol

from shared.domain.models import Caller, Role, ServiceRole


class TokenVerifier(Protocol):
    """Turns a bearer token into a verified caller, or raises Unauthenticated/Forbidden."""

    def verify(self, token: str | None, *, audience_for: str) -> Caller: ...


AllowedRoles = frozenset[Role | ServiceRole]
