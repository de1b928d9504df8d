"""The Gmail simulator's state and its Python control API (:class:`GmailSandbox`).

Everything is in memory behind one lock. The HTTP layer (:mod:`sandbox.gmail.server`) turns each
request (or batch part) into one :meth:`GmailSandbox.execute` call, which does what Gmail does in
this order: authenticate the bearer token, check the method's scope and the ``userId``, take a
per-user concurrency slot, apply an injected fault, charge the method's quota units, run it.
"""

from __future__ import annotations

import itertools
import mailbox as mailbox_lib
import math
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.gmail import errors, mime
from sandbox.gmail.auth import (
    GOOGLE_TOKEN_URI,
    AccessToken,
    OAuthAuthority,
    SignCall,
    TokenError,
    new_key_info,
)
from sandbox.gmail.errors import GmailError
from sandbox.gmail.push import PushDelivery, PushSigner, PushTarget, PushWorker
from sandbox.gmail.query import Candidate, parse_query

if TYPE_CHECKING:
    from sandbox.issuer import SandboxIssuer

# Quota units per method (FACTS.md, "Quota and rate limits").
METHOD_UNITS: dict[str, int] = {
    "messages.get": 5,
    "messages.list": 5,
    "history.list": 2,
    "messages.send": 100,
    "drafts.create": 10,
    "threads.get": 10,
    "watch": 100,
    "stop": 50,
    "getProfile": 1,
}
# Methods nothing in the product may call: the sandbox records an attempt and refuses it.
FORBIDDEN_METHODS = frozenset({"drafts.send", "messages.import", "messages.insert"})
MAX_BATCH_PARTS = 100
DEFAULT_PAGE = 100
MAX_PAGE = 500
WATCH_LIFETIME_MS = 7 * 24 * 3600 * 1000
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
_TOPIC = re.compile(r"^projects/[^/]+/topics/[^/]+$")
_TAKEOUT_LABELS = {
    "inbox": "INBOX",
    "sent": "SENT",
    "spam": "SPAM",
    "trash": "TRASH",
    "chat": "CHAT",
    "chats": "CHAT",
    "draft": "DRAFT",
    "drafts": "DRAFT",
    "unread": "UNREAD",
    "opened": "",
    "important": "IMPORTANT",
    "starred": "STARRED",
    "category personal": "CATEGORY_PERSONAL",
    "category social": "CATEGORY_SOCIAL",
    "category promotions": "CATEGORY_PROMOTIONS",
    "category updates": "CATEGORY_UPDATES",
    "category forums": "CATEGORY_FORUMS",
}


class ManualClock:
    """An injectable clock (epoch seconds) that only moves when told to."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class DropConnection(Exception):
    """An injected fault asking the HTTP layer to close the socket without an answer."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    method: str | None
    status: int | None
    remaining: int
    delay_s: float
    drop_connection: bool
    mailbox: str | None

    def matches(self, method: str, mailbox: str | None) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.mailbox is None or self.mailbox == mailbox


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    parsed: mime.ParsedMessage
    label_ids: list[str]
    internal_date_ms: int
    history_id: int

    def ref(self) -> dict[str, str]:
        return {"id": self.id, "threadId": self.thread_id}

    def ref_with_labels(self) -> dict[str, Any]:
        return {"id": self.id, "threadId": self.thread_id, "labelIds": list(self.label_ids)}


@dataclass
class HistoryRecord:
    id: int
    at: float
    message: dict[str, Any]  # {id, threadId, labelIds} as of this change
    kind: str  # one of HISTORY_TYPES
    labels: list[str] = field(default_factory=list)  # for labelAdded / labelRemoved

    def involves(self, label_id: str) -> bool:
        return label_id in self.message["labelIds"] or label_id in self.labels


@dataclass
class Watch:
    topic_name: str
    label_ids: list[str]
    behavior: str  # "include" | "exclude"
    expiration_ms: int


@dataclass(frozen=True)
class Draft:
    id: str
    message_id: str
    thread_id: str
    raw: bytes
    requested_thread_id: str | None


@dataclass(frozen=True)
class SentMessage:
    """One ``messages.send`` call, with the recipients parsed from its headers."""

    mailbox: str
    id: str
    thread_id: str
    raw: bytes
    sender: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    at: float

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.to + self.cc + self.bcc


@dataclass(frozen=True)
class ForbiddenCall:
    """A call nothing in the product may make (``drafts.send``, ``messages.import``/``insert``):
    recorded, then refused with 405."""

    method: str
    user_id: str
    at: float


@dataclass
class Mailbox:
    address: str
    history_id: int
    bucket_tokens: float
    bucket_at: float
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    threads: dict[str, list[str]] = field(default_factory=dict)
    by_rfc822_id: dict[str, str] = field(default_factory=dict)
    history: list[HistoryRecord] = field(default_factory=list)
    history_floor: int = 0
    watch: Watch | None = None
    drafts: list[Draft] = field(default_factory=list)
    units_used: int = 0
    inflight: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    last_push_at: float = float("-inf")


