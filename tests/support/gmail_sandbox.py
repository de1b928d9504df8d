"""The Gmail sandbox tests' pieces: a served sandbox (``Env``) with real google clients for it,
the mailboxes and scopes it grants, and mail to load."""

from __future__ import annotations

import functools
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import google_auth_httplib2
import httplib2
from google.oauth2 import service_account
from googleapiclient.discovery import build

from sandbox.gmail import GmailSandbox, RunningGmailSandbox, serve_gmail_sandbox
from sandbox.gmail.auth import GOOGLE_TOKEN_URI, new_key_info

ADA = "ada@fund.example"
BOB = "bob@fund.example"
READONLY = "https://www.googleapis.com/auth/gmail.readonly"
METADATA = "https://www.googleapis.com/auth/gmail.metadata"
COMPOSE = "https://www.googleapis.com/auth/gmail.compose"


def make_mail(
    subject: str = "Hello",
    *,
    sender: str = "Investor One <investor@lp.example>",
    to: str = ADA,
    cc: str | None = None,
    bcc: str | None = None,
    body: str = "Hi there, let's talk about the fund.",
    date: datetime | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    html: str | None = None,
    attachment: bytes | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    if bcc:
        message["Bcc"] = bcc
    message["Subject"] = subject
    message["Date"] = format_datetime(date or datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
    message["Message-ID"] = message_id or make_msgid(domain="lp.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="deck.pdf"
        )
    return bytes(message)


@dataclass
class Env:
    sandbox: GmailSandbox
    running: RunningGmailSandbox

    @property
    def base_url(self) -> str:
        return self.running.base_url

    def credentials(
        self,
        subject: str = ADA,
        scopes: Sequence[str] = (READONLY,),
        info: dict[str, Any] | None = None,
    ) -> service_account.Credentials:
        return service_account.Credentials.from_service_account_info(
            info or self.sandbox.service_account_info(), scopes=list(scopes), subject=subject
        )

    def gmail(self, subject: str = ADA, scopes: Sequence[str] = (READONLY,)) -> Any:
        """A real google-api-python-client Gmail service, its own Http (httplib2 is not
        thread-safe), pointed at the sandbox."""
        http = google_auth_httplib2.AuthorizedHttp(
            self.credentials(subject, scopes), http=httplib2.Http(timeout=10)
        )
        return build(
            "gmail",
            "v1",
            http=http,
            client_options={"api_endpoint": self.base_url},
            static_discovery=True,
            cache_discovery=False,
        )


@functools.cache
def _shared_key() -> dict[str, str]:
    """One service-account key for the whole session: RSA generation is the slow part."""
    return new_key_info(
        email="gmail-capture@sandbox-project.iam.gserviceaccount.com",
        project_id="sandbox-project",
        client_id="104857600000000000001",
        token_uri=GOOGLE_TOKEN_URI,
    )


def sandbox_with(**options: Any) -> GmailSandbox:
    options.setdefault("service_account", _shared_key())
    return GmailSandbox(**options)


def serve_env(sandbox: GmailSandbox) -> Generator[Env, None, None]:
    sandbox.add_mailbox(ADA)
    sandbox.add_mailbox(BOB)
    sandbox.grant_scopes(sandbox.client_id, [READONLY, METADATA, COMPOSE])
    with serve_gmail_sandbox(sandbox) as running:
        yield Env(sandbox=sandbox, running=running)
