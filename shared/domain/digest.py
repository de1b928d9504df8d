"""The daily digest's content, composed from plain facts: no store, no clock, no network.

The service (``shared.services.digest``) gathers the facts: per team member and per investor,
the mail that became investor mail in the window, and each mailbox's sync health. This module
turns them into a subject, a plain-text body and an HTML body:

- *By team member*: one paragraph per active user, the narrator's if it gave one, else the
  deterministic count-only text (:func:`fallback_paragraph`);
- *By investor*: each email once, its direction decided at the email level, and mail that was
  already more than :data:`EARLIER_AFTER` old when it matched counted, not listed;
- *Sync health*: mailboxes behind, in error, or with coverage gaps.

Every value that comes from mail, the CRM or the narrator goes through ``html.escape`` in the
HTML body; the only markup is the fixed template here.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.domain.models import Direction
from shared.domain.relationships import ColdReason, GoingCold

# Mail already this old when it became investor mail (a new mailbox's backfill, a new contact's
# history) is counted per investor as "N earlier messages newly linked", never listed.
EARLIER_AFTER = timedelta(days=7)
# What the narrator sees of each message's snippet, and the longest paragraph kept from it.
PROMPT_SNIPPET_CHARS = 200
MAX_PARAGRAPH_CHARS = 1500

NARRATOR_SYSTEM_PROMPT = (
    "You write one short paragraph (at most 80 words) for a venture fund's internal daily "
    "digest, summarising one team member's email with investors. Use only the facts given; "
    "do not invent names, amounts or commitments. Plain text, no markdown, no greeting."
)


def is_earlier(date: datetime | None, matched_at: datetime) -> bool:
    """Mail more than EARLIER_AFTER old when it matched (no Date header: not earlier)."""
    return date is not None and date < matched_at - EARLIER_AFTER


@dataclass(frozen=True)
class MessageLine:
    """One email as a digest lists it."""

    email_id: str
    direction: Direction
    subject: str
    date: datetime | None
    counterpart: str  # contact name, else organisation name, else the matched address
    investor: str  # the investor's display name (or the matched address)
    snippet: str = ""


@dataclass
class UserActivity:
    """One active team member's investor mail in the window, from their own mailboxes."""

    user_id: str
    name: str
    email: str
    messages: list[MessageLine] = field(default_factory=list)
    earlier: int = 0

    @property
    def inbound(self) -> int:
        return sum(1 for m in self.messages if m.direction is Direction.INBOUND)

    @property
    def outbound(self) -> int:
        return sum(1 for m in self.messages if m.direction is Direction.OUTBOUND)

    @property
    def investors(self) -> list[str]:
        return sorted({m.investor for m in self.messages}, key=str.casefold)

    @property
    def has_activity(self) -> bool:
        return bool(self.messages) or self.earlier > 0


@dataclass
class InvestorActivity:
    """One investor's mail in the window across the whole team, each email once."""

    investor_id: str
    name: str
    organization: str = ""
    messages: list[MessageLine] = field(default_factory=list)
    earlier: int = 0

    @property
    def inbound(self) -> int:
        return sum(1 for m in self.messages if m.direction is Direction.INBOUND)

    @property
    def outbound(self) -> int:
        return sum(1 for m in self.messages if m.direction is Direction.OUTBOUND)


@dataclass(frozen=True)
class MailboxHealth:
    """A mailbox worth mentioning in the sync-health section."""

    address: str
    behind: bool = False
    lag_seconds: float | None = None
    error: bool = False
    coverage_gap: int = 0


@dataclass(frozen=True)
class Digest:
    subject: str
    text: str
    html: str
    has_activity: bool
    user_count: int
    email_count: int
    investor_count: int
    earlier_count: int = 0


# -- wording ------------------------------------------------------------------------------------


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _display_name(user: UserActivity) -> str:
    return user.name or user.email


def fallback_paragraph(user: UserActivity) -> str:
    """The deterministic count-only paragraph: used whenever the narrator gives nothing."""
    if not user.has_activity:
        return "No investor email in this period."
    parts: list[str] = []
    if user.messages:
        investors = user.investors
        parts.append(
            f"{_plural(len(user.messages), 'investor email')} "
            f"({user.inbound} received, {user.outbound} sent) "
            f"with {_plural(len(investors), 'investor')}: {', '.join(investors)}."
        )
    if user.earlier:
        parts.append(f"{_plural(user.earlier, 'earlier message')} newly linked.")
    return " ".join(parts)


