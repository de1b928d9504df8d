"""Session-wide test setup: every test starts from the same environment and no built adapters.

Tests configure the service the way an operator does, through ``CRM_*`` environment variables,
and these fixtures make sure nothing leaks from one test into the next.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The handbook's corpus lives beside the checkout, read-only (CI puts it there too).
SHARED_CORPUS = ROOT.parent / "shared" / "corpus"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Fails the session if a Gmail sandbox recorded a send to a non-admin or a drafts.send call.
pytest_plugins = ["tests.send_guard"]


@pytest.fixture(autouse=True)
def isolate_environment() -> Iterator[None]:
    """Restore os.environ and forget settings and adapters after every test."""
    from shared import wiring

    saved = os.environ.copy()
    for key in list(os.environ):
        if key.startswith("CRM_"):
            del os.environ[key]
    wiring.reset()
    try:
        yield
    finally:
        wiring.reset()
        os.environ.clear()
        os.environ.update(saved)
