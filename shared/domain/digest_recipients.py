"""Who may receive the digest, read from the message itself: the guard both transports run.

The digest is the one automated send path and goes only to the fund's active admins at its own
domains (seed spec, "Outbound mail"). The transports (``shared.adapters.gmail.send`` and
``shared.adapters.smtp``) call :func:`require_admin_recipients` and
:func:`require_team_recipients` right before sending, and the digest service
(``shared.services.mail_transport``) refuses the same way before building the message; the rule
lives here, in the domain, so that the service needs no adapter to apply it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from email import message_from_bytes
from email.policy import compat32
from email.utils import getaddresses

from shared.domain.tenancy import OutsideTeamError, TeamDomains
from shared.errors import BadRequestError

# Every header a mail system may deliver to. Gmail sends to To/Cc/Bcc; Resent-* are checked
# too so no header can smuggle in a recipient a stricter reader would miss.
RECIPIENT_HEADERS = ("To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc")


class NotAnAdminError(BadRequestError):
    """A digest recipient is not an active admin (or cannot be read): nothing was sent."""

    code = "not_an_admin"


def header_recipients(raw: bytes) -> list[str]:
    """Every address in the recipient headers of ``raw``, lower-cased, in order.

    Raises :class:`NotAnAdminError` when a header holds something that is not an address
    (``undisclosed``, a bare name, an empty group is fine): what cannot be read is refused.
    """
    message = message_from_bytes(raw, policy=compat32)
    found: list[str] = []
    for header in RECIPIENT_HEADERS:
        values = [str(value) for value in message.get_all(header, [])]
        if not values:
            continue
        for name, address in getaddresses(values):
            address = address.strip().lower()
            if not address and not name:
                continue  # an empty group ("undisclosed-recipients:;") or a trailing comma
            if not _is_address(address):
                raise NotAnAdminError(
                    f"The message's {header} header holds something that is not an e-mail "
                    "address; nothing was sent.",
                    header=header,
                )
            found.append(address)
    return found


def require_admin_recipients(
    raw: bytes, admins: Collection[str], *, envelope: Iterable[str] = ()
) -> list[str]:
    """The guard both transports run right before sending: every recipient of ``raw`` (To, Cc,
    Bcc, Resent-*) and every ``envelope`` recipient (SMTP RCPT TO) must be in ``admins`` (the
    active admins' addresses), and there must be at least one. Returns the header recipients;
    raises :class:`NotAnAdminError` otherwise."""
    allowed = {a.strip().lower() for a in admins if a and a.strip()}
    recipients = header_recipients(raw)
    if not recipients:
        raise NotAnAdminError("The message has no recipient; nothing was sent.")
    envelope_addresses = [e.strip().lower() for e in envelope]
    outsiders = sorted(
        {r for r in [*recipients, *envelope_addresses] if not _is_address(r) or r not in allowed}
    )
    if outsiders:
        raise not_admins_error(outsiders)
    return recipients


def require_team_recipients(recipients: Iterable[str], team: TeamDomains) -> None:
    """Every recipient at one of the fund's own domains (exact match), else
    :class:`OutsideTeamError` and nothing is sent: an admin added at another domain does not
    take the digest (investors' names) out of the fund."""
    outsiders = team.outsiders(recipients)
    if outsiders:
        raise OutsideTeamError(
            "The digest goes only to the fund's own domains; refused: " + ", ".join(outsiders),
            refused=outsiders,
            team_domains=sorted(team.domains),
        )


def not_admins_error(outsiders: list[str]) -> NotAnAdminError:
    """The one refusal for recipients who are not active admins (nothing is sent)."""
    return NotAnAdminError(
        "Only the fund's active admins may receive the digest; refused: "
        + ", ".join(outsiders)
        + ". Nothing was sent.",
        refused=outsiders,
    )


def _is_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain and "." in domain) and not any(
        c.isspace() or c in ',;<>"()[]\\' for c in address
    )
