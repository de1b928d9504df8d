"""The hard rule in code: agents draft; humans send.

Scans every ``.py`` under ``shared/``, ``functions/`` and ``embedded/`` (not tests, not the
sandbox) and fails on:

* a ``.send(``/``.sendmail(``/``.send_message(`` call, an ``smtplib``/``aiosmtplib`` import
  (or ``__import__``/``import_module`` of one), or a string containing ``/send``, anywhere but
  the digest's two transport modules (:data:`SEND_MODULES`);
* anywhere at all, those two included: ``drafts().send(``, ``messages().import_(`` or
  ``messages().insert(`` (also through ``getattr``), or a ``drafts/send``, ``messages/import``
  or ``messages/insert``-style URL string.

The checker is run on small sources with each kind of violation first, so the test proves it
can fail.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

NOW = datetime.now(UTC)

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("shared", "functions", "embedded")
# The digest's transports (another issue builds them): the only places that may send at all.
SEND_MODULES = frozenset({"shared/adapters/gmail/send.py", "shared/adapters/smtp.py"})
SEND_ATTRIBUTES = frozenset({"send", "sendmail", "send_message"})
SMTP_MODULES = frozenset({"smtplib", "aiosmtplib"})
GMAIL_RESOURCES = frozenset({"drafts", "messages"})
NEVER_ATTRIBUTES = {"drafts": {"send"}, "messages": {"import_", "insert"}}
# A path segment that is exactly "send" (Gmail's .../messages/send, .../drafts/send), not a word
# that starts with it, such as the admin API's own "/digest/send-now" route.
_SEND_PATH = re.compile(r"/send(?![-\w])")
_NEVER_URL = re.compile(r"(drafts/send|messages/import|/messages:?insert|users/[^/\s]+/messages$)")


def _resource(node: ast.expr) -> str | None:
    """``drafts`` for ``<x>.drafts()``: the Gmail resource a method is called on, if any."""
    func = node.func if isinstance(node, ast.Call) else None
    if isinstance(func, ast.Attribute) and func.attr in GMAIL_RESOURCES:
        return func.attr
    return None


def violations(source: str, path: str) -> list[str]:
    """What in ``source`` (the module at repo-relative ``path``) breaks the rule."""
    may_send = path in SEND_MODULES
    found: list[str] = []

    def say(node: ast.AST, what: str) -> None:
        found.append(f"{path}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                resource = _resource(func.value)
                if resource and func.attr in NEVER_ATTRIBUTES[resource]:
                    say(node, f"{resource}.{func.attr} is never called")
                elif func.attr in SEND_ATTRIBUTES and not may_send:
                    say(node, f".{func.attr}( outside the digest transports")
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            dynamic = name in {"__import__", "import_module"}
            if dynamic and not may_send and any(a in SMTP_MODULES for a in args):
                say(node, "SMTP imported dynamically")
            if name == "getattr" and len(args) >= 1:
                attr = args[-1]
                if attr in {"import_", "insert"} and _resource(node.args[0]):
                    say(node, f"getattr(..., {attr!r}) on a Gmail resource")
                if attr in SEND_ATTRIBUTES and not may_send:
                    say(node, f"getattr(..., {attr!r}) outside the digest transports")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            )
            for module in modules:
                if (module or "").split(".")[0] in SMTP_MODULES and not may_send:
                    say(node, f"import of {module} outside the SMTP transport")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _NEVER_URL.search(node.value):
                say(node, f"a never-allowed Gmail URL in {node.value[:60]!r}")
            elif _SEND_PATH.search(node.value) and not may_send:
                say(node, f"a '/send' string outside the digest transports: {node.value[:60]!r}")
    return found


def scanned_files() -> list[Path]:
    return sorted(p for folder in SCANNED for p in (ROOT / folder).rglob("*.py"))


def test_nothing_outside_the_digest_transports_can_send() -> None:
    files = scanned_files()
    assert len(files) > 20  # the scan really looks at the code
    # The exemption names files that exist: a moved transport must not leave a stale pass.
    assert all((ROOT / module).is_file() for module in SEND_MODULES)
    found = [
        v
        for path in files
        for v in violations(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    ]
    assert found == []


BAD = {
    "gmail send": 'svc.users().messages().send(userId="me", body={"raw": r}).execute()',
    "drafts send": 'svc.users().drafts().send(userId="me", body={"id": d})',
    "import": 'svc.users().messages().import_(userId="me", body={})',
    "insert": 'svc.users().messages().insert(userId="me", body={})',
    "getattr insert": 'getattr(svc.users().messages(), "insert")(userId="me")',
    "getattr send": 'getattr(client, "send")(raw)',
    "smtplib": "import smtplib",
    "smtplib from": "from smtplib import SMTP",
    "aiosmtplib": "import aiosmtplib.smtp",
    "dynamic import": 'importlib.import_module("smtplib")',
    "send url": 'URL = "https://gmail.googleapis.com/gmail/v1/users/me/messages/send"',
    "drafts send url": 'requests.post(base + "/gmail/v1/users/me/drafts/send")',
    "send url with a query": 'URL = f"{base}/gmail/v1/users/me/messages/send?uploadType=media"',
    "import url": 'u = "gmail/v1/users/me/messages/import"',
    "insert url": 'u = "https://gmail.googleapis.com/gmail/v1/users/me/messages"',
    "socket send": "sock.send(b'x')",
}


@pytest.mark.parametrize("source", BAD.values(), ids=list(BAD))
def test_the_checker_catches_each_kind_of_violation(source: str) -> None:
    assert violations(source, "shared/services/anything.py")


ALLOWED_IN_TRANSPORT = {
    "gmail send": BAD["gmail send"],
    "smtplib": BAD["smtplib"],
    "send url": BAD["send url"],
}
NEVER_EVEN_IN_TRANSPORT = ("drafts send", "import", "insert", "drafts send url", "import url")


@pytest.mark.parametrize("source", ALLOWED_IN_TRANSPORT.values(), ids=list(ALLOWED_IN_TRANSPORT))
def test_the_digest_transports_may_send(source: str) -> None:
    for module in SEND_MODULES:
        assert violations(source, module) == []


@pytest.mark.parametrize("name", NEVER_EVEN_IN_TRANSPORT)
def test_drafts_send_import_and_insert_are_refused_even_in_the_transports(name: str) -> None:
    for module in SEND_MODULES:
        assert violations(BAD[name], module)


def test_drafting_code_is_clean_and_lists_insert_is_not_gmail() -> None:
    clean = (
        "items = []\nitems.insert(0, 1)\n"
        'svc.users().drafts().create(userId="me", body={"message": {"raw": r}})\n'
    )
    assert violations(clean, "shared/services/drafts.py") == []


def test_the_session_guard_catches_a_non_admin_send_and_drafts_send() -> None:
    """Runs the real client against a served sandbox, breaks the rule on purpose, and checks
    that ``tests/support/send_guard.py`` reports it (then takes that sandbox off the session's
    list)."""
    import base64

    import google_auth_httplib2
    import httplib2
    import requests
    from googleapiclient.discovery import build

    from sandbox.scenario import message
    from shared.adapters.gmail.credentials import SCOPE_COMPOSE, delegated_credentials
    from tests.support import send_guard
    from tests.support.gmail import gmail_world

    with gmail_world() as world:
        sandbox = world.sandbox
        assert sandbox in send_guard.tracked()
        try:
            sandbox.add_mailbox("ada@fund.example")
            sandbox.allow_send_to(["admin@fund.example"])
            credentials = delegated_credentials(
                "ada@fund.example", [SCOPE_COMPOSE], key_info=world.key_info
            )
            service = build(
                "gmail",
                "v1",
                credentials=credentials,
                client_options={"api_endpoint": world.base_url},
                static_discovery=True,
                cache_discovery=False,
            )
            http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http())

            def send(to: str) -> None:
                _, raw = message(
                    sender="ada@fund.example", to=[to], subject="Digest", body="x", date=NOW
                )
                body = {"raw": base64.urlsafe_b64encode(raw).decode()}
                service.users().messages().send(userId="me", body=body).execute(http=http)

            send("admin@fund.example")
            assert send_guard.send_problems([sandbox]) == []
            send("zoe@zeta.vc")
            refused = requests.post(
                f"{world.base_url}/gmail/v1/users/me/drafts/send", json={"id": "r1"}, timeout=10
            )
            assert refused.status_code == 405
            problems = send_guard.send_problems([sandbox])
            assert len(problems) == 2
            assert "zoe@zeta.vc" in problems[0]
            assert "drafts.send" in problems[1]
        finally:
            send_guard.untrack(sandbox)
    assert sandbox not in send_guard.tracked()


def test_a_route_that_only_starts_with_send_is_not_a_send_url() -> None:
    source = '@api.route("POST", "/digest/send-now", roles=ADMINS)\ndef f(): ...'
    assert violations(source, "functions/admin_api.py") == []
    assert violations('URL = base + "/messages/send"', "functions/admin_api.py")