class GmailSandbox:
    """A Gmail API v1 simulator: mailboxes, history, limits, faults, OAuth and push.

    ``clock`` (epoch seconds) drives quota refill, token expiry, ``newer_than:``, watch expiration
    and internal dates of mail added without one; ``seed`` makes ids and history steps
    reproducible; ``units_per_second`` (None: unlimited) with ``burst_s`` seconds of bucket is the
    per-user rate (Gmail: 250); ``concurrency_limit`` is requests in flight per user.
    ``service_account``: the key file of the account the sandbox owns (default: a new RSA key;
    tests may share one to skip key generation).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        seed: int = 0,
        units_per_second: float | None = None,
        concurrency_limit: int = 10,
        burst_s: float = 1.0,
        history_retention_s: float | None = None,
        push_min_interval_s: float = 0.0,
        notify_on_watch: bool = True,
        project_id: str = "sandbox-project",
        service_account: Mapping[str, Any] | None = None,
    ) -> None:
        self.clock: Callable[[], float] = clock or time.time
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self.units_per_second = units_per_second
        self.burst_s = burst_s
        self.concurrency_limit = concurrency_limit
        self.history_retention_s = history_retention_s
        self.push_min_interval_s = push_min_interval_s
        self.notify_on_watch = notify_on_watch
        self.base_url: str | None = None
        self._mailboxes: dict[str, Mailbox] = {}
        self._faults: list[Fault] = []
        self._sends: list[SentMessage] = []
        self._forbidden_calls: list[ForbiddenCall] = []
        self._send_allowed: set[str] = set()
        self._next_id = 0x18C0000000000000 + self._rng.randrange(1 << 40)
        self._push_target: PushTarget | None = None
        self._push_worker = PushWorker()
        self._deliveries: list[PushDelivery] = []
        self._push_seq = itertools.count(int(1e16) + self._rng.randrange(10**6))
        self.oauth = OAuthAuthority(self.clock)
        self._own_info = (
            {str(k): str(v) for k, v in service_account.items()}
            if service_account is not None
            else new_key_info(
                email=f"gmail-capture@{project_id}.iam.gserviceaccount.com",
                project_id=project_id,
                client_id=str(self._rng.randrange(10**20, 10**21)),
                token_uri=GOOGLE_TOKEN_URI,
            )
        )
        self.oauth.register(self._own_info, with_signer=True)

    # ----------------------------------------------------------------- mailboxes and mail

    def add_mailbox(self, address: str) -> None:
        key = address.strip().lower()
        with self._lock:
            if key in self._mailboxes:
                return
            now = self.clock()
            self._mailboxes[key] = Mailbox(
                address=key,
                history_id=self._rng.randrange(1000, 100000),
                bucket_tokens=self._capacity(),
                bucket_at=now,
            )

    def mailboxes(self) -> list[str]:
        with self._lock:
            return sorted(self._mailboxes)

    def add_message(
        self,
        address: str,
        raw: bytes,
        *,
        label_ids: Sequence[str] = ("INBOX",),
        internal_date: datetime | None = None,
    ) -> str:
        """Deliver a message: threads it, advances history, notifies a watch. Returns its id."""
        parsed = mime.parse_message(raw)
        if internal_date is not None:
            if internal_date.tzinfo is None:
                raise ValueError("internal_date must be timezone-aware")
            date_ms: int | None = int(internal_date.timestamp() * 1000)
        else:
            date_ms = mime.date_header_ms(parsed.message)
        with self._lock:
            mb = self._mailbox(address)
            thread_id = self._thread_by_headers(mb, parsed)
            message = self._store(mb, parsed, list(label_ids), thread_id, date_ms)
            return message.id

    def load_eml_files(
        self, address: str, paths: Iterable[str | Path], *, label_ids: Sequence[str] = ("INBOX",)
    ) -> list[str]:
        return [
            self.add_message(address, Path(path).read_bytes(), label_ids=label_ids)
            for path in paths
        ]

    def load_mbox(
        self, address: str, path: str | Path, *, label_ids: Sequence[str] = ("INBOX",)
    ) -> list[str]:
        """Load an mbox; a Takeout ``X-Gmail-Labels`` header, when present, sets the labels."""
        box = mailbox_lib.mbox(str(path), create=False)
        ids = []
        try:
            for key in box.iterkeys():
                raw = box.get_bytes(key)
                parsed = mime.parse_bytes(raw)
                labels = list(label_ids)
                takeout = parsed.get("X-Gmail-Labels")
                if takeout:
                    mapped = [
                        _TAKEOUT_LABELS.get(name.strip().lower(), name.strip())
                        for name in mime.header_text(takeout).split(",")
                    ]
                    labels = [label for label in mapped if label]
                ids.append(self.add_message(address, raw, label_ids=labels))
        finally:
            box.close()
        return ids

    def delete_message(self, address: str, message_id: str) -> None:
        """Permanent delete (not trash): a ``messageDeleted`` history record."""
        with self._lock:
            mb = self._mailbox(address)
            message = mb.messages.pop(message_id, None)
            if message is None:
                raise KeyError(message_id)
            thread = mb.threads.get(message.thread_id, [])
            if message_id in thread:
                thread.remove(message_id)
            if not thread:
                mb.threads.pop(message.thread_id, None)
            if mb.by_rfc822_id.get(message.parsed.message_id) == message_id:
                del mb.by_rfc822_id[message.parsed.message_id]
            self._record(mb, message, "messageDeleted")

    def modify_labels(
        self, address: str, message_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> None:
        """Change labels (trashing is ``add=["TRASH"]``); one history record per kind changed."""
        with self._lock:
            mb = self._mailbox(address)
            message = mb.messages.get(message_id)
            if message is None:
                raise KeyError(message_id)
            added = [label for label in dict.fromkeys(add) if label not in message.label_ids]
            removed = [label for label in dict.fromkeys(remove) if label in message.label_ids]
            if added:
                message.label_ids.extend(added)
                self._record(mb, message, "labelAdded", added)
            if removed:
                message.label_ids[:] = [lab for lab in message.label_ids if lab not in removed]
                self._record(mb, message, "labelRemoved", removed)

    # The user at Gmail's web client: drafts auto-saved while typing, then sent. Gmail reports
    # a send in one of two shapes, and capture must handle both (the tests drive each).

    def save_draft(self, address: str, raw: bytes, *, replaces: str | None = None) -> str:
        """Gmail auto-saving a draft: each save is a new message id labelled DRAFT (in the
        thread its headers name), and the previous save's message (``replaces``) is deleted,
        so the history shows messageAdded + messageDeleted per save. Returns the new id."""
        with self._lock:
            mb = self._mailbox(address)
            parsed = mime.parse_message(raw)
            thread_id = self._thread_by_headers(mb, parsed)
            if replaces is not None:
                thread_id = self._draft_message(mb, replaces).thread_id
            message = self._store(mb, parsed, ["DRAFT"], thread_id, None)
            if replaces is not None:
                self.delete_message(address, replaces)
            return message.id

    def send_draft(self, address: str, draft_message_id: str, *, as_new_message: bool) -> str:
        """The user pressing Send on a draft (one the user saved, or one ``drafts.create``
        made). ``as_new_message``: Gmail adds the sent mail under a new message id labelled
        SENT (same thread) and deletes the draft's message; otherwise the draft's own message
        changes labels (DRAFT removed, SENT added) and keeps its id. Returns the sent mail's
        id. Not a ``messages.send``: nothing is recorded in :attr:`sends`."""
        with self._lock:
            mb = self._mailbox(address)
            draft = self._draft_message(mb, draft_message_id)
            if not as_new_message:
                self.modify_labels(address, draft.id, add=["SENT"], remove=["DRAFT"])
                return draft.id
            sent = self._store(mb, draft.parsed, ["SENT"], draft.thread_id, None)
            self.delete_message(address, draft.id)
            return sent.id

    def _draft_message(self, mb: Mailbox, message_id: str) -> StoredMessage:
        message = mb.messages.get(message_id)
        if message is None or "DRAFT" not in message.label_ids:
            raise KeyError(f"no draft message {message_id!r} in {mb.address}")
        return message

    def expire_history(self, address: str, keep_after: int) -> None:
        """Forget history records up to ``keep_after``: older start ids then get a 404."""
        with self._lock:
            mb = self._mailbox(address)
            mb.history = [record for record in mb.history if record.id > keep_after]
            mb.history_floor = max(mb.history_floor, keep_after)

    def history_id(self, address: str) -> int:
        with self._lock:
            return self._mailbox(address).history_id

    def message_ids(self, address: str, *, include_spam_trash: bool = True) -> list[str]:
        """Ids newest first, as messages.list orders them."""
        with self._lock:
            mb = self._mailbox(address)
            return [
                m.id
                for m in self._sorted(mb)
                if include_spam_trash or not {"SPAM", "TRASH"} & set(m.label_ids)
            ]

    def labels_of(self, address: str, message_id: str) -> list[str]:
        with self._lock:
            return list(self._mailbox(address).messages[message_id].label_ids)

    def thread_of(self, address: str, message_id: str) -> str:
        with self._lock:
            return self._mailbox(address).messages[message_id].thread_id

    @property
    def sends(self) -> list[SentMessage]:
        with self._lock:
            return list(self._sends)

    @property
    def forbidden_calls(self) -> list[ForbiddenCall]:
        """Every ``drafts.send``/``messages.import``/``messages.insert`` attempt (all refused)."""
        with self._lock:
            return list(self._forbidden_calls)

    def allow_send_to(self, addresses: Iterable[str]) -> None:
        """Mark addresses as the fund's admins: the only recipients a recorded send may have.

        The sandbox still records every send; the test session's send guard
        (``tests/support/send_guard.py``) fails the run if a send went to anyone not marked here (or
        outside ``@fund.example``). A test that sends (the digest) marks its admins first.
        """
        with self._lock:
            self._send_allowed.update(a.strip().lower() for a in addresses)

    @property
    def send_allowed(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._send_allowed)

    def drafts(self, address: str) -> list[Draft]:
        with self._lock:
            return list(self._mailbox(address).drafts)

    def watch_of(self, address: str) -> Watch | None:
        with self._lock:
            return self._mailbox(address).watch

    # ----------------------------------------------------------------- limits and faults

    def inject_fault(
        self,
        method: str | None = None,
        *,
        status: int | None = 500,
        count: int = 1,
        delay_s: float = 0.0,
        drop_connection: bool = False,
        mailbox: str | None = None,
    ) -> None:
        """Make the next ``count`` matching requests fail (``status``), stall, or drop.

        ``method`` is a Gmail method name ("messages.get", "history.list", "getProfile", ...),
        "batch" for a whole batch request, or None for any; a batch part is matched by its own
        method. ``status=None`` with ``delay_s`` only slows the request down.
        """
        with self._lock:
            self._faults.append(
                Fault(
                    method=method,
                    status=status,
                    remaining=count,
                    delay_s=delay_s,
                    drop_connection=drop_connection,
                    mailbox=mailbox.lower() if mailbox else None,
                )
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    def units_used(self, address: str) -> int:
        with self._lock:
            return self._mailbox(address).units_used

    def calls(self, address: str) -> dict[str, int]:
        """Requests answered per method (including refused ones) for one mailbox."""
        with self._lock:
            return dict(self._mailbox(address).calls)

    def set_rate(self, units_per_second: float | None, *, burst_s: float | None = None) -> None:
        with self._lock:
            self.units_per_second = units_per_second
            if burst_s is not None:
                self.burst_s = burst_s
            now = self.clock()
            for mb in self._mailboxes.values():
                mb.bucket_tokens, mb.bucket_at = self._capacity(), now

    def _capacity(self) -> float:
        return math.inf if self.units_per_second is None else self.units_per_second * self.burst_s

    # ----------------------------------------------------------------- OAuth

    @property
    def token_uri(self) -> str:
        if self.base_url is None:
            raise RuntimeError("the sandbox is not served yet: use serve_gmail_sandbox()")
        return self.base_url + "/token"

    @property
    def service_account_email(self) -> str:
        return self._own_info["client_email"]

    @property
    def client_id(self) -> str:
        return self._own_info["client_id"]

    def service_account_info(self) -> dict[str, str]:
        """The sandbox's service-account key in Google's JSON key-file format."""
        info = dict(self._own_info)
        if self.base_url is not None:
            info["token_uri"] = self.token_uri
        return info

    def register_service_account(self, info: Mapping[str, Any]) -> None:
        """Trust another key (a key-file dict): its public half verifies assertions by kid."""
        with self._lock:
            self.oauth.register(info)

    def grant_scopes(self, client_id: str, scopes: Iterable[str]) -> None:
        """Domain-wide delegation: allow this client id these scopes (short or full names)."""
        with self._lock:
            self.oauth.grant(client_id, scopes)

    def revoke_scopes(self, client_id: str, scopes: Iterable[str] | None = None) -> None:
        with self._lock:
            self.oauth.revoke(client_id, scopes)

    @property
    def sign_calls(self) -> list[SignCall]:
        with self._lock:
            return list(self.oauth.sign_calls)

    def token_exchange(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The token endpoint's logic; raises TokenError with Google's answer."""
        uris = {GOOGLE_TOKEN_URI}
        if self.base_url is not None:
            uris.add(self.token_uri)
        with self._lock:
            return self.oauth.exchange(form, token_uris=uris, known_subject=self._known_subject)

    def iam_sign(
        self, email: str, rpc: str, body: Mapping[str, Any], authorization: str | None
    ) -> dict[str, str]:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise TokenError(401, "unauthenticated", "Request is missing a bearer token.")
        with self._lock:
            return self.oauth.sign(email, rpc, body, authorization[7:].strip())

    def _known_subject(self, subject: str) -> str | None:
        key = subject.strip().lower()
        return key if key in self._mailboxes else None

    # ----------------------------------------------------------------- push

    def set_push_target(
        self,
        url: str,
        *,
        identity_email: str,
        audience: str,
        issuer: PushSigner,
        subscription: str = "projects/sandbox/subscriptions/gmail-push",
        retry_delays_s: Sequence[float] = (0.05, 0.2, 0.5),
    ) -> None:
        with self._lock:
            self._push_target = PushTarget(
                url=url,
                identity_email=identity_email,
                audience=audience,
                issuer=issuer,
                subscription=subscription,
                retry_delays_s=tuple(retry_delays_s),
            )

    @property
    def push_issuer(self) -> SandboxIssuer | None:
        with self._lock:
            from sandbox.issuer import SandboxIssuer

            issuer = None if self._push_target is None else self._push_target.issuer
            return issuer if isinstance(issuer, SandboxIssuer) else None

    @property
    def deliveries(self) -> list[PushDelivery]:
        with self._lock:
            return list(self._deliveries)

    def wait_for_pushes(self, timeout: float = 5.0) -> bool:
        """Block until every queued push was delivered or given up (True), or timeout."""
        return self._push_worker.wait_idle(timeout)

    def close(self) -> None:
        """Stop the push thread (it restarts on the next notification)."""
        self._push_worker.stop()

    def _notify(self, mb: Mailbox, labels: Iterable[str], *, initial: bool = False) -> None:
        watch, target = mb.watch, self._push_target
        if watch is None or target is None:
            return
        now = self.clock()
        if watch.expiration_ms <= now * 1000:
            return
        if watch.label_ids and not initial:
            hit = bool(set(labels) & set(watch.label_ids))
            if hit != (watch.behavior == "include"):
                return
        if now - mb.last_push_at < self.push_min_interval_s:
            return  # Gmail drops notifications beyond its per-user rate
        mb.last_push_at = now
        delivery = PushDelivery(
            email_address=mb.address,
            history_id=mb.history_id,
            message_id=str(next(self._push_seq)),
            url=target.url,
        )
        self._deliveries.append(delivery)
        self._push_worker.submit(delivery, target)

    # ----------------------------------------------------------------- internals: state

    def _mailbox(self, address: str) -> Mailbox:
        try:
            return self._mailboxes[address.strip().lower()]
        except KeyError:
            raise KeyError(f"unknown mailbox {address!r}") from None

    def _new_id(self) -> str:
        self._next_id += self._rng.randrange(1, 1 << 20)
        return f"{self._next_id:016x}"

    def _advance(self, mb: Mailbox) -> int:
        mb.history_id += self._rng.randint(1, 17)
        return mb.history_id

    def _record(
        self, mb: Mailbox, message: StoredMessage, kind: str, labels: Sequence[str] = ()
    ) -> None:
        message.history_id = self._advance(mb)
        mb.history.append(
            HistoryRecord(
                id=message.history_id,
                at=self.clock(),
                message=message.ref_with_labels(),
                kind=kind,
                labels=list(labels),
            )
        )
        self._notify(mb, [*message.label_ids, *labels])

    def _store(
        self,
        mb: Mailbox,
        parsed: mime.ParsedMessage,
        label_ids: list[str],
        thread_id: str | None,
        date_ms: int | None,
    ) -> StoredMessage:
        message_id = self._new_id()
        message = StoredMessage(
            id=message_id,
            thread_id=thread_id or message_id,
            parsed=parsed,
            label_ids=list(dict.fromkeys(label_ids)),
            internal_date_ms=date_ms if date_ms is not None else int(self.clock() * 1000),
            history_id=0,
        )
        mb.messages[message_id] = message
        mb.threads.setdefault(message.thread_id, []).append(message_id)
        if parsed.message_id:
            mb.by_rfc822_id.setdefault(parsed.message_id, message_id)
        self._record(mb, message, "messageAdded")
        return message

    def _thread_by_headers(self, mb: Mailbox, parsed: mime.ParsedMessage) -> str | None:
        subject = mime.normalised_subject(parsed.subject)
        for reference in reversed(parsed.references):
            known = mb.by_rfc822_id.get(reference)
            if known is None:
                continue
            other = mb.messages[known]
            if mime.normalised_subject(other.parsed.subject) == subject:
                return other.thread_id
        return None

    def _thread_for_api(
        self, mb: Mailbox, parsed: mime.ParsedMessage, thread_id: str | None
    ) -> str | None:
        if not thread_id:
            return None
        if thread_id not in mb.threads:
            raise errors.not_found()
        # Gmail's rule: the requested thread, References/In-Reply-To naming a message in it,
        # and the same subject once reply/forward prefixes are stripped; else a new thread.
        in_thread = [mb.messages[m].parsed for m in mb.threads[thread_id]]
        referenced = set(parsed.references) & {m.message_id for m in in_thread}
        subject = mime.normalised_subject(parsed.subject)
        same_subject = any(mime.normalised_subject(m.subject) == subject for m in in_thread)
        return thread_id if referenced and same_subject else None

    def _sorted(self, mb: Mailbox) -> list[StoredMessage]:
        return sorted(mb.messages.values(), key=lambda m: (m.internal_date_ms, m.id), reverse=True)

    def _expire_by_retention(self, mb: Mailbox) -> None:
        if self.history_retention_s is None:
            return
        cutoff = self.clock() - self.history_retention_s
        stale = [record for record in mb.history if record.at < cutoff]
        if stale:
            self.expire_history(mb.address, stale[-1].id)

    # ----------------------------------------------------------------- the request pipeline

    def authenticate(self, authorization: str | None) -> AccessToken | None:
        with self._lock:
            return self.oauth.lookup(authorization)

    def try_acquire(self, address: str) -> bool:
        with self._lock:
            mb = self._mailboxes.get(address)
            if mb is None or mb.inflight >= self.concurrency_limit:
                return False
            mb.inflight += 1
            return True

    def release(self, address: str) -> None:
        with self._lock:
            mb = self._mailboxes.get(address)
            if mb is not None:
                mb.inflight = max(0, mb.inflight - 1)

    def take_fault(self, method: str, mailbox: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, mailbox):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
            return None

    def apply_fault(self, fault: Fault | None) -> None:
        """Sleep, drop or raise as the fault says (call without holding the lock)."""
        if fault is None:
            return
        if fault.delay_s > 0:
            time.sleep(fault.delay_s)
        if fault.drop_connection:
            raise DropConnection()
        if fault.status is not None:
            raise errors.injected(fault.status)

    def resolve_user(self, token: AccessToken | None, user_id: str) -> str | None:
        """The mailbox a request acts on, or None when the token cannot act on ``user_id``."""
        if token is None or token.subject is None:
            return None
        wanted = token.subject if user_id == "me" else user_id.strip().lower()
        return wanted if wanted == token.subject else None

    def execute(
        self,
        method: str,
        authorization: str | None,
        user_id: str,
        args: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: Mapping[str, Any] | None,
        *,
        reserved: bool | None = None,
    ) -> Reply:
        """One Gmail API call. ``reserved``: None = take a concurrency slot here; True = the
        caller (a batch) holds one; False = the batch could not get one (answer 429)."""
        if method in FORBIDDEN_METHODS:
            with self._lock:
                self._forbidden_calls.append(ForbiddenCall(method, user_id, self.clock()))
            error = errors.GmailError(
                405, f"{method} is refused here: agents draft; humans send", "forbidden"
            )
            return Reply(error.code, error.body(), error.headers)
        token = self.authenticate(authorization)
        address: str | None = None
        holding = False
        try:
            if token is None:
                raise errors.unauthenticated()
            if token.subject is None:
                raise errors.bad_request("Precondition check failed.", "failedPrecondition")
            address = self.resolve_user(token, user_id)
            if address is None:
                raise errors.forbidden(f"Delegation denied for {token.subject}")
            with self._lock:
                self._mailbox(address).calls[method] += 1
            if not token.allows(method):
                raise errors.insufficient_scope()
            if reserved is None:
                holding = self.try_acquire(address)
                if not holding:
                    raise errors.too_many_concurrent()
            elif reserved is False:
                raise errors.too_many_concurrent()
            self.apply_fault(self.take_fault(method, address))
            with self._lock:
                mb = self._mailbox(address)
                self._charge(mb, METHOD_UNITS.get(method, 1))
                handler = self._handlers[method]
                return handler(self, mb, token, args, query, body or {})
        except GmailError as error:
            return Reply(error.code, error.body(), error.headers)
        finally:
            if holding and address is not None:
                self.release(address)

    def _charge(self, mb: Mailbox, units: int) -> None:
        if self.units_per_second is not None:
            rate = self.units_per_second
            capacity = self._capacity()
            now = self.clock()
            mb.bucket_tokens = min(capacity, mb.bucket_tokens + (now - mb.bucket_at) * rate)
            mb.bucket_at = now
            needed = min(units, capacity)
            if mb.bucket_tokens < needed:
                wait = max(1, math.ceil((needed - mb.bucket_tokens) / rate))
                raise errors.user_rate_limited(wait)
            mb.bucket_tokens -= units
        mb.units_used += units

    # ----------------------------------------------------------------- the methods

    def _get_profile(self, mb: Mailbox, *_: Any) -> Reply:
        return Reply(
            200,
            {
                "emailAddress": mb.address,
                "messagesTotal": len(mb.messages),
                "threadsTotal": len(mb.threads),
                "historyId": str(mb.history_id),
            },
        )

    def _messages_list(
        self,
        mb: Mailbox,
        token: AccessToken,
        args: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: Mapping[str, Any],
    ) -> Reply:
        q = _one(query, "q")
        if q and token.metadata_only:
            raise errors.forbidden("Metadata scope does not support 'q' parameter")
        parsed_q = parse_query(q or "", int(self.clock() * 1000))
        wanted_labels = set(_many(query, "labelIds"))
        include_spam_trash = (
            _bool(_one(query, "includeSpamTrash"))
            or parsed_q.reaches_spam_trash
            or bool(wanted_labels & {"SPAM", "TRASH"})
        )
        page_size = _page_size(query)
        hits = []
        for message in self._sorted(mb):
            labels = frozenset(message.label_ids)
            if not include_spam_trash and labels & {"SPAM", "TRASH"}:
                continue
            if not wanted_labels <= labels:
                continue
            if parsed_q.predicates and not parsed_q.matches(
                Candidate(labels, message.internal_date_ms, message.parsed)
            ):
                continue
            hits.append(message)
        start = 0
        page_token = _one(query, "pageToken")
        if page_token:
            start = _decode_list_token(page_token, hits)
        page = hits[start : start + page_size]
        result: dict[str, Any] = {}
        if page:
            result["messages"] = [m.ref() for m in page]
        if start + page_size < len(hits):
            last = page[-1]
            result["nextPageToken"] = f"{last.internal_date_ms}{last.id}"
        result["resultSizeEstimate"] = len(hits)
        return Reply(200, result)

    def _message_resource(
        self, message: StoredMessage, fmt: str, metadata_headers: list[str]
    ) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "id": message.id,
            "threadId": message.thread_id,
            "labelIds": list(message.label_ids),
            "snippet": message.parsed.snippet,
        }
        if fmt == "metadata":
            resource["payload"] = mime.metadata_payload(message.parsed, metadata_headers)
        elif fmt == "full":
            resource["payload"] = mime.full_payload(message.parsed, message.id)
        resource["sizeEstimate"] = len(message.parsed.raw)
        if fmt == "raw":
            resource["raw"] = mime.b64url(message.parsed.raw)
        resource["historyId"] = str(message.history_id)
        resource["internalDate"] = str(message.internal_date_ms)
        return resource

    def _format(self, token: AccessToken, query: Mapping[str, list[str]]) -> str:
        fmt = (_one(query, "format") or "full").lower()
        if fmt not in {"minimal", "metadata", "full", "raw"}:
            raise errors.bad_request(f"Invalid value for format: {fmt}")
        if fmt in {"full", "raw"} and token.metadata_only:
            raise errors.forbidden(f"Metadata scope doesn't allow format {fmt.upper()}")
        return fmt

    def _messages_get(
        self,
        mb: Mailbox,
        token: AccessToken,
        args: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: Mapping[str, Any],
    ) -> Reply:
        fmt = self._format(token, query)
        message = mb.messages.get(args["id"])
        if message is None:
            raise errors.not_found()
        return Reply(200, self._message_resource(message, fmt, _many(query, "metadataHeaders")))

    def _threads_get(
        self,
        mb: Mailbox,
        token: AccessToken,
        args: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: Mapping[str, Any],
    ) -> Reply:
        fmt = self._format(token, query)
        ids = mb.threads.get(args["id"])
        if not ids:
            raise errors.not_found()
        messages = sorted((mb.messages[m] for m in ids), key=lambda m: (m.internal_date_ms, m.id))
        headers = _many(query, "metadataHeaders")
        return Reply(
            200,
            {
                "id": args["id"],
                "historyId": str(max(m.history_id for m in messages)),
                "messages": [self._message_resource(m, fmt, headers) for m in messages],
            },
        )

    def _history_list(
        self,
        mb: Mailbox,
        token: AccessToken,
        args: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: Mapping[str, Any],
    ) -> Reply:
        start_text = _one(query, "startHistoryId")
        if not start_text:
            raise errors.bad_request("Missing required parameter: startHistoryId")
        try:
            start = int(start_text)
        except ValueError:
            raise errors.bad_request("Invalid startHistoryId") from None
        self._expire_by_retention(mb)
        if start < mb.history_floor:
            raise errors.not_found()
        types = {value for raw in _many(query, "historyTypes") for value in raw.split(",") if value}
        unknown = types - set(HISTORY_TYPES)
        if unknown:
            raise errors.bad_request(f"Invalid value for historyTypes: {sorted(unknown)[0]}")
        label_id = _one(query, "labelId")
        after = start
        page_token = _one(query, "pageToken")
        if page_token:
            try:
                after = max(start, int(page_token))
            except ValueError:
                raise errors.bad_request("Invalid pageToken") from None
        page_size = _page_size(query)
        selected = [
            record
            for record in mb.history
            if record.id > after
            and (not types or record.kind in types)
            and (not label_id or record.involves(label_id))
        ]
        page = selected[:page_size]
        result: dict[str, Any] = {}
        if page:
            result["history"] = [_history_json(record) for record in page]
        if len(selected) > page_size:
            result["nextPageToken"] = str(page[-1].id)
        result["historyId"] = str(mb.history_id)
        return Reply(200, result)

    def _watch(
        self,
        mb: Mailbox,
        token: AccessToken,
        args: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: Mapping[str, Any],
    ) -> Reply:
        topic = str(body.get("topicName") or "")
        if not _TOPIC.match(topic):
            raise errors.bad_request(
                "Invalid topicName does not match projects/SOME-ANDROID-PROJECT/topics/*"
            )
        behavior = str(body.get("labelFilterBehavior") or body.get("labelFilterAction") or "")
        label_ids = [str(label) for label in body.get("labelIds") or []]
        expiration = int(self.clock() * 1000) + WATCH_LIFETIME_MS
        mb.watch = Watch(
            topic_name=topic,
            label_ids=label_ids,
            behavior="exclude" if behavior.lower() == "exclude" else "include",
            expiration_ms=expiration,
        )
        if self.notify_on_watch:
            self._notify(mb, [], initial=True)
        return Reply(200, {"historyId": str(mb.history_id), "expiration": str(expiration)})

    def _stop(self, mb: Mailbox, *_: Any) -> Reply:
        mb.watch = None
        return Reply(204, None)

    def _decode_raw(self, mb: Mailbox, raw_text: Any, *, sending: bool) -> bytes:
        if not isinstance(raw_text, str) or not raw_text:
            raise errors.bad_request(
                "'raw' RFC822 payload message string or uploading message "
                "via /upload/* URL required"
            )
        try:
            raw = mime.b64url_decode(raw_text)
        except ValueError:
            raise errors.bad_request("Invalid value for ByteString") from None
        parsed = mime.parse_bytes(raw)
        prefix = b""
        if parsed.get("Message-ID") is None:
            prefix += f"Message-ID: <{secrets.token_hex(16)}@mail.gmail.com>\r\n".encode()
        if sending and parsed.get("From") is None:
            prefix += f"From: {mb.address}\r\n".encode()
        return prefix + raw

    def _drafts_create(
        self,
        mb: Mailbox,
        token: AccessToken,
        args: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: Mapping[str, Any],
    ) -> Reply:
        message_body = body.get("message")
        if not isinstance(message_body, Mapping):
            raise errors.bad_request("Missing draft message")
        raw = self._decode_raw(mb, message_body.get("raw"), sending=False)
        parsed = mime.parse_message(raw)
        requested = message_body.get("threadId")
        thread_id = self._thread_for_api(mb, parsed, str(requested) if requested else None)
        message = self._store(mb, parsed, ["DRAFT"], thread_id, None)
        draft = Draft(
            id="r" + str(self._rng.randrange(10**18, 10**19)),
            message_id=message.id,
            thread_id=message.thread_id,
            raw=raw,
            requested_thread_id=str(requested) if requested else None,
        )
        mb.drafts.append(draft)
        return Reply(
            200,
            {
                "id": draft.id,
                "message": {"id": message.id, "threadId": message.thread_id, "labelIds": ["DRAFT"]},
            },
        )

    def _messages_send(
        self,
        mb: Mailbox,
        token: AccessToken,
        args: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: Mapping[str, Any],
    ) -> Reply:
        raw = self._decode_raw(mb, body.get("raw"), sending=True)
        parsed = mime.parse_message(raw)
        if not (parsed.to or parsed.cc or parsed.bcc):
            raise errors.bad_request("Recipient address required")
        requested = body.get("threadId")
        thread_id = self._thread_for_api(mb, parsed, str(requested) if requested else None)
        message = self._store(mb, parsed, ["SENT"], thread_id, None)
        self._sends.append(
            SentMessage(
                mailbox=mb.address,
                id=message.id,
                thread_id=message.thread_id,
                raw=raw,
                sender=tuple(parsed.sender),
                to=tuple(parsed.to),
                cc=tuple(parsed.cc),
                bcc=tuple(parsed.bcc),
                subject=parsed.subject,
                at=self.clock(),
            )
        )
        return Reply(200, {"id": message.id, "threadId": message.thread_id, "labelIds": ["SENT"]})

    _handlers: dict[str, Callable[..., Reply]] = {
        "getProfile": _get_profile,
        "messages.list": _messages_list,
        "messages.get": _messages_get,
        "threads.get": _threads_get,
        "history.list": _history_list,
        "watch": _watch,
        "stop": _stop,
        "drafts.create": _drafts_create,
        "messages.send": _messages_send,
    }


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _many(query: Mapping[str, list[str]], name: str) -> list[str]:
    return list(query.get(name) or [])


