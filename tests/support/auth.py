"""Test-only plumbing between the auth matrix tests and the functions under test.

functions-framework loads a function file by path and re-executes it for every app, so the
verifier the test builds cannot be handed to the module directly; the functions reach it through
this module instead, the way production functions reach ``shared.wiring.verifier``.
"""

from __future__ import annotations

from shared.ports import TokenVerifier

_current: list[TokenVerifier] = []


def install(verifier: TokenVerifier) -> None:
    """Make ``verifier`` the one the test functions use (replacing any earlier one)."""
    _current[:] = [verifier]


def clear() -> None:
    _current.clear()


def verifier() -> TokenVerifier:
    """The zero-argument factory the functions pass to ``shared.web``."""
    if not _current:
        raise RuntimeError("no verifier installed: use the auth matrix fixtures")
    return _current[0]
