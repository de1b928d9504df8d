"""When the daily digest goes out: the policy, the once-per-local-day guard, the cursor, send-now.

- **Policy** ``{enabled, send_hour}``: the stored app setting wins (admins change it live);
  else ``CRM_DIGEST_ENABLED``/``CRM_DIGEST_SEND_HOUR`` seed it; else ``{false, 18}``.
- **Tick** (Cloud Scheduler every 15 minutes, the local ticker on one machine): re-reads the
  policy and, when enabled and at or after ``send_hour`` in the fund's time zone, sends once per
  *local* date. The guard is a create-if-absent record for that date holding ``sending``,
  ``sent`` or ``failed`` and an attempt count: two ticks at once send one digest; a ``failed``
  day, or one stuck ``sending`` past 30 minutes, is tried again, up to 3 attempts. The window is
  (cursor, now], and the cursor moves only after a successful send, so a missed or failed day
  rolls into the next digest. Days of 23 or 25 hours are handled by keying on the local date and
  comparing local hours ("at or after": a send hour skipped by a DST jump sends at the next).
- **Send now**: the last 24 hours, regardless of the policy, touching neither cursor nor guard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared import events
from shared.domain.addresses import canonical_address
from shared.domain.digest import Digest
from shared.domain.models import AuditEntry, Caller, DigestPolicy, Guard
from shared.domain.tenancy import TeamDomains
from shared.errors import BadRequestError
from shared.ports import (
    DigestRuntimeStore,
    GmailTransport,
    Narrator,
    SettingsStore,
    SmtpTransport,
    UserStore,
)
from shared.services.digest import build_digest
from shared.services.mail_transport import send_digest

logger = logging.getLogger(__name__)

POLICY_SETTING = "digest_policy"
CURSOR_SETTING = "digest_cursor"
MAX_ATTEMPTS = 3
STUCK_AFTER = timedelta(minutes=30)
SEND_NOW_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class TickOutcome:
    sent: bool
    reason: str
    local_date: str = ""
    transport: str = ""


@dataclass(frozen=True)
class DigestRuntime:
    """What building and delivering a digest takes from outside: the store, the narrator, the
    transports (Gmail per sender address, SMTP as the fallback, either may be missing) and the
    fund's domains. The composition root builds it (``wiring.digest_runtime``); the functions
    here take it as their first argument."""

    store: DigestRuntimeStore
    narrator: Narrator | None
    gmail_sender_for: Callable[[str], GmailTransport] | None
    smtp: SmtpTransport | None
    team_domains: Callable[[], TeamDomains]
    digest_sender: str = ""
    smtp_from: str = ""
    # Going cold's thresholds (settings CRM_RELATIONSHIP_COLD_DAYS / _DROP).
    cold_days: int = 90
    cold_drop: int = 20


def build(runtime: DigestRuntime, since: datetime, until: datetime) -> Digest:
    """The digest of the window ``(since, until]``."""
    from shared.services import relationships

    cold = relationships.going_cold(
        runtime.store, now=until, cold_days=runtime.cold_days, cold_drop=runtime.cold_drop
    )
    return build_digest(runtime.store, since, until, runtime.narrator, going_cold=cold)


def deliver(runtime: DigestRuntime, to: list[str], digest: Digest) -> str:
    """Send ``digest`` to ``to``; the transport that delivered it (raises when nothing was sent).

    Admins outside the fund's domains (kept and flagged, see ``shared.domain.tenancy``) are left
    out, with a warning, so that one of them does not stop everyone's digest; if no one is left,
    ``send_digest`` refuses (400) and nothing is sent."""
    team = runtime.team_domains()
    kept = [a for a in to if team.admits(a)]
    if kept and len(kept) < len(to):
        logger.warning(
            "digest recipients outside the team domains left out",
            extra={"fields": {"event": "digest_outside_team", "left_out": team.outsiders(to)}},
        )
        to = kept
    result = send_digest(
        runtime.store,
        to,
        digest.subject,
        digest.text,
        digest.html,
        gmail_sender_for=runtime.gmail_sender_for,
        smtp=runtime.smtp,
        team_domains=runtime.team_domains,
        digest_sender=runtime.digest_sender,
        smtp_from=runtime.smtp_from,
    )
    return result.transport


def load_policy(
    store: SettingsStore, *, env_enabled: bool | None = None, env_send_hour: int | None = None
) -> DigestPolicy:
    """The stored policy, else the environment's seed, else ``{enabled: false, send_hour: 18}``."""
    stored = store.get_setting(POLICY_SETTING)
    if stored is not None:
        return DigestPolicy.model_validate(stored)
    seeded = DigestPolicy()
    if env_enabled is not None:
        seeded = seeded.model_copy(update={"enabled": env_enabled})
    if env_send_hour is not None:
        seeded = DigestPolicy(enabled=seeded.enabled, send_hour=env_send_hour)
    return seeded


def save_policy(store: SettingsStore, caller: Caller, policy: DigestPolicy) -> DigestPolicy:
    store.set_setting(POLICY_SETTING, policy.model_dump())
    store.append_audit(
        AuditEntry(
            actor=caller.email,
            action="digest.policy",
            target=POLICY_SETTING,
            details=policy.model_dump(),
        )
    )
    return policy


def admin_recipients(store: UserStore) -> list[str]:
    return [user.email for user in store.list_active_admins()]


