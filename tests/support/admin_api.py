"""Calling the admin API as a person, with a real token from the stack's issuer."""

from __future__ import annotations

from typing import Any

import requests

from embedded.stack import Stack
from sandbox.scenario import TEAM


def call(stack: Stack, method: str, path: str, who: str = TEAM[0], **kwargs: Any) -> Any:
    """``method /admin_api<path>`` as ``who`` (the scenario's admin unless named)."""
    headers = {"Authorization": f"Bearer {stack.person_token(who)}", **kwargs.pop("headers", {})}
    return requests.request(
        method, f"{stack.base_url}/admin_api{path}", headers=headers, timeout=30, **kwargs
    )
