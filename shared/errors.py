"""One error hierarchy. Entry points map these to HTTP statuses; nothing else does.

Messages must be safe to show a caller: never put a token, secret or credential in one.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every error the service raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "reason": self.message, **self.details}


class BadRequestError(AppError):
    status = 400
    code = "bad_request"


class UnauthenticatedError(AppError):
    """No valid token: missing, malformed, forged, expired, wrong audience or issuer."""

    status = 401
    code = "unauthenticated"


class ForbiddenError(AppError):
    """A valid token whose caller may not do this (unknown, inactive, wrong role)."""

    status = 403
    code = "forbidden"


class NotFoundError(AppError):
    status = 404
    code = "not_found"


class ConflictError(AppError):
    """The request is well formed but contradicts stored state (already decided, last admin)."""

    status = 409
    code = "conflict"


class TooLargeError(AppError):
    """The request is more than one call may carry (a file, a batch, a re-match): split it."""

    status = 413
    code = "too_large"


class RetryableError(AppError):
    """Transient: a timeout, a 5xx or 429 upstream, contention. Push deliveries are retried."""

    status = 503
    code = "unavailable"


class ConfigurationError(AppError):
    """A required setting or secret is missing: fail loudly, naming the variable."""

    status = 500
    code = "configuration"
