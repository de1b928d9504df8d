"""The Gmail port: one mailbox's Gmail, read-only, as capture needs it.

Gmail's JSON stops at the adapter (``shared.adapters.gmail.wire``): the port hands over these
typed values, so capture never reads a Gmail field name, decodes base64 or epoch milliseconds,
or rebuilds a header block from Gmail's decoded values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class GmailMessage:
    """One ``users.messages.get`` answer, in whichever format was asked for.

    Every format fills the ids, labels, dates, size and snippets. ``metadata`` (and ``full``)
    add the headers: ``headers`` as Gmail sent them (values already decoded, so a display name
    may hold CR LF or a NUL: never parse them), ``header_block`` the same headers as an
    RFC 5322 block with every such value made safe, and ``header_notes`` what had to be made
    safe. ``raw`` and ``full`` fill ``mime``: the message's bytes for the parser (``raw``
    exactly; ``full`` its safe headers and first text part, attachments never downloaded).
    """

    id: str
    thread_id: str = ""
    label_ids: tuple[str, ...] = ()
    internal_date: datetime | None = None
    size_estimate: int = 0
    # Gmail's snippet is HTML-escaped (``We&#39;d``): ``snippet`` is it unescaped once (text);
    # ``snippet_escaped`` is it as sent, which the fallback email id of a message without a
    # Message-ID has always hashed (stored ids must not change).
    snippet: str = ""
    snippet_escaped: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    header_block: bytes = b""
    header_notes: tuple[str, ...] = ()
    # Names of the headers whose decoded value held control characters (one line each).
    control_header_names: tuple[str, ...] = ()
    mime: bytes = b""

    def header(self, name: str) -> str:
        """The first value of header ``name`` as Gmail sent it (decoded; "" if absent)."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), "")


class HistoryChangeKind(StrEnum):
    """The four ``users.history`` record kinds capture asks for."""

    MESSAGE_ADDED = "messageAdded"
    MESSAGE_DELETED = "messageDeleted"
    LABELS_ADDED = "labelAdded"
    LABELS_REMOVED = "labelRemoved"


@dataclass(frozen=True)
class HistoryChange:
    """One message's change in a history record. ``label_ids``: for an added message its
    labels; for a label change the labels added or removed; empty for a deletion."""

    kind: HistoryChangeKind
    message_id: str
    label_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryRecord:
    """One ``users.history`` record: its id and its changes, in Gmail's order (added,
    deleted, labels added, labels removed)."""

    id: int
    changes: tuple[HistoryChange, ...] = ()


@dataclass(frozen=True)
class MessageIdPage:
    """One page of ``users.messages.list``: ids (newest first), next token, Gmail's estimate."""

    ids: list[str]
    next_page_token: str = ""
    result_size_estimate: int = 0


@dataclass(frozen=True)
class HistoryPage:
    """One page of ``users.history.list`` and the mailbox's current ``historyId``."""

    records: list[HistoryRecord]
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


@dataclass(frozen=True)
class MailboxProfile:
    """``users.getProfile``: the mailbox, Gmail's counts (estimates) and its current history id."""

    email_address: str
    messages_total: int = 0
    threads_total: int = 0
    history_id: int = 0


@dataclass(frozen=True)
class WatchAnswer:
    """``users.watch``: the history id the watch starts from and when it lapses."""

    history_id: int
    expiration: datetime


@dataclass(frozen=True)
class CreatedDraft:
    """What ``users.drafts.create`` made: the draft, its message, and the thread Gmail filed
    it in (not always the one asked for: a draft that does not fit goes to a new thread)."""

    draft_id: str
    message_id: str
    thread_id: str


class HistoryExpiredError(Exception):
    """``history.list`` answered 404: the start id is older than Gmail keeps; run a full sync."""


class GmailClient(Protocol):
    """One mailbox's Gmail, as capture needs it (read-only scope). Named methods only.

    Rate limits (429, 403 rateLimitExceeded) and 5xx are retried inside with backoff and jitter,
    honouring Retry-After; what still fails raises RetryableError, except per-message failures in
    ``get_messages``, which are reported in ``FetchResult.failed`` so one bad message never stops
    the rest. A grant that lacks the scope raises ConfigurationError naming it.
    """

    def get_profile(self) -> MailboxProfile: ...

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

    def watch(self, *, topic: str, label_ids: Sequence[str] = ()) -> WatchAnswer: ...

    def stop(self) -> None: ...
