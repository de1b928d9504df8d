"""The console under the cloud's other URL layout: the function at its own host's root (a Cloud
Run URL), not under ``/admin_api/``. Everything is relative, so the same build must load there;
and in cloud mode the headers admit Google's sign-in and nothing else foreign."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from embedded.server import MAIN_SOURCE
from shared import wiring

GSI = "https://accounts.google.com/gsi/"


@contextlib.contextmanager
def function_at_root() -> Iterator[str]:
    import functions_framework

    app = functions_framework.create_app("admin_api", str(MAIN_SOURCE))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def cloud_root(tmp_path: Any) -> Iterator[str]:
    os.environ.update(
        {
            "CRM_MODE": "cloud",
            "CRM_PEOPLE_AUDIENCE": "123-console.apps.googleusercontent.com",
            "CRM_SQLITE_PATH": str(tmp_path / "crm.sqlite3"),
        }
    )
    wiring.reset()
    with function_at_root() as base:
        yield base


def test_the_console_loads_at_a_function_root_with_cloud_headers(
    cloud_root: str, chromium: Any
) -> None:
    index = requests.get(f"{cloud_root}/console/", timeout=10)
    assert index.status_code == 200
    csp = index.headers["Content-Security-Policy"]
    assert f"script-src 'self' {GSI};" in csp
    assert f"frame-src {GSI}" in csp
    assert f"connect-src 'self' {GSI}" in csp
    assert f"style-src 'self' {GSI}" in csp
    assert index.headers["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"
    config = requests.get(f"{cloud_root}/console/config.json", timeout=10).json()
    assert config == {
        "mode": "cloud",
        "google_client_id": "123-console.apps.googleusercontent.com",
        "time_zone": "UTC",
        "sandbox_sign_in": "",
    }
    # Without the trailing slash the relative base would break: it redirects.
    bare = requests.get(f"{cloud_root}/console", allow_redirects=False, timeout=10)
    assert (bare.status_code, bare.headers["Location"]) == (308, "/console/")

    context = chromium.new_context()
    try:
        page = context.new_page()
        loaded: list[str] = []
        page.on("requestfinished", lambda r: loaded.append(r.url))
        # Google is out of reach here: the page must say so, not hang.
        page.route(f"{GSI}**", lambda route: route.abort())
        page.goto(f"{cloud_root}/console/")
        page.get_by_role("heading", name="Sign in").wait_for()
        page.get_by_text("Google's sign-in script did not load.").wait_for()
        assert f"{cloud_root}/console/config.json" in loaded
        assert any(u.startswith(f"{cloud_root}/console/assets/") for u in loaded)
    finally:
        context.close()
