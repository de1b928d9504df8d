"""One error hierarchy. Each error names its *kind* of failure, never an HTTP status: the web
layer (``shared.web.STATUS_BY_KIND``) maps kinds to statuses in one table, and nothing else does.

Messages must be safe to show a caller: never put a token, secret or credential in one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    """What went wrong, as a caller would act on it (the web layer picks the status)."""

    INTERNAL = "internal"
    BAD_INPUT = "bad_input"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA = "unsupported_media"
    UPSTREAM = "upstream"
    UNAVAILABLE = "unavailable"
    CONFIGURATION = "configuration"


class AppError(Exception):
    """Base of every error the service raises on purpose."""

    kind = ErrorKind.INTERNAL
    code = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "reason": self.message, **self.details}


class BadRequestError(AppError):
    kind = ErrorKind.BAD_INPUT
    code = "bad_request"


class UnauthenticatedError(AppError):
    """No valid token: missing, malformed, forged, expired, wrong audience or issuer."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "unauthenticated"


class ForbiddenError(AppError):
    """A valid token whose caller may not do this (unknown, inactive, wrong role)."""

    kind = ErrorKind.FORBIDDEN
    code = "forbidden"


class NotFoundError(AppError):
    kind = ErrorKind.NOT_FOUND
    code = "not_found"


class ConflictError(AppError):
    """The request is well formed but contradicts stored state (already decided, last admin)."""

    kind = ErrorKind.CONFLICT
    code = "conflict"


class TooLargeError(AppError):
    """The request is more than one call may carry (a file, a batch, a re-match): split it."""

    kind = ErrorKind.TOO_LARGE
    code = "too_large"


class UpstreamError(AppError):
    """A service we call (Gmail, an SMTP server) refused or failed, and a retry will not help."""

    kind = ErrorKind.UPSTREAM
    code = "upstream"


class RetryableError(AppError):
    """Transient: a timeout, a 5xx or 429 upstream, contention. Push deliveries are retried."""

    kind = ErrorKind.UNAVAILABLE
    code = "unavailable"


class ConfigurationError(AppError):
    """A required setting or secret is missing: fail loudly, naming the variable."""

    kind = ErrorKind.CONFIGURATION
    code = "configuration"
