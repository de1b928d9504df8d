"""The sandbox's sign-in: an ID token of the sandbox issuer for a member of the sandbox fund,
mounted at ``/sandbox/sign-in`` in sandbox mode only (and by the tests' local stack).

It stands where "Sign in with Google" stands in real mode, and only mints a token: whether the
person may do anything is decided, as always, by the admin API's token check and the user
directory (an address that is not a user, or a deactivated one, is refused there, with its
reason). It answers loopback callers only, and only for the fund's domains. A real-mode server
mounts nothing of this and trusts no sandbox issuer, so a token from here is worthless there.

- ``POST {"email", "lifetime_s"}`` -> ``{"id_token", "email", "expires_in"}``
  (``lifetime_s`` 30..3600, default 3600: short tokens let one try expiry);
- ``GET`` -> ``{"team": [...]}``: the fund's users, for the console's sign-in page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from embedded.instance import is_loopback
from shared.domain.tenancy import domain_of

MOUNT = "/sandbox"  # the local server's mount; the app answers its /sign-in
PATH = MOUNT + "/sign-in"
MAX_LIFETIME_S = 3600
MIN_LIFETIME_S = 30

# (email, audience, *, expires_in, hosted_domain) -> token
Mint = Callable[..., str]


def fund_team() -> list[dict[str, Any]]:
    """The fund's users as the sign-in page lists them (the sandbox's own made-up people)."""
    from shared import wiring

    return [
        {"email": u.email, "name": u.name, "role": u.role.value, "active": u.is_active}
        for u in wiring.store().list_users()
    ]


class SandboxSignIn:
    def __init__(
        self,
        mint: Mint,
        audience: str,
        domains: Iterable[str],
        team: Callable[[], list[dict[str, Any]]] = fund_team,
    ) -> None:
        self._mint = mint
        self._audience = audience
        self._domains = frozenset(domains)
        self._team = team

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        response = self._answer(Request(environ))
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if request.path.rstrip("/") != "/sign-in":
            return _json({"error": "not_found", "reason": "no such sandbox path"}, 404)
        if not is_loopback(request.remote_addr or ""):
            return _json({"error": "forbidden", "reason": "sandbox sign-in is loopback only"}, 403)
        if request.method == "GET":
            return _json({"team": self._team()})
        if request.method != "POST":
            return _json({"error": "method_not_allowed", "reason": "GET or POST"}, 405)
        body = request.get_json(silent=True)
        email = body.get("email") if isinstance(body, dict) else None
        if not isinstance(email, str) or "@" not in email or len(email) > 254:
            return _json({"error": "bad_request", "reason": 'body must be {"email": ...}'}, 400)
        email = email.strip().lower()
        if domain_of(email) not in self._domains:
            reason = "only the sandbox fund's domains sign in"
            return _json({"error": "forbidden", "reason": reason}, 403)
        assert isinstance(body, dict)
        lifetime = body.get("lifetime_s", MAX_LIFETIME_S)
        if not isinstance(lifetime, int) or not MIN_LIFETIME_S <= lifetime <= MAX_LIFETIME_S:
            reason = f"lifetime_s must be {MIN_LIFETIME_S}..{MAX_LIFETIME_S}"
            return _json({"error": "bad_request", "reason": reason}, 400)
        token = self._mint(
            email, self._audience, expires_in=lifetime, hosted_domain=domain_of(email)
        )
        return _json({"id_token": token, "email": email, "expires_in": lifetime})


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