def guard_id(local_date: str) -> str:
    return f"digest:{local_date}"


def _claim_day(store: SettingsStore, local_date: str, now: datetime, run_id: str) -> Guard | None:
    """The day's guard if this tick may send now, else None."""
    fresh = Guard(
        id=guard_id(local_date),
        owner=run_id,
        state="sending",
        attempts=1,
        data={"started_at": now.isoformat()},
        created_at=now,
        updated_at=now,
    )
    if store.create_guard(fresh):
        return fresh

    def retry(guard: Guard) -> Guard | None:
        started = datetime.fromisoformat(str(guard.data.get("started_at", now.isoformat())))
        stuck = guard.state == "sending" and now - started > STUCK_AFTER
        if guard.attempts >= MAX_ATTEMPTS or not (guard.state == "failed" or stuck):
            return None
        return guard.model_copy(
            update={
                "owner": run_id,
                "state": "sending",
                "attempts": guard.attempts + 1,
                "data": {**guard.data, "started_at": now.isoformat()},
                "updated_at": now,
            }
        )

    taken = store.update_guard(guard_id(local_date), retry)
    if taken is not None and taken.owner == run_id and taken.state == "sending":
        return taken
    return None


def _finish_day(store: SettingsStore, local_date: str, run_id: str, state: str, note: str) -> None:
    def finish(guard: Guard) -> Guard | None:
        if guard.owner != run_id:
            return None
        return guard.model_copy(update={"state": state, "data": {**guard.data, "note": note}})

    store.update_guard(guard_id(local_date), finish)


def tick(
    runtime: DigestRuntime,
    *,
    now: datetime,
    time_zone: str,
    policy: DigestPolicy,
    run_id: str,
) -> TickOutcome:
    """One scheduler tick: send today's digest if the policy says it is time and no one has.
    The first tick of each UTC day also re-scores every investor's relationship first."""
    from shared.services import relationships

    store = runtime.store
    relationships.daily_rescore(store, now=now)
    if not policy.enabled:
        return TickOutcome(False, "disabled")
    local = now.astimezone(ZoneInfo(time_zone))
    local_date = local.date().isoformat()
    if local.hour < policy.send_hour:
        return TickOutcome(False, "before send hour", local_date)
    claimed = _claim_day(store, local_date, now, run_id)
    if claimed is None:
        return TickOutcome(False, "already sent or being sent", local_date)
    cursor = store.get_setting(CURSOR_SETTING)
    since = datetime.fromisoformat(cursor) if cursor else now - SEND_NOW_WINDOW
    try:
        digest = build(runtime, since, now)
        transport = deliver(runtime, admin_recipients(store), digest)
    except Exception as exc:
        _finish_day(store, local_date, run_id, "failed", type(exc).__name__)
        # The error text may carry a credential (an SMTP or token error): never logged.
        logger.error(
            "digest failed",
            extra={
                "fields": {
                    "event": events.DIGEST_FAILED,
                    "local_date": local_date,
                    "attempt": claimed.attempts,
                    "error_type": type(exc).__name__,
                }
            },
        )
        return TickOutcome(False, "failed", local_date)
    _finish_day(store, local_date, run_id, "sent", transport)

    def advance(value: str | None) -> str:
        # The cursor only moves forward, whatever order two late ticks finish in.
        if value and datetime.fromisoformat(value) >= now:
            return value
        return now.isoformat()

    store.update_setting(CURSOR_SETTING, advance)
    store.append_audit(
        AuditEntry(
            actor="digest",
            action="digest.sent",
            target=guard_id(local_date),
            details={"transport": transport, "since": since.isoformat(), "until": now.isoformat()},
        )
    )
    return TickOutcome(True, "sent", local_date, transport)


def send_now(runtime: DigestRuntime, caller: Caller, *, now: datetime) -> str:
    """The last 24 hours to the admins now; the daily cursor and guard are left alone, so a
    preview never suppresses the scheduled send."""
    digest = build(runtime, now - SEND_NOW_WINDOW, now)
    transport = deliver(runtime, admin_recipients(runtime.store), digest)
    runtime.store.append_audit(
        AuditEntry(actor=caller.email, action="digest.send_now", details={"transport": transport})
    )
    return transport


def check_test_recipients(
    store: UserStore, recipients: list[str], *, team: TeamDomains
) -> list[str]:
    """A test email goes only to active admins at the fund's domains: the endpoint is no open
    relay (400 otherwise).

    Each admin is named once, by their stored address, however often and in whatever spelling
    the request names them (compared by canonical address): the reply and the audit entry then
    name people, not repetitions."""
    admins: dict[str, str] = {}
    for address in admin_recipients(store):
        admins.setdefault(_canonical_or_self(address), address)
    wanted = [r.strip().lower() for r in recipients if r.strip()]
    if not wanted:
        raise BadRequestError("name at least one recipient")
    canonical = [_canonical_or_self(r) for r in wanted]
    strangers = sorted({w for w, c in zip(wanted, canonical, strict=True) if c not in admins})
    if strangers:
        raise BadRequestError("recipients must be active admins", refused=strangers)
    for address in wanted:
        team.require(address, what="digest recipient")
    return list(dict.fromkeys(admins[c] for c in canonical))


def _canonical_or_self(address: str) -> str:
    """The canonical address, or the lower-cased text when it is not an address (refused)."""
    try:
        return canonical_address(address)
    except ValueError:
        return address.strip().lower()
