"""The one Gmail call the reply drafts make: ``users.drafts.create``, for one mailbox.

Deliberately tiny (the hard rule, "agents draft; humans send"): this client has exactly one
method, and nothing in it can send, import or insert mail. The message goes as JSON ``raw``
inside ``{"message": {"raw", "threadId"}}``, never as a media upload (FACTS.md, section 4:
google-api-python-client sends uploads to ``https://`` whatever the endpoint).

Creating a draft is not idempotent, so a failed call is never retried here: a 429, a 5xx or a
dropped connection is a RetryableError (503) for the caller to decide about. A 404 means Gmail
does not know the thread (a ConflictError: the stored sighting is stale); 401/403 mean the
delegation grant lacks ``gmail.compose`` (ConfigurationError naming mailbox and scopes).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.adapters.gmail.api import DEFAULT_ENDPOINT, RATE_LIMIT_REASONS, build_gmail_service
from shared.adapters.gmail.wire import decode_created_draft
from shared.errors import (
    AppError,
    ConfigurationError,
    ConflictError,
    RetryableError,
    UpstreamError,
)
from shared.ports.gmail import CreatedDraft

if TYPE_CHECKING:
    from google.auth.credentials import Credentials as GoogleCredentials


class GmailUpstreamError(UpstreamError):
    """Gmail answered with an error that is neither ours to fix nor worth a retry."""

    code = "bad_gateway"


class GmailDraftsClient:
    """``drafts.create`` in one mailbox, with credentials acting as it (``gmail.compose``)."""

    def __init__(
        self,
        credentials: GoogleCredentials,
        *,
        mailbox: str | None = None,
        scopes: Sequence[str] | None = None,
        endpoint: str = DEFAULT_ENDPOINT,
        http_timeout: float = 60.0,
    ) -> None:
        self._credentials = credentials
        self._mailbox = mailbox or str(getattr(credentials, "mailbox", "") or "") or "me"
        found = scopes if scopes is not None else getattr(credentials, "scopes", None)
        self._scopes = tuple(found or ())
        self._endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self._http_timeout = http_timeout
        self._service: Any = None
        self._lock = threading.Lock()

    def create_draft(self, raw: bytes, thread_id: str) -> CreatedDraft:
        """Create a draft of ``raw`` (RFC 5322 bytes) in ``thread_id``; what Gmail made."""
        import google_auth_httplib2
        import httplib2
        from googleapiclient.errors import HttpError

        body = {
            "message": {
                "raw": base64.urlsafe_b64encode(raw).decode("ascii"),
                "threadId": thread_id,
            }
        }
        with self._lock:
            if self._service is None:
                self._service = build_gmail_service(self._credentials, self._endpoint)
        service = self._service
        # A connection per call: drafts are rare, and httplib2 connections are not thread-safe.
        http = google_auth_httplib2.AuthorizedHttp(
            self._credentials, http=httplib2.Http(timeout=self._http_timeout)
        )
        try:
            request = service.users().drafts().create(userId="me", body=body)
            return decode_created_draft(request.execute(http=http, num_retries=0))
        except HttpError as exc:
            raise self._translate(int(exc.resp.status), exc.content) from None
        except (httplib2.HttpLib2Error, OSError) as exc:
            raise RetryableError(
                f"Gmail drafts.create for {self._mailbox}: no answer ({type(exc).__name__})",
                mailbox=self._mailbox,
            ) from None
        finally:
            http.close()

    def _translate(self, status: int, content: Any) -> AppError:
        reason = _reason(content)
        said = f"HTTP {status}" + (f" {reason}" if reason else "")
        details: dict[str, Any] = {"mailbox": self._mailbox, "method": "drafts.create"}
        if status == 404:
            return ConflictError(
                f"Gmail does not know the thread in {self._mailbox} ({said}): it was deleted "
                "since capture saw it",
                **details,
            )
        if status == 429 or status >= 500 or reason in RATE_LIMIT_REASONS:
            return RetryableError(f"Gmail drafts.create for {self._mailbox}: {said}", **details)
        if status in (401, 403):
            return ConfigurationError(
                f"Gmail refused drafts.create for {self._mailbox} ({said}): the delegated token "
                f"with scopes {', '.join(self._scopes) or '(unknown)'} does not allow it; the "
                "domain-wide delegation grant needs gmail.compose.",
                scopes=list(self._scopes),
                **details,
            )
        return GmailUpstreamError(
            f"Gmail drafts.create for {self._mailbox} failed: {said}", **details
        )


def _reason(content: Any) -> str:
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    try:
        body = json.loads(content) if content else {}
        return str(body["error"]["errors"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
