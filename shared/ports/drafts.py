"""The drafts port: creating a Gmail draft in one mailbox (``gmail.compose``; never sends)."""

from __future__ import annotations

from typing import Protocol

from shared.ports.gmail import CreatedDraft


class DraftsClient(Protocol):
    """``users.drafts.create`` as one mailbox (``adapters.gmail.drafts.GmailDraftsClient``)."""

    def create_draft(self, raw: bytes, thread_id: str) -> CreatedDraft: ...
