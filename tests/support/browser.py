"""Driving the console in a real Chromium (Playwright for Python, Debian's chromium binary).

Playwright's own browser download cannot reach its host here, so the browser is the system's
``chromium`` (installed by ``make browser``), or ``CRM_CHROMIUM`` if set.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_DIST = ROOT / "console" / "dist"
SCREENSHOTS = ROOT / "build" / "screenshots"
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
CONSOLE_PATH = "/admin_api/console/"

# A message from a known contact that tries everything a stranger's mail could: every page that
# lists or opens it must render it as text (tests/browser/conftest.py puts it in the mailbox).
HOSTILE_SUBJECT = "<script>alert('subject')</script><img src=x onerror=alert(1)> Fund update"
HOSTILE_NAME = "<img src=x onerror=alert('name')> Zoe"
HOSTILE_BODY = (
    "Hello <script>alert('body')</script> "
    '<a href="javascript:alert(3)">click</a> '
    '<img src="https://evil.example/p.png" onerror=alert(4)>'
)


def chromium_path() -> str:
    found = os.environ.get("CRM_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise RuntimeError("no Chromium: run `make browser` (Debian's chromium package)")
    return found


@contextlib.contextmanager
def launch_chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class HostileWatch:
    """What a hostile message could make the page do: open a dialog, or reach a foreign origin."""

    origin: str
    dialogs: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    expected_dialogs: int = 0

    @classmethod
    def attach(cls, page: Any, base_url: str) -> HostileWatch:
        parts = urlsplit(base_url)
        watch = cls(origin=f"{parts.scheme}://{parts.netloc}")

        def on_dialog(dialog: Any) -> None:
            watch.dialogs.append(dialog.message)
            dialog.dismiss()

        def on_request(request: Any) -> None:
            url = request.url
            if url.startswith(("data:", "blob:", "about:")):
                return
            target = urlsplit(url)
            if f"{target.scheme}://{target.netloc}" != watch.origin:
                watch.foreign_requests.append(url)

        page.on("dialog", on_dialog)
        page.on("request", on_request)
        return watch

    def assert_clean(self) -> None:
        assert self.dialogs == [], f"a script ran and opened dialogs: {self.dialogs}"
        assert self.foreign_requests == [], f"requests left the origin: {self.foreign_requests}"


@dataclass
class ConsolePage:
    page: Any
    base_url: str
    watch: HostileWatch

    @property
    def url(self) -> str:
        return self.base_url + CONSOLE_PATH

    def open(self, route: str = "") -> Any:
        """Load the console (a fresh load: the token is gone, as after a reload)."""
        response = self.page.goto(f"{self.url}#/{route}")
        return response

    def sign_in(self, email: str, *, lifetime_s: int | None = None) -> None:
        """The sandbox sign-in: pick a team member (or type an address)."""
        page = self.page
        page.get_by_role("heading", name="Sign in").wait_for()
        if lifetime_s is not None:
            page.get_by_label("Token lifetime (seconds)").fill(str(lifetime_s))
            page.get_by_label("Another address").fill(email)
            page.get_by_role("button", name="Sign in", exact=True).click()
        else:
            page.get_by_role("button", name=_team_name(email)).click()
        page.get_by_role("button", name="Sign out").wait_for()

    def go(self, route: str) -> None:
        self.page.evaluate("route => { location.hash = route }", f"#/{route}")

    def axe_serious(self, browser: Any, route: str, email: str) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations on one page, run in a separate context
        that bypasses the CSP (axe is injected as a script), so the CSP stays on elsewhere."""
        context = browser.new_context(bypass_csp=True)
        try:
            page = context.new_page()
            other = ConsolePage(page=page, base_url=self.base_url, watch=self.watch)
            other.open(route)
            other.sign_in(email)
            other.go(route)
            page.wait_for_load_state("networkidle")
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("async () => (await axe.run(document)).violations")
            return [v for v in result if v.get("impact") in ("serious", "critical")]
        finally:
            context.close()


_NAMES = {"ada@fund.example": "Ada Admin", "ben@fund.example": "Ben Member"}


def _team_name(email: str) -> str:
    return _NAMES.get(email, email)
