"""The hard rule, checked over the whole test session: nothing mailed anyone but the fund's admins.

A pytest plugin (``pytest_plugins = ["tests.support.send_guard"]`` in ``tests/conftest.py``). Its
session-scoped autouse fixture records every :class:`GmailSandbox` created during the session
and, when the session ends, fails the run if any of them

* recorded a ``messages.send`` with a recipient (To, Cc or Bcc) that is not an admin: an admin is
  an address ending in ``@fund.example`` that the test marked with
  ``sandbox.allow_send_to([...])`` before sending (the digest's tests mark the admins they mail);
* was ever asked for ``drafts.send``, ``messages.import`` or ``messages.insert`` (the sandbox
  records and refuses them);

and the same for every :class:`SmtpSink` (``sandbox/smtp_sink.py``, the digest's SMTP stand-in):
a recorded message whose envelope (RCPT TO) or To/Cc/Bcc names anyone not marked with
``sink.allow_send_to([...])`` (or outside ``@fund.example``) fails the run.

A test that breaks the rule on purpose (to prove this guard catches it) takes its sandbox (or
sink) back with :func:`untrack` after checking :func:`send_problems` itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from sandbox.gmail import GmailSandbox
from sandbox.smtp_sink import SmtpSink

ADMIN_DOMAIN = "@fund.example"

_lock = threading.Lock()
_tracked: list[GmailSandbox | SmtpSink] = []


def tracked() -> list[GmailSandbox | SmtpSink]:
    with _lock:
        return list(_tracked)


def untrack(sandbox: GmailSandbox | SmtpSink) -> None:
    """Forget a sandbox that broke the rule on purpose (its test checked the problems)."""
    with _lock:
        _tracked[:] = [s for s in _tracked if s is not sandbox]


def send_problems(sandboxes: Iterable[GmailSandbox | SmtpSink]) -> list[str]:
    """Every breach of the rule in these sandboxes and sinks, described; empty when none."""
    problems: list[str] = []
    for sandbox in sandboxes:
        admins = sandbox.send_allowed
        if isinstance(sandbox, SmtpSink):
            for message in sandbox.messages:
                outsiders = [
                    r for r in message.recipients if not r.endswith(ADMIN_DOMAIN) or r not in admins
                ]
                if outsiders:
                    problems.append(
                        f"SMTP {message.mail_from} sent {message.subject!r} to non-admin(s) "
                        f"{sorted(outsiders)}"
                    )
            continue
        for sent in sandbox.sends:
            outsiders = [
                r for r in sent.recipients if not r.endswith(ADMIN_DOMAIN) or r not in admins
            ]
            if outsiders:
                problems.append(
                    f"{sent.mailbox} sent {sent.subject!r} to non-admin(s) {sorted(outsiders)}"
                )
        for call in sandbox.forbidden_calls:
            problems.append(f"{call.method} was called (user {call.user_id})")
    return problems


@pytest.fixture(scope="session", autouse=True)
def send_guard() -> Iterator[None]:
    original = GmailSandbox.__init__
    original_sink = SmtpSink.__init__

    def tracking_init(self: GmailSandbox, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        with _lock:
            _tracked.append(self)

    def tracking_sink_init(self: SmtpSink, *args: Any, **kwargs: Any) -> None:
        original_sink(self, *args, **kwargs)
        with _lock:
            _tracked.append(self)

    GmailSandbox.__init__ = tracking_init  # type: ignore[method-assign]
    SmtpSink.__init__ = tracking_sink_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        GmailSandbox.__init__ = original  # type: ignore[method-assign]
        SmtpSink.__init__ = original_sink  # type: ignore[method-assign]
    problems = send_problems(tracked())
    with _lock:
        _tracked.clear()
    if problems:
        pytest.fail(
            "agents draft; humans send: the session mailed someone it must not\n"
            + "\n".join(problems),
            pytrace=False,
        )
