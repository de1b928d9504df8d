"""The sandbox's sign-in for the console: an ID token for a chosen team member, from the sandbox
issuer, mounted by the local server at ``/sandbox/sign-in`` in sandbox mode only.

It stands where Google Identity Services stands in real mode: it only mints a token. Whether
the person may do anything is decided, as always, by the admin API's token check and the user
directory (an address that is not a user, or a deactivated one, is refused there, with its
reason). Real mode never mounts this app (``embedded.server``), and the real verifier does not
trust the sandbox issuer, so a token from here is worthless outside the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from shared.domain.tenancy import domain_of

PATH = "/sandbox/sign-in"
# A token lives an hour, as Google's do; shorter on request so expiry can be tried (min 30 s).
MAX_LIFETIME_S = 3600
MIN_LIFETIME_S = 30

# (email, audience, expires_in, hosted_domain) -> token
Mint = Callable[..., str]


class SandboxSignIn:
    """``POST {"email": ..., "lifetime_s": ...}`` -> ``{"token": ..., "expires_in": ...}``;
    ``GET`` -> the team members one may sign in as (the sandbox fund's users)."""

    def __init__(
        self, mint: Mint, audience: Callable[[], str], team: Callable[[], list[dict[str, Any]]]
    ) -> None:
        self._mint = mint
        self._audience = audience
        self._team = team

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        if request.method == "GET":
            response = _json({"team": self._team()})
        elif request.method == "POST":
            response = self._sign_in(request)
        else:
            response = _json({"error": "method_not_allowed", "reason": "GET or POST"}, 405)
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    def _sign_in(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("email"), str):
            return _json({"error": "bad_request", "reason": 'send {"email": "<address>"}'}, 400)
        email = body["email"].strip().lower()
        if "@" not in email or len(email) > 254:
            return _json({"error": "bad_request", "reason": "not an email address"}, 400)
        lifetime = body.get("lifetime_s", MAX_LIFETIME_S)
        if not isinstance(lifetime, int) or not MIN_LIFETIME_S <= lifetime <= MAX_LIFETIME_S:
            reason = f"lifetime_s must be {MIN_LIFETIME_S}..{MAX_LIFETIME_S}"
            return _json({"error": "bad_request", "reason": reason}, 400)
        token = self._mint(
            email, self._audience(), expires_in=lifetime, hosted_domain=domain_of(email)
        )
        return _json({"token": token, "expires_in": lifetime})


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
