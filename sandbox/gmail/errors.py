"""Gmail's error bodies, and the exception the handlers raise to answer with one."""

from __future__ import annotations

from typing import Any

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class GmailError(Exception):
    """An HTTP error answered with Google's JSON error envelope."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str,
        *,
        domain: str = "global",
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"message": self.message, "domain": self.domain}
        detail["reason"] = self.reason
        detail.update(self.extra)
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [detail],
                "status": _STATUS_NAMES.get(self.code, "UNKNOWN"),
            }
        }


def not_found() -> GmailError:
    return GmailError(404, "Requested entity was not found.", "notFound")


def bad_request(message: str, reason: str = "invalidArgument") -> GmailError:
    return GmailError(400, message, reason)


def unauthenticated() -> GmailError:
    return GmailError(
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        "authError",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
        extra={"location": "Authorization", "locationType": "header"},
    )


def insufficient_scope() -> GmailError:
    return GmailError(
        403, "Request had insufficient authentication scopes.", "insufficientPermissions"
    )


def forbidden(message: str) -> GmailError:
    return GmailError(403, message, "forbidden")


def user_rate_limited(retry_after_s: int) -> GmailError:
    message = "User-rate limit exceeded.  Retry after " + str(retry_after_s) + " seconds"
    return GmailError(
        429,
        message,
        "userRateLimitExceeded",
        domain="usageLimits",
        headers={"Retry-After": str(retry_after_s)},
    )


def too_many_concurrent() -> GmailError:
    return GmailError(
        429, "Too many concurrent requests for user", "rateLimitExceeded", domain="usageLimits"
    )


def injected(status: int) -> GmailError:
    """What a fault with this status answers, in the shape Gmail uses for it."""
    if status == 429:
        return user_rate_limited(1)
    if status == 403:
        return GmailError(
            403, "User Rate Limit Exceeded", "rateLimitExceeded", domain="usageLimits"
        )
    if status == 503:
        return GmailError(503, "The service is currently unavailable.", "backendError")
    if status == 500:
        return GmailError(500, "Backend Error", "backendError")
    if status == 400:
        return GmailError(400, "Precondition check failed.", "failedPrecondition")
    if status == 404:
        return not_found()
    return GmailError(status, "Injected fault", "backendError")
