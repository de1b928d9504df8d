"""The daily digest's policy and manual sends (admins only; recipients are always admins)."""

from __future__ import annotations

import flask
from pydantic import Field

from functions.admin.schemas import MAX_RECIPIENTS, AddressText, ApiModel
from functions.admin_api import api
from shared import wiring
from shared.domain.models import AuditEntry, Caller, DigestPolicy
from shared.errors import AppError, ErrorKind, UpstreamError
from shared.web import ADMINS


class PolicyChange(ApiModel):
    enabled: bool | None = None
    send_hour: int | None = Field(default=None, ge=0, le=23)


class TestEmail(ApiModel):
    recipients: list[AddressText] = Field(max_length=MAX_RECIPIENTS)


class Sent(ApiModel):
    sent: bool
    transport: str


class DigestTestFailedError(UpstreamError):
    code = "send_failed"


def _policy() -> DigestPolicy:
    from shared.services import digest_schedule

    settings = wiring.get_settings()
    return digest_schedule.load_policy(
        wiring.store(), env_enabled=settings.digest_enabled, env_send_hour=settings.digest_send_hour
    )


@api.route("GET", "/digest/policy", roles=ADMINS, response=DigestPolicy, tag="digest")
def get_digest_policy(request: flask.Request, caller: Caller) -> DigestPolicy:
    """Whether the digest is sent, and at which local hour."""
    return _policy()


@api.route(
    "PATCH", "/digest/policy", roles=ADMINS, body=PolicyChange, response=DigestPolicy, tag="digest"
)
def patch_digest_policy(request: flask.Request, caller: Caller, body: PolicyChange) -> DigestPolicy:
    """Change the policy (audited); fields left out keep their value."""
    from shared.services import digest_schedule

    current = _policy()
    updated = DigestPolicy(
        enabled=current.enabled if body.enabled is None else body.enabled,
        send_hour=current.send_hour if body.send_hour is None else body.send_hour,
    )
    digest_schedule.save_policy(wiring.store(), caller, updated)
    return updated


@api.route(
    "POST", "/digest/send-now", roles=ADMINS, response=Sent, errors=(409, 502, 503), tag="digest"
)
def digest_send_now(request: flask.Request, caller: Caller) -> Sent:
    """Build and send today's digest to the active admins now (audited)."""
    from shared.services import digest_schedule

    transport = digest_schedule.send_now(wiring.digest_runtime(), caller, now=wiring.clock().now())
    return Sent(sent=True, transport=transport)


@api.route(
    "POST",
    "/digest/test-email",
    roles=ADMINS,
    body=TestEmail,
    response=Sent,
    errors=(502, 503),
    tag="digest",
)
def digest_test_email(request: flask.Request, caller: Caller, body: TestEmail) -> Sent:
    """Send a test email to some active admins (never anyone else; audited)."""
    from shared.domain.digest import Digest
    from shared.services import digest_schedule

    runtime = wiring.digest_runtime()
    store = runtime.store
    recipients = digest_schedule.check_test_recipients(
        store, body.recipients, team=wiring.team_domains()
    )
    text = "This is a test of the CRM's daily digest delivery. No action is needed."
    test = Digest(
        subject="CRM digest: test email",
        text=text,
        html=f"<p>{text}</p>",
        has_activity=False,
        user_count=0,
        email_count=0,
        investor_count=0,
    )
    try:
        transport = digest_schedule.deliver(runtime, recipients, test)
    except AppError as exc:
        if exc.kind is ErrorKind.BAD_INPUT:
            raise
        # The transport's own text may carry a credential: it was logged by kind only, and
        # the reply says only that the send failed.
        raise DigestTestFailedError("the test email could not be sent") from None
    store.append_audit(
        AuditEntry(actor=caller.email, action="digest.test_email", details={"to": recipients})
    )
    return Sent(sent=True, transport=transport)
