"""The Gmail port: one mailbox's Gmail, read-only, as capture needs it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Messages and history records are Gmail API v1 resources as JSON dicts (users.messages,
# users.history): the shape is Google's published one, so the adapter passes them through and
# the capture code reads them without an intermediate model.
GmailMessage = dict[str, Any]


@dataclass(frozen=True)
class MessageIdPage:
    """One page of ``users.messages.list``: ids (newest first), next token, Gmail's estimate."""

    ids: list[str]
    next_page_token: str = ""
    result_size_estimate: int = 0


@dataclass(frozen=True)
class HistoryPage:
    """One page of ``users.history.list`` and the mailbox's current ``historyId``."""

    records: list[dict[str, Any]]
    history_id: int
    next_page_token: str = ""


@dataclass(frozen=True)
class FetchResult:
    """Outcome of a batched get: messages by id, and per-id errors that survived retries.

    ``missing`` holds ids Gmail answered 404 for (deleted between list and get): not an error.
    """

    messages: dict[str, GmailMessage]
    failed: dict[str, str]
    missing: list[str]


class HistoryExpiredError(Exception):
    """``history.list`` answered 404: the start id is older than Gmail keeps; run a full sync."""


class GmailClient(Protocol):
    """One mailbox's Gmail, as capture needs it (read-only scope). Named methods only.

    Rate limits (429, 403 rateLimitExceeded) and 5xx are retried inside with backoff and jitter,
    honouring Retry-After; what still fails raises RetryableError, except per-message failures in
    ``get_messages``, which are reported in ``FetchResult.failed`` so one bad message never stops
    the rest. A grant that lacks the scope raises ConfigurationError naming it.
    """

    def get_profile(self) -> dict[str, Any]:
        """``{emailAddress, messagesTotal, threadsTotal, historyId}``."""
        ...

    def list_message_ids(
        self, *, query: str = "", page_token: str = "", max_results: int = 500
    ) -> MessageIdPage: ...

    def get_messages(
        self,
        ids: Sequence[str],
        *,
        format: str,
        metadata_headers: Sequence[str] = (),
    ) -> FetchResult:
        """Batched ``messages.get`` (at most 25 parts a batch): minimal, metadata, full or raw."""
        ...

    def list_history(self, *, start_history_id: int, page_token: str = "") -> HistoryPage:
        """History records of types messageAdded, messageDeleted, labelAdded, labelRemoved;
        raises HistoryExpiredError on Gmail's 404."""
        ...

    def watch(self, *, topic: str, label_ids: Sequence[str] = ()) -> dict[str, Any]:
        """``users.watch``: ``{historyId, expiration}`` (epoch ms)."""
        ...

    def stop(self) -> None: ...
