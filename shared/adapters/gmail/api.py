"""The GmailClient port over google-api-python-client, for one mailbox.

* The service is ``discovery.build("gmail", "v1", static_discovery=True)`` pointed at
  ``endpoint`` (Google's in production, the sandbox locally) through ``client_options``, built
  lazily once per instance. googleapiclient and httplib2 are imported inside functions, so
  importing this module costs nothing on a cold path that never touches Gmail.
* httplib2 is not thread-safe: every thread gets its own
  ``AuthorizedHttp(credentials, http=httplib2.Http(timeout=...))`` and passes it to
  ``execute(http=...)``. The credentials are shared (one token for the mailbox).
* Batches go to ``<endpoint>/batch/gmail/v1`` (``new_batch_http_request()`` would ignore the
  endpoint override), at most ``batch_size`` (25) parts, written and read by ``BatchWire``
  rather than ``BatchHttpRequest`` (why: its docstring), with the library's parts and its
  re-send of 401 parts after a token refresh.
* Retries: 429, 5xx, 403 ``rateLimitExceeded``/``userRateLimitExceeded`` and connection failures
  are retried with exponential backoff and jitter, waiting at least ``Retry-After`` when Google
  sends one. In a batch only the parts that failed that way are sent again (in a smaller batch of
  their own); 404 parts are ``missing``; other part failures, and parts still failing after the
  last attempt, are ``failed[id]``. A single call that still fails raises RetryableError.
* A refused grant or a token without the scope (401, 403 other than rate limits) raises
  ConfigurationError naming the mailbox, the method and the scopes. ``history.list``'s 404
  raises HistoryExpiredError.

``sleep`` and ``rng`` are injectable so tests do not wait.
"""

from __future__ import annotations

import contextlib
import email.message
import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from shared.adapters.gmail.batch import ID_SLOT, BatchWire
from shared.adapters.gmail.wire import (
    decode_history_record,
    decode_message,
    decode_profile,
    decode_watch,
)
from shared.errors import AppError, ConfigurationError, RetryableError
from shared.ports import (
    FetchResult,
    GmailMessage,
    HistoryExpiredError,
    HistoryPage,
    MailboxProfile,
    MessageIdPage,
    WatchAnswer,
)

if TYPE_CHECKING:
    from google.auth.credentials import Credentials as GoogleCredentials

DEFAULT_ENDPOINT = "https://gmail.googleapis.com/"
BATCH_PATH = "batch/gmail/v1"
MAX_BATCH_SIZE = 25
MAX_PAGE_SIZE = 500
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
MESSAGE_FORMATS = frozenset({"minimal", "metadata", "full", "raw"})
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# Gmail's quota units per method (FACTS.md): what the pacer charges before each call.
QUOTA_UNITS: Mapping[str, int] = {
    "getProfile": 1,
    "messages.list": 5,
    "messages.get": 5,
    "history.list": 2,
    "watch": 100,
    "stop": 50,
}
# Gmail's per-user quota is 250 units/s (15,000/min); pace a little below it so that the
# drafting and digest clients of the same user still have room.
DEFAULT_UNITS_PER_SECOND = 240.0


def build_gmail_service(credentials: GoogleCredentials, endpoint: str) -> Any:
    """The Gmail discovery client from the bundled document (no network), pointed at
    ``endpoint`` (Google's, or the sandbox's). Build it once per client object: it is the
    expensive part, and the resource objects it makes are safe to share between threads."""
    from googleapiclient.discovery import build

    return build(
        "gmail",
        "v1",
        credentials=credentials,
        client_options={"api_endpoint": endpoint},
        static_discovery=True,
        cache_discovery=False,
    )