def _bool(value: str | None) -> bool:
    return (value or "").lower() in {"true", "1"}


def _page_size(query: Mapping[str, list[str]]) -> int:
    text = _one(query, "maxResults")
    if not text:
        return DEFAULT_PAGE
    try:
        size = int(text)
    except ValueError:
        raise errors.bad_request(f"Invalid value for maxResults: {text}") from None
    if size < 1:
        raise errors.bad_request(f"Invalid value for maxResults: {text}")
    return min(size, MAX_PAGE)


def _decode_list_token(token: str, hits: list[StoredMessage]) -> int:
    """Position after the message a token names (its internal date + id), so paging is stable
    while newer mail arrives."""
    if len(token) <= 16 or not token[:-16].isdigit():
        raise errors.bad_request("Invalid pageToken")
    key = (int(token[:-16]), token[-16:])
    for index, message in enumerate(hits):
        if (message.internal_date_ms, message.id) < key:
            return index
    return len(hits)


def _history_json(record: HistoryRecord) -> dict[str, Any]:
    ref = {"id": record.message["id"], "threadId": record.message["threadId"]}
    entry: dict[str, Any] = {"id": str(record.id), "messages": [ref]}
    if record.kind == "messageAdded":
        entry["messagesAdded"] = [{"message": dict(record.message)}]
    elif record.kind == "messageDeleted":
        entry["messagesDeleted"] = [{"message": dict(record.message)}]
    elif record.kind == "labelAdded":
        entry["labelsAdded"] = [{"message": dict(record.message), "labelIds": record.labels}]
    else:
        entry["labelsRemoved"] = [{"message": dict(record.message), "labelIds": record.labels}]
    return entry
