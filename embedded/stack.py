"""The local stack: the sandbox's token issuer plus the local server, configured together.

Used by the demo, the end-to-end tests and ``make serve``. Configuration goes through the same
``CRM_*`` environment variables an operator sets, so the code under test reads settings exactly
as it does in the cloud; this module only chooses local values for them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from embedded import sandbox_sign_in
from embedded.server import LocalServer
from sandbox.gmail import GmailSandbox, RunningGmailSandbox, serve_gmail_sandbox
from sandbox.issuer import RunningIssuer, serve_issuer
from sandbox.scenario import TEAM_DOMAINS
from sandbox.smtp_sink import SmtpSink
from shared import wiring
from shared.config import get_settings
from shared.domain.tenancy import domain_of

PEOPLE_AUDIENCE = "admin-console.apps.local"
SCHEDULER_IDENTITY = "scheduler@crm-local.iam.gserviceaccount.com"
PUSH_IDENTITY = "pubsub-push@crm-local.iam.gserviceaccount.com"
DRAFTING_AGENT_IDENTITY = "drafting-agent@crm-local.iam.gserviceaccount.com"
GMAIL_KEY_SECRET = "gmail-dwd-key"
GMAIL_WATCH_TOPIC = "projects/sandbox-project/topics/gmail-watch"
SMTP_PASSWORD_SECRET = "smtp-password"


@dataclass(frozen=True)
class Stack:
    issuer: RunningIssuer
    server: LocalServer
    gmail: GmailSandbox
    gmail_server: RunningGmailSandbox
    smtp: SmtpSink

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def person_token(self, email: str) -> str:
        """An ID token for a person signed in to the admin console: a Workspace account, so
        its hosted domain (``hd``) is its address's domain."""
        return self.issuer.mint(email, PEOPLE_AUDIENCE, hosted_domain=domain_of(email))

    def service_token(self, email: str, function_name: str) -> str:
        """An ID token for a service identity calling one function (audience = its URL)."""
        return self.issuer.mint(email, f"{self.base_url}/{function_name}")


class LocalPushSigner:
    """The sandbox's push, signed as the local queue signs its deliveries."""

    def mint(self, email: str, audience: str) -> str:
        return wiring.local_token_minter(email, audience)


def sandbox_environment(
    issuer: RunningIssuer, gmail: GmailSandbox, gmail_url: str
) -> dict[str, str]:
    """The ``CRM_*`` values that point the service at the sandbox: its issuer's certificates,
    the Gmail sandbox (delegation through the sandbox's service-account key, held as a secret
    as an operator would, and granted both scopes), SQLite and the in-process queue. Shared by
    the tests' stack and ``make serve``'s sandbox mode."""
    import json

    from shared.adapters.gmail.credentials import SCOPE_COMPOSE, SCOPE_READONLY

    key_info = gmail.service_account_info()
    gmail.grant_scopes(key_info["client_id"], [SCOPE_READONLY, SCOPE_COMPOSE])
    return {
        "CRM_STORE_BACKEND": "sqlite",
        "CRM_QUEUE_BACKEND": "local",
        "CRM_TOKEN_CERTS_URL": issuer.certs_url,
        "CRM_TOKEN_ISSUERS": issuer.issuer.issuer,
        "CRM_PEOPLE_AUDIENCE": PEOPLE_AUDIENCE,
        "CRM_SCHEDULER_IDENTITY": SCHEDULER_IDENTITY,
        "CRM_PUSH_IDENTITY": PUSH_IDENTITY,
        "CRM_DRAFTING_AGENT_IDENTITIES": DRAFTING_AGENT_IDENTITY,
        "CRM_GMAIL_API_ENDPOINT": gmail_url,
        "CRM_GMAIL_KEY_SECRET": GMAIL_KEY_SECRET,
        "CRM_SECRET_GMAIL_DWD_KEY": json.dumps(key_info),
        "CRM_GMAIL_WATCH_TOPIC": GMAIL_WATCH_TOPIC,
    }


@contextlib.contextmanager
def local_stack(
    *,
    sqlite_path: Path,
    bootstrap_admin: str = "",
    team_domains: Sequence[str] = TEAM_DOMAINS,
    env: Mapping[str, str] | None = None,
    start_ticker: bool = True,
    tick_interval_s: float = 1.0,
    gmail: GmailSandbox | None = None,
) -> Iterator[Stack]:
    """Start the issuer, the Gmail sandbox, an SMTP sink and the local server on loopback
    ports; stop all
    on exit. Gmail delegation goes through the sandbox's service-account key (held as a secret,
    as an operator would), and the sandbox pushes watch notifications to ``gmail_push`` with a
    token for the push identity, as Pub/Sub would.

    ``team_domains`` is the fund's ``CRM_TEAM_DOMAINS`` (the scenario's by default; empty leaves
    it to the bootstrap admin's domain, as on a machine where the operator did not set it).
    The caller's environment is restored on exit.
    """
    saved = os.environ.copy()
    gmail = gmail or GmailSandbox()
    try:
        with (
            serve_issuer() as issuer,
            serve_gmail_sandbox(gmail) as gmail_server,
            SmtpSink() as smtp,
        ):
            os.environ.update(
                {
                    **sandbox_environment(issuer, gmail, gmail_server.base_url),
                    "CRM_SQLITE_PATH": str(sqlite_path),
                    "CRM_BOOTSTRAP_ADMIN": bootstrap_admin,
                    "CRM_TEAM_DOMAINS": ",".join(team_domains),
                    # The digest's SMTP fallback: a loopback sink with AUTH (no TLS on loopback).
                    "CRM_SMTP_HOST": smtp.host,
                    "CRM_SMTP_PORT": str(smtp.port),
                    "CRM_SMTP_SECURITY": "none",
                    "CRM_SMTP_USER": smtp.user,
                    "CRM_SMTP_PASSWORD_SECRET": SMTP_PASSWORD_SECRET,
                    "CRM_SECRET_SMTP_PASSWORD": smtp.password,
                    "CRM_SMTP_FROM": smtp.user,
                    **(env or {}),
                }
            )
            wiring.reset()
            # In the sandbox and real modes only the local key may vouch for the ticker, the
            # queue and the push (shared.adapters.auth); the cloud mode trusts the issuer for all.
            local = get_settings().mode != "cloud"
            server = LocalServer(
                token_minter=wiring.local_token_minter if local else issuer.mint,
                start_ticker=start_ticker,
                tick_interval_s=tick_interval_s,
                extra_mounts={
                    sandbox_sign_in.MOUNT: sandbox_sign_in.SandboxSignIn(
                        issuer.mint, PEOPLE_AUDIENCE, team_domains
                    )
                },
            )
            # Service callers' audience is the function's URL, known once the port is bound.
            os.environ["CRM_FUNCTIONS_BASE_URL"] = server.base_url
            wiring.reset()
            gmail.set_push_target(
                f"{server.base_url}/gmail_push",
                identity_email=PUSH_IDENTITY,
                audience=f"{server.base_url}/gmail_push",
                issuer=LocalPushSigner() if local else issuer.issuer,
            )
            server.start()
            try:
                yield Stack(
                    issuer=issuer, server=server, gmail=gmail, gmail_server=gmail_server, smtp=smtp
                )
            finally:
                server.stop()
                gmail.close()
                wiring.reset()
    finally:
        os.environ.clear()
        os.environ.update(saved)
