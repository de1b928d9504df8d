"""The fund's own mail domains: who may be a user, which mailboxes are the team's, and where the
digest (investors' names in it) may go.

The domains match exactly: ``fund.example`` admits ``ada@fund.example`` and neither
``ada@mail.fund.example`` nor ``ada@evil-fund.example``; a fund with several domains lists each.

Which domains hold is decided by :func:`effective_team_domains` alone, and ``shared.wiring.
team_domains`` is the one place that calls it with this instance's settings and store:

1. ``CRM_TEAM_DOMAINS`` when set (the cloud's plan refuses to deploy without it);
2. else, on one machine, the domain of ``CRM_BOOTSTRAP_ADMIN``;
3. else the domain of the first admin (the earliest created active admin);
4. else nothing is decided yet (no admin exists, so there is no one to sign in, no digest to
   send, and the first admin, made by the bootstrap command, decides it). Undecided admits
   everything: the checks below pass, and the status says so.

Users and mailboxes already stored outside the domains are kept (never deleted) and flagged in
the console's status; they cannot sign in (their tokens carry another ``hd``) and the digest
transports refuse their addresses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from shared.domain.models import User
from shared.errors import BadRequestError

SOURCE_SETTING = "CRM_TEAM_DOMAINS"
SOURCE_BOOTSTRAP = "CRM_BOOTSTRAP_ADMIN"
SOURCE_FIRST_ADMIN = "first admin"
UNDECIDED = ""


class OutsideTeamError(BadRequestError):
    """An address outside the fund's own domains where only the team's may be (400)."""

    code = "outside_team_domains"


def domain_of(address: str) -> str:
    """The part after the last ``@``, lower-cased, without a trailing dot ("" if there is none)."""
    local, at, domain = address.strip().lower().rpartition("@")
    return domain.rstrip(".") if at and local else ""


@dataclass(frozen=True)
class TeamDomains:
    """The fund's domains and what decided them (``source``: one of the ``SOURCE_*`` names, or
    ``UNDECIDED`` with no domains, which admits every address)."""

    domains: frozenset[str]
    source: str

    @property
    def decided(self) -> bool:
        return bool(self.domains)

    def admits(self, address: str) -> bool:
        """True for an address at one of the domains (exact match), or while undecided."""
        return not self.domains or domain_of(address) in self.domains

    def admits_hosted_domain(self, hosted_domain: object) -> bool:
        """A person's token's ``hd`` claim: it must name one of the domains (while undecided,
        anything passes)."""
        if not self.domains:
            return True
        return isinstance(hosted_domain, str) and hosted_domain.strip().lower() in self.domains

    def outsiders(self, addresses: Iterable[str]) -> list[str]:
        """The addresses outside the domains, lower-cased, sorted, each once."""
        return sorted({a.strip().lower() for a in addresses if not self.admits(a)})

    def require(self, address: str, *, what: str) -> None:
        """Refuse (400, saying which domains hold) an address outside the domains."""
        if not self.admits(address):
            raise OutsideTeamError(
                f"a {what} must be at one of the fund's domains ({', '.join(sorted(self.domains))}"
                f"; set by {self.source}): {address.strip().lower()} is not",
                address=address.strip().lower(),
                team_domains=sorted(self.domains),
            )

    def describe(self) -> str:
        """One line for status pages and logs."""
        if not self.domains:
            return "team domains undecided: set CRM_TEAM_DOMAINS (no admin exists yet)"
        return f"team domains {', '.join(sorted(self.domains))} (from {self.source})"


def effective_team_domains(
    configured: Sequence[str], *, bootstrap_admin: str, admins: Callable[[], Iterable[User]]
) -> TeamDomains:
    """The domains that hold (see the module docstring for the order). ``admins`` (the active
    admins) is called only when neither setting decides."""
    if configured:
        return TeamDomains(frozenset(d.strip().lower() for d in configured), SOURCE_SETTING)
    if domain_of(bootstrap_admin):
        return TeamDomains(frozenset({domain_of(bootstrap_admin)}), SOURCE_BOOTSTRAP)
    first = min(admins(), key=lambda u: (u.created_at, u.email), default=None)
    if first is not None and domain_of(first.email):
        return TeamDomains(frozenset({domain_of(first.email)}), SOURCE_FIRST_ADMIN)
    return TeamDomains(frozenset(), UNDECIDED)
