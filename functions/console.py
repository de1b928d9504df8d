"""The admin console's static files, answered by ``admin_api`` before any token check.

Why here, in the function and not in a bucket: the console and the API then share one origin, so
the ID token never crosses origins, no CORS is needed, and the Content-Security-Policy can say
``'self'``. Why before the router: on the cloud ``admin_api`` runs one request per instance, so a
page load must not import the admin routes or build a verifier for files that carry no data.

The console lives under ``<function root>/console/`` and refers to everything relatively
(Vite's ``base: './'``, API calls to ``../``), so it works whether the function is reached at
``https://REGION-PROJECT.cloudfunctions.net/admin_api/`` or at its own ``run.app`` host root,
and under the local server's ``/admin_api/`` mount. Built files have hashed names and are cached
for a year; ``index.html`` and ``config.json`` are never cached.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

import flask

# console/dist beside functions/: the same relative place in the source tree and in the bundle.
DIST = Path(__file__).resolve().parent.parent / "console" / "dist"
PREFIX = "/console"
GOOGLE_SIGN_IN = "https://accounts.google.com/gsi/"
_LONG_CACHE = "public, max-age=31536000, immutable"
_NO_CACHE = "no-store"


def security_headers(mode: str) -> dict[str, str]:
    """Headers on every console response. Google's sign-in script, frame and styles are allowed
    only where people sign in with Google (real mode and the cloud), never in the sandbox."""
    google = mode != "sandbox"
    extra = f" {GOOGLE_SIGN_IN}" if google else ""
    csp = (
        "default-src 'self'; "
        f"script-src 'self'{extra}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    if google:
        csp += f"; frame-src {GOOGLE_SIGN_IN}; connect-src 'self' {GOOGLE_SIGN_IN}"
        csp += f"; style-src 'self' {GOOGLE_SIGN_IN}"
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if google:
        headers["Cross-Origin-Opener-Policy"] = "same-origin-allow-popups"
    return headers


def client_config() -> dict[str, object]:
    """What the console needs before sign-in. No data: the mode, the OAuth client id (public by
    design: it is in every Google sign-in page) and the fund's time zone."""
    from shared.config import get_settings  # lazily: see _settings_mode

    settings = get_settings()
    return {
        "mode": settings.mode,
        "google_client_id": settings.people_audience if settings.mode != "sandbox" else "",
        "time_zone": settings.fund_time_zone,
        # The local server mounts the sandbox's sign-in beside the functions, in sandbox mode only.
        "sandbox_sign_in": "../../sandbox/sign-in" if settings.mode == "sandbox" else "",
    }


def _settings_mode() -> str:
    """The configured mode. ``shared.config`` is imported here, not at module level: it pulls
    in pydantic-settings (with asyncio, argparse, dotenv), about 15% of ``functions.main``'s
    cold import, which a console request pays only on its first call."""
    from shared.config import get_settings

    return get_settings().mode


_FILES: dict[str, tuple[bytes, str]] = {}


def _file(relative: str) -> tuple[bytes, str] | None:
    """A built file's bytes and type, read once per instance (only files that exist are kept,
    so requests for made-up paths cannot grow the cache); None for anything outside DIST."""
    if relative in _FILES:
        return _FILES[relative]
    root = DIST.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
        kind += "; charset=utf-8"
    _FILES[relative] = found = (path.read_bytes(), kind)
    return found


def serve(request: flask.Request) -> flask.Response | None:
    """The console's answer to ``request``, or None when the request is for the API."""
    path = request.path
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return None
    mode = _settings_mode()
    headers = security_headers(mode)
    if request.method not in ("GET", "HEAD"):
        return _reply(
            b'{"error":"method_not_allowed","reason":"the console is read-only"}',
            405,
            "application/json",
            headers,
            _NO_CACHE,
        )
    if path == PREFIX:
        # The relative base needs the trailing slash: ./assets must resolve under /console/.
        response = flask.Response(status=308, headers=headers)
        response.headers["Location"] = f"{request.script_root}{PREFIX}/"
        return response
    relative = path[len(PREFIX) + 1 :] or "index.html"
    if relative == "config.json":
        body = json.dumps(client_config()).encode()
        return _reply(body, 200, "application/json", headers, _NO_CACHE)
    found = _file(relative)
    if found is None:
        if not (DIST / "index.html").is_file():
            body = b"The console is not built: run `make console` (needs Node.js)."
            return _reply(body, 404, "text/plain; charset=utf-8", headers, _NO_CACHE)
        return _reply(b"not found", 404, "text/plain; charset=utf-8", headers, _NO_CACHE)
    content, kind = found
    cache_control = _LONG_CACHE if relative.startswith("assets/") else _NO_CACHE
    return _reply(content, 200, kind, headers, cache_control)


def _reply(
    body: bytes, status: int, kind: str, headers: dict[str, str], cache_control: str
) -> flask.Response:
    response = flask.Response(body, status=status, content_type=kind, headers=headers)
    response.headers["Cache-Control"] = cache_control
    return response