class QuotaPacer:
    """A token bucket charged with each call's quota units *before* the call is sent.

    Without it a backfill runs into Gmail's per-user limit, gets 429s and waits out their
    Retry-After, idling the quota it was refused for; paced, it stays just under the limit and is
    never refused. The burst is kept small (one batch of metadata gets): Gmail's own bucket and
    this one drift apart by the request latency, and a large local burst would spend Gmail's.
    Reservations are taken in order under a lock, so threads sharing one mailbox share its pace.
    """

    def __init__(
        self,
        units_per_second: float,
        *,
        burst_units: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if units_per_second <= 0:
            raise ConfigurationError("the Gmail pace must be positive (units per second)")
        self.units_per_second = units_per_second
        self.burst_units = burst_units
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst_units
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, units: float) -> float:
        """Reserve ``units``; sleeps until they are available. Returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(
                self.burst_units, self._tokens + (now - self._last) * self.units_per_second
            )
            self._last = now
            self._tokens -= units
            wait = -self._tokens / self.units_per_second if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: try ``max_attempts`` times in all.

    The n-th wait is drawn from ``[cap/2, cap]`` with ``cap = min(max_delay, base_delay*2**(n-1))``;
    when Gmail sends a ``Retry-After``, that is waited instead (plus a little jitter). A Retry-After
    beyond ``max_retry_after`` is not waited for: the call gives up at once (RetryableError, or
    ``failed`` for a batch part), leaving the wait to the caller's own retry.
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 32.0
    max_retry_after: float = 120.0

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            # Gmail says when the quota is back: wait that, plus a little jitter so clients do
            # not return in lockstep. Waiting longer only idles quota the bucket already holds.
            return retry_after + rng.uniform(0, min(0.05, self.base_delay))
        cap = min(self.max_delay, self.base_delay * (2 ** max(retry - 1, 0)))
        return cap / 2 + rng.uniform(0, cap / 2)


@dataclass(frozen=True)
class _Failure:
    """What went wrong with one call or batch part."""

    status: int  # 0: no HTTP answer (connection dropped, timeout)
    reason: str
    message: str
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        return (
            self.status == 0
            or self.status == 429
            or self.status >= 500
            or (self.status == 403 and self.reason in RATE_LIMIT_REASONS)
        )

    @property
    def refused(self) -> bool:
        """The token or grant does not allow this (scope missing, delegation revoked)."""
        return self.status == 401 or (self.status == 403 and not self.transient)

    def describe(self) -> str:
        text = f"HTTP {self.status}" if self.status else "no response"
        if self.reason:
            text += f" {self.reason}"
        if self.message:
            text += f": {self.message}"
        return text


class GmailApiClient:
    """One mailbox's Gmail through google-api-python-client; implements ``GmailClient``.

    ``credentials`` are google-auth credentials acting as the mailbox, normally
    :func:`shared.adapters.gmail.credentials.delegated_credentials`; ``mailbox`` and ``scopes``
    default to theirs and only name things in error messages. Safe to share between threads.
    """

    def __init__(
        self,
        credentials: GoogleCredentials,
        *,
        mailbox: str | None = None,
        scopes: Sequence[str] | None = None,
        endpoint: str = DEFAULT_ENDPOINT,
        batch_size: int = MAX_BATCH_SIZE,
        http_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        user_id: str = "me",
        pacer: QuotaPacer | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ConfigurationError(
                f"Gmail batch size must be between 1 and {MAX_BATCH_SIZE}, not {batch_size}"
            )
        self._credentials = credentials
        self._mailbox = mailbox or str(getattr(credentials, "mailbox", "") or "") or user_id
        found_scopes = scopes if scopes is not None else getattr(credentials, "scopes", None)
        self._scopes = tuple(found_scopes or ())
        self._endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self._batch_uri = self._endpoint + BATCH_PATH
        self._batch_size = batch_size
        self._http_timeout = http_timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._user_id = user_id
        # Pacing waits are not retries: they use the real clock, whatever ``sleep`` tests inject.
        self._pacer = pacer or QuotaPacer(DEFAULT_UNITS_PER_SECOND)
        self._service_obj: Any = None
        self._users_obj: Any = None
        self._messages_obj: Any = None
        self._build_lock = threading.Lock()
        self._local = threading.local()
        self._https: list[Any] = []
        self._https_lock = threading.Lock()
        self._stats: dict[str, int] = dict.fromkeys(
            ("calls", "batches", "batch_parts", "retries"), 0
        )
        self._stats_lock = threading.Lock()
        self._wires: dict[tuple[str, tuple[str, ...]], BatchWire] = {}

    @property
    def mailbox(self) -> str:
        return self._mailbox

    @property
    def batch_uri(self) -> str:
        return self._batch_uri

    def stats(self) -> dict[str, int]:
        """Requests sent so far: single ``calls``, ``batches`` and their ``batch_parts``, and
        ``retries`` (calls or parts sent again). For logs and benchmarks."""
        with self._stats_lock:
            return dict(self._stats)

    def _count(self, name: str, amount: int = 1) -> None:
        with self._stats_lock:
            self._stats[name] += amount

    # -- the port ---------------------------------------------------------------------------

    def get_profile(self) -> MailboxProfile:
        profile = self._call("getProfile", lambda users: users.getProfile(userId=self._user_id))
        return decode_profile(profile)

    def list_message_ids(
        self, *, query: str = "", page_token: str = "", max_results: int = MAX_PAGE_SIZE
    ) -> MessageIdPage:
        params: dict[str, Any] = {
            "userId": self._user_id,
            "maxResults": max(1, min(int(max_results), MAX_PAGE_SIZE)),
        }
        if query:
            params["q"] = query
        if page_token:
            params["pageToken"] = page_token
        response = self._call("messages.list", lambda users: self._messages().list(**params))
        return MessageIdPage(
            ids=[str(item["id"]) for item in response.get("messages") or ()],
            next_page_token=str(response.get("nextPageToken") or ""),
            result_size_estimate=int(response.get("resultSizeEstimate") or 0),
        )

    def get_messages(
        self,
        ids: Sequence[str],
        *,
        format: str,
        metadata_headers: Sequence[str] = (),
    ) -> FetchResult:
        fmt = format.lower()
        if fmt not in MESSAGE_FORMATS:
            raise ValueError(f"format must be one of {sorted(MESSAGE_FORMATS)}, not {format!r}")
        headers = list(metadata_headers) if fmt == "metadata" else []
        messages: dict[str, GmailMessage] = {}
        failed: dict[str, str] = {}
        missing: list[str] = []
        pending = list(dict.fromkeys(str(message_id) for message_id in ids))
        size = self._batch_size
        attempt = 0
        while pending:
            attempt += 1
            retry: dict[str, _Failure] = {}
            for chunk in _chunks(pending, size):
                outcome = self._run_batch(chunk, fmt, headers)
                answered = sum(1 for result in outcome.values() if not isinstance(result, _Failure))
                if answered and any(
                    isinstance(result, _Failure)
                    and result.status == 429
                    and result.reason == "rateLimitExceeded"
                    for result in outcome.values()
                ):
                    # Gmail refused the parts beyond the user's concurrency limit: send the
                    # retries in batches no larger than what it accepted at once.
                    size = max(1, min(size, answered))
                for message_id, result in outcome.items():
                    if not isinstance(result, _Failure):
                        messages[message_id] = result
                    elif result.status == 404:
                        missing.append(message_id)
                    elif result.refused:
                        raise self._refused("messages.get", result)
                    elif result.transient:
                        retry[message_id] = result
                    else:
                        failed[message_id] = result.describe()
            if not retry:
                break
            retry_after = max((f.retry_after or 0.0 for f in retry.values()), default=0.0)
            if attempt >= self._retry.max_attempts or retry_after > self._retry.max_retry_after:
                if all(f.reason == "batch" for f in retry.values()) and not messages:
                    # The batch endpoint itself never answered: nothing per message to report.
                    raise RetryableError(
                        f"Gmail batch for {self._mailbox} still failing after {attempt} attempts: "
                        f"{next(iter(retry.values())).describe()}",
                        mailbox=self._mailbox,
                        method="messages.get",
                    )
                failed.update({mid: f.describe() for mid, f in retry.items()})
                break
            self._count("retries", len(retry))
            self._sleep(self._retry.delay(attempt, retry_after or None, self._rng))
            pending = list(retry)
        return FetchResult(messages=messages, failed=failed, missing=missing)

    def list_history(self, *, start_history_id: int, page_token: str = "") -> HistoryPage:
        params: dict[str, Any] = {
            "userId": self._user_id,
            "startHistoryId": str(int(start_history_id)),
            "historyTypes": list(HISTORY_TYPES),
            "maxResults": MAX_PAGE_SIZE,
        }
        if page_token:
            params["pageToken"] = page_token
        response = self._call(
            "history.list",
            lambda users: users.history().list(**params),
            not_found=lambda failure: HistoryExpiredError(
                f"history of {self._mailbox} from {start_history_id} is no longer available "
                f"({failure.describe()}): run a full sync"
            ),
        )
        return HistoryPage(
            records=[decode_history_record(record) for record in response.get("history") or ()],
            history_id=int(response.get("historyId") or 0),
            next_page_token=str(response.get("nextPageToken") or ""),
        )

    def watch(self, *, topic: str, label_ids: Sequence[str] = ()) -> WatchAnswer:
        body: dict[str, Any] = {"topicName": topic}
        if label_ids:
            body["labelIds"] = list(label_ids)
            body["labelFilterBehavior"] = "include"
        response = self._call("watch", lambda users: users.watch(userId=self._user_id, body=body))
        return decode_watch(response)

    def stop(self) -> None:
        self._call("stop", lambda users: users.stop(userId=self._user_id))

    def close(self) -> None:
        """Close every connection this client opened (all threads)."""
        with self._https_lock:
            https, self._https = self._https, []
        for http in https:
            http.close()
        self._local = threading.local()

    # -- plumbing ---------------------------------------------------------------------------

    def _service(self) -> Any:
        if self._service_obj is None:
            with self._build_lock:
                if self._service_obj is None:
                    self._service_obj = build_gmail_service(self._credentials, self._endpoint)
        return self._service_obj

    def _users(self) -> Any:
        """``users()``, made once: every resource call builds its methods from the discovery
        document again (``createMethod``, about 8% of capture's CPU when made per call)."""
        if self._users_obj is None:
            users = self._service().users()
            with self._build_lock:
                if self._users_obj is None:
                    self._users_obj = users
        return self._users_obj

    def _messages(self) -> Any:
        """``users().messages()``, made once (see ``_users``); shared by every thread."""
        if self._messages_obj is None:
            messages = self._users().messages()
            with self._build_lock:
                if self._messages_obj is None:
                    self._messages_obj = messages
        return self._messages_obj

    def _http(self) -> Any:
        """This thread's authorized httplib2 connection (httplib2 is not thread-safe)."""
        http = getattr(self._local, "http", None)
        if http is None:
            import google_auth_httplib2
            import httplib2

            http = google_auth_httplib2.AuthorizedHttp(
                self._credentials, http=httplib2.Http(timeout=self._http_timeout)
            )
            self._local.http = http
            with self._https_lock:
                self._https.append(http)
        return http

    def _call(
        self,
        method: str,
        make_request: Callable[[Any], Any],
        *,
        not_found: Callable[[_Failure], Exception] | None = None,
    ) -> Any:
        """Execute one API call with retries; the parsed JSON response."""
        attempt = 0
        while True:
            attempt += 1
            request = make_request(self._users())
            self._pacer.acquire(QUOTA_UNITS.get(method, 5))
            self._count("calls")
            if attempt > 1:
                self._count("retries")
            try:
                return request.execute(http=self._http(), num_retries=0)
            except Exception as exc:
                failure = self._failure(exc)
            if failure.status == 404 and not_found is not None:
                raise not_found(failure)
            if failure.refused:
                raise self._refused(method, failure)
            if not failure.transient:
                raise AppError(
                    f"Gmail {method} for {self._mailbox} failed: {failure.describe()}",
                    mailbox=self._mailbox,
                    method=method,
                    status=failure.status,
                )
            too_long = (failure.retry_after or 0.0) > self._retry.max_retry_after
            if attempt >= self._retry.max_attempts or too_long:
                details: dict[str, Any] = {"mailbox": self._mailbox, "method": method}
                if failure.retry_after is not None:
                    details["retry_after"] = failure.retry_after
                raise RetryableError(
                    f"Gmail {method} for {self._mailbox} still failing after {attempt} "
                    f"attempt(s): {failure.describe()}",
                    **details,
                )
            self._sleep(self._retry.delay(attempt, failure.retry_after, self._rng))

    def _run_batch(
        self, ids: Sequence[str], fmt: str, metadata_headers: list[str]
    ) -> dict[str, GmailMessage | _Failure]:
        """One batch POST of ``messages.get`` parts: each id's message or failure.

        The request and the reply are written and read here (``BatchWire``), not through
        ``BatchHttpRequest``: see its docstring. Like ``BatchHttpRequest.execute``, parts answered
        401 are sent once more after the credentials are refreshed."""
        self._pacer.acquire(QUOTA_UNITS["messages.get"] * len(ids))
        http = self._http()
        wire = self._wire(fmt, metadata_headers)
        try:
            results = self._post_batch(http, wire, ids)
            unauthorized = [
                mid
                for mid, result in results.items()
                if isinstance(result, _Failure) and result.status == 401
            ]
            if unauthorized:
                self._refresh(http)
                results.update(self._post_batch(http, wire, unauthorized))
        except Exception as exc:
            return self._whole_batch(self._failure(exc), ids)
        return results

    def _whole_batch(
        self, failure: _Failure, ids: Sequence[str]
    ) -> dict[str, GmailMessage | _Failure]:
        """The whole POST failed: every part shares its fate."""
        if failure.refused:
            raise self._refused("batch", failure) from None
        whole = _Failure(
            status=failure.status,
            reason="batch" if failure.transient else failure.reason,
            message=failure.describe(),
            retry_after=failure.retry_after,
        )
        return {message_id: whole for message_id in ids}

    def _post_batch(
        self, http: Any, wire: BatchWire, ids: Sequence[str]
    ) -> dict[str, GmailMessage | _Failure]:
        self._count("batches")
        self._count("batch_parts", len(ids))
        credentials = http.credentials
        if not credentials.valid:
            self._refresh(http)
        auth: dict[str, str] = {}
        credentials.apply(auth)
        body, content_type, order = wire.request(ids, auth)
        resp, content = http.request(
            self._batch_uri, method="POST", body=body, headers={"content-type": content_type}
        )
        if resp.status >= 300:
            return self._whole_batch(_http_failure(resp.status, content, resp), ids)
        results: dict[str, GmailMessage | _Failure] = {}
        for index, status, headers, payload in wire.parts(resp.get("content-type", ""), content):
            message_id = order.get(index)
            if message_id is None:
                continue  # an id this batch did not ask for: nothing to attach it to
            if status >= 300:
                results[message_id] = _http_failure(status, payload, headers)
                continue
            try:
                results[message_id] = decode_message(json.loads(payload or b"{}"), fmt=wire.fmt)
            except (KeyError, TypeError, ValueError) as exc:
                # Gmail answered, but not in a shape this client reads: that id alone fails.
                results[message_id] = _Failure(
                    status=200, reason="undecodable", message=type(exc).__name__
                )
        for message_id in ids:
            results.setdefault(
                message_id, _Failure(status=0, reason="batch", message="part missing from reply")
            )
        return results

    def _refresh(self, http: Any) -> None:
        """Refresh the token the way ``BatchHttpRequest`` does before re-sending 401 parts."""
        import google_auth_httplib2

        http.credentials.refresh(google_auth_httplib2.Request(http.http))

    def _wire(self, fmt: str, metadata_headers: list[str]) -> BatchWire:
        """The part template for this format, made once from the library's own request."""
        key = (fmt, tuple(metadata_headers))
        wire = self._wires.get(key)
        if wire is None:
            params: dict[str, Any] = {"userId": self._user_id, "id": ID_SLOT, "format": fmt}
            if metadata_headers:
                params["metadataHeaders"] = metadata_headers
            wire = BatchWire.from_request(self._messages().get(**params), fmt)
            self._wires[key] = wire
        return wire

    def _failure(self, exc: Exception) -> _Failure:
        """Classify what ``execute`` raised; re-raises what is not an HTTP or network failure."""
        import httplib2
        from googleapiclient.errors import HttpError

        if isinstance(exc, AppError):
            raise exc  # credentials already translated (ConfigurationError / RetryableError)
        if isinstance(exc, HttpError):
            reason, message = _error_reason(exc.content)
            return _Failure(
                status=int(exc.resp.status),
                reason=reason,
                message=message or str(getattr(exc.resp, "reason", "") or ""),
                retry_after=_retry_after(exc.resp),
            )
        translated = self._translate_auth(exc)
        if translated is not None:
            raise translated from None
        if isinstance(exc, httplib2.HttpLib2Error | OSError | ConnectionError):
            return _Failure(status=0, reason="", message=type(exc).__name__)
        import http.client

        if isinstance(exc, http.client.HTTPException):
            return _Failure(status=0, reason="", message=type(exc).__name__)
        raise exc

    def _translate_auth(self, exc: Exception) -> AppError | None:
        from google.auth import exceptions

        if not isinstance(exc, exceptions.GoogleAuthError):
            return None
        from shared.adapters.gmail.credentials import translate_auth_error

        return translate_auth_error(exc, self._mailbox, self._scopes)

    def _refused(self, method: str, failure: _Failure) -> ConfigurationError:
        scopes = ", ".join(self._scopes) or "(unknown scopes)"
        return ConfigurationError(
            f"Gmail refused {method} for {self._mailbox} ({failure.describe()}): the delegated "
            f"token with scopes {scopes} does not allow it; check the domain-wide delegation "
            "grant and the scopes requested.",
            mailbox=self._mailbox,
            method=method,
            scopes=list(self._scopes),
            status=failure.status,
        )


def _http_failure(status: int, content: Any, headers: Any) -> _Failure:
    """A non-2xx answer, of the whole POST or of one part, as a failure."""
    reason, message = _error_reason(content)
    if not message:
        phrase = getattr(headers, "reason", "")
        if not phrase:
            with contextlib.suppress(ValueError):
                phrase = HTTPStatus(int(status)).phrase
        message = str(phrase or "")
    return _Failure(
        status=int(status), reason=reason, message=message, retry_after=_retry_after(headers)
    )


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _error_reason(content: Any) -> tuple[str, str]:
    """(reason, message) of a Google JSON error body, e.g. ``rateLimitExceeded``."""
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        return "", ""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return "", ""
    reason = ""
    errors = error.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, Mapping) and item.get("reason"):
                reason = str(item["reason"])
                break
    if not reason and isinstance(error.get("status"), str):
        reason = str(error["status"])
    message = " ".join(str(error.get("message") or "").split())[:300]
    return reason, message


def _retry_after(resp: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), if any."""
    value = resp.get("retry-after") if hasattr(resp, "get") else None
    if not value:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