def narrator_prompt(user: UserActivity) -> str:
    """The facts of ONE user's activity for the narrator: nobody else's mail is in it."""
    lines = [
        f"Team member: {_display_name(user)}",
        f"Investor emails: {len(user.messages)} ({user.inbound} received, {user.outbound} sent)",
    ]
    for m in sorted(user.messages, key=_message_order):
        when = m.date.astimezone(UTC).strftime("%Y-%m-%d") if m.date else "undated"
        verb = "to" if m.direction is Direction.OUTBOUND else "from"
        snippet = " ".join(m.snippet.split())[:PROMPT_SNIPPET_CHARS]
        lines.append(
            f"- {when} {m.direction.value} {verb} {m.counterpart} ({m.investor}): "
            f"subject {m.subject!r}" + (f"; snippet {snippet!r}" if snippet else "")
        )
    if user.earlier:
        lines.append(f"Earlier messages newly linked (not listed): {user.earlier}")
    return "\n".join(lines)


def clean_paragraph(text: str | None) -> str | None:
    """A narrator's answer as a paragraph: whitespace folded, bounded; None if nothing is left."""
    if not isinstance(text, str):
        return None
    folded = " ".join(text.split())
    if not folded:
        return None
    if len(folded) > MAX_PARAGRAPH_CHARS:
        folded = folded[: MAX_PARAGRAPH_CHARS - 1].rstrip() + "…"
    return folded


def _message_order(m: MessageLine) -> tuple[str, str]:
    return (m.date.astimezone(UTC).isoformat() if m.date else "", m.email_id)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _message_text(m: MessageLine) -> str:
    arrow = "→" if m.direction is Direction.OUTBOUND else "←"
    when = m.date.astimezone(UTC).strftime("%Y-%m-%d") if m.date else "undated"
    return f"{when} {arrow} {m.direction.value} · {m.counterpart} · {m.subject or '(no subject)'}"


def _investor_title(inv: InvestorActivity) -> str:
    if inv.organization and inv.organization != inv.name:
        return f"{inv.name} ({inv.organization})"
    return inv.name


def _investor_summary(inv: InvestorActivity) -> str:
    parts = []
    if inv.messages:
        parts.append(
            f"{_plural(len(inv.messages), 'email')} ({inv.inbound} received, {inv.outbound} sent)"
        )
    if inv.earlier:
        parts.append(f"{_plural(inv.earlier, 'earlier message')} newly linked")
    return "; ".join(parts)


def _health_lines(health: list[MailboxHealth]) -> list[str]:
    lines = []
    for box in sorted(health, key=lambda b: b.address):
        problems = []
        if box.error:
            problems.append("in error")
        if box.behind:
            if box.lag_seconds is None:
                problems.append("behind (never synced)")
            else:
                problems.append(f"behind ({int(box.lag_seconds // 60)} min since last sync)")
        if box.coverage_gap:
            problems.append(f"coverage gap of {_plural(box.coverage_gap, 'message')}")
        if problems:
            lines.append(f"{box.address}: {', '.join(problems)}")
    return lines


def _cold_line(cold: GoingCold, now: datetime) -> str:
    """One investor going cold, in words (``going_cold_of`` decided it)."""
    reasons = []
    if cold.last_two_way_at is not None and ColdReason.NO_EXCHANGE in cold.reasons:
        days = (now - cold.last_two_way_at).days
        reasons.append(f"no two-way exchange for {_plural(days, 'day')}")
    if ColdReason.STRENGTH_DROP in cold.reasons:
        reasons.append(f"strength down {cold.drop_30d} points in 30 days")
    name = cold.name or cold.investor_id
    return f"{name} (strength {cold.strength}): {', '.join(reasons)}"


# -- composition --------------------------------------------------------------------------------


def compose(
    *,
    since: datetime,
    until: datetime,
    users: list[UserActivity],
    investors: list[InvestorActivity],
    health: list[MailboxHealth],
    paragraphs: dict[str, str],
    mailbox_count: int = 0,
    earlier_count: int = 0,
    going_cold: Sequence[GoingCold] = (),
) -> Digest:
    """The digest: subject, text and HTML bodies, and its counts.

    ``paragraphs`` maps a user id to the narrator's paragraph; a user without one gets
    :func:`fallback_paragraph`. ``email_count`` counts the distinct listed emails (each once
    however many teammates or investors it involves); ``earlier_count`` is the number of
    distinct emails counted as "earlier messages newly linked" (the caller knows their ids).
    """
    users = sorted(users, key=lambda u: (_display_name(u).casefold(), u.user_id))
    investors = sorted(investors, key=lambda i: (_investor_title(i).casefold(), i.investor_id))
    listed = {m.email_id for inv in investors for m in inv.messages}
    listed |= {m.email_id for u in users for m in u.messages}
    active_users = [u for u in users if u.has_activity]
    active_investors = [i for i in investors if i.messages or i.earlier]
    has_activity = bool(listed) or earlier_count > 0 or any(i.earlier for i in investors)
    health_lines = _health_lines(health)

    day = until.astimezone(UTC).strftime("%Y-%m-%d")
    if has_activity:
        subject = (
            f"Investor email digest {day}: {_plural(len(listed), 'email')}, "
            f"{_plural(len(active_investors), 'investor')}"
        )
    else:
        subject = f"Investor email digest {day}: no activity"
    period = f"{_when(since)} to {_when(until)}"

    text: list[str] = [subject, f"Period: {period}", ""]
    body: list[str] = [
        "<!DOCTYPE html><html><body>",
        f"<h1>{html.escape(subject)}</h1>",
        f"<p>Period: {html.escape(period)}</p>",
    ]
    if not has_activity:
        note = "There was no investor email activity in this period."
        text += [note, ""]
        body.append(f"<p>{html.escape(note)}</p>")

    text += ["By team member", "=============="]
    body.append("<h2>By team member</h2>")
    if not users:
        text.append("No active team members.")
        body.append("<p>No active team members.</p>")
    for user in users:
        paragraph = paragraphs.get(user.user_id) or fallback_paragraph(user)
        text += ["", f"{_display_name(user)} <{user.email}>", paragraph]
        body.append(
            f"<h3>{html.escape(_display_name(user))} "
            f"&lt;{html.escape(user.email)}&gt;</h3><p>{html.escape(paragraph)}</p>"
        )

    text += ["", "By investor", "==========="]
    body.append("<h2>By investor</h2>")
    if not active_investors:
        text.append("No investor email in this period.")
        body.append("<p>No investor email in this period.</p>")
    for inv in active_investors:
        title, summary = _investor_title(inv), _investor_summary(inv)
        text += ["", f"{title}: {summary}"]
        body.append(f"<h3>{html.escape(title)}</h3><p>{html.escape(summary)}</p>")
        ordered = sorted(inv.messages, key=_message_order)
        text += [f"  - {_message_text(m)}" for m in ordered]
        if ordered:
            items = "".join(f"<li>{html.escape(_message_text(m))}</li>" for m in ordered)
            body.append(f"<ul>{items}</ul>")

    text += ["", "Going cold", "=========="]
    body.append("<h2>Going cold</h2>")
    cold_lines = [_cold_line(cold, until) for cold in going_cold]
    if cold_lines:
        text += [f"- {line}" for line in cold_lines]
        items = "".join(f"<li>{html.escape(line)}</li>" for line in cold_lines)
        body.append(f"<ul>{items}</ul>")
    else:
        text.append("No investor is going cold.")
        body.append("<p>No investor is going cold.</p>")

    text += ["", "Sync health", "==========="]
    body.append("<h2>Sync health</h2>")
    if health_lines:
        text += [f"- {line}" for line in health_lines]
        items = "".join(f"<li>{html.escape(line)}</li>" for line in health_lines)
        body.append(f"<ul>{items}</ul>")
    else:
        ok = f"All {_plural(mailbox_count, 'mailbox', 'mailboxes')} are syncing normally."
        text.append(ok)
        body.append(f"<p>{html.escape(ok)}</p>")
    body.append("</body></html>")

    return Digest(
        subject=subject,
        text="\n".join(text) + "\n",
        html="\n".join(body) + "\n",
        has_activity=has_activity,
        user_count=len(active_users),
        email_count=len(listed),
        investor_count=len(active_investors),
        earlier_count=earlier_count,
    )
