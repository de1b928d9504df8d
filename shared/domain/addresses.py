"""E-mail addresses and domains: normalisation, and the canonical form used to compare them.

Address comparison goes through :func:`canonical_address`:

- everything is lower-cased (local parts are case-sensitive in RFC 5321, but no mail system a
  fund deals with treats them so, and the stores keep addresses lower-case anyway);
- on ``gmail.com``/``googlemail.com`` (one mailbox system, two names) dots and a ``+tag`` in the
  local part are ignored and ``googlemail.com`` becomes ``gmail.com``: that is Gmail's own
  delivery rule, so ``J.Smith+vc@googlemail.com`` *is* the mailbox ``jsmith@gmail.com``;
- on every other domain the local part is kept whole, dots and ``+tag`` included. Sub-addressing
  is a per-server setting (the delimiter may be ``+``, ``-`` or nothing; ``sales+eu@`` may be a
  separately routed mailbox or a shared alias), so folding it would guess. A wrong fold attaches
  someone else's mail to an investor (a privacy failure and a bad CRM entry); a missed fold only
  costs a match that an admin fixes by adding the tagged address to the contact. We choose the
  failure that is visible and cheap.
"""

from __future__ import annotations

import re

# Deliberately loose: a mailbox in the wild can carry almost anything before the "@"; what we need
# is one "@", no whitespace, and a domain with a dot-free-or-dotted label. Parsing RFC 5322 is the
# parser's job (issue 3), validation here guards the store against garbage keys.
_ADDRESS_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63})*$"
)
GMAIL = "gmail.com"
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def normalize_address(value: str) -> str:
    """Lower-case, trimmed, validated e-mail address."""
    address = value.strip().lower()
    if not _ADDRESS_RE.match(address):
        raise ValueError(f"not an e-mail address: {value!r}")
    return address


def normalize_domain(value: str) -> str:
    """Lower-case domain without a leading ``@``."""
    domain = value.strip().lower().removeprefix("@").rstrip(".")
    if not _DOMAIN_RE.match(domain):
        raise ValueError(f"not a domain: {value!r}")
    return domain


# Webmail and ISP domains anyone can sign up at: a person there says nothing about an
# organisation, so these never match by domain (addresses at them still match one by one).
PUBLIC_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # Google
        "gmail.com",
        "googlemail.com",
        # Microsoft
        "outlook.com",
        "outlook.de",
        "outlook.fr",
        "outlook.es",
        "outlook.it",
        "outlook.co.uk",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.de",
        "hotmail.fr",
        "hotmail.es",
        "hotmail.it",
        "live.com",
        "live.co.uk",
        "live.de",
        "live.fr",
        "live.nl",
        "msn.com",
        "passport.com",
        # Yahoo and Verizon
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.co.jp",
        "yahoo.de",
        "yahoo.fr",
        "yahoo.es",
        "yahoo.it",
        "yahoo.ca",
        "yahoo.com.au",
        "yahoo.com.br",
        "yahoo.co.in",
        "ymail.com",
        "rocketmail.com",
        "aol.com",
        "aim.com",
        "verizon.net",
        # Apple
        "icloud.com",
        "me.com",
        "mac.com",
        # Privacy-first providers
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
        "tutanota.com",
        "tutanota.de",
        "tuta.io",
        "tuta.com",
        "fastmail.com",
        "fastmail.fm",
        "hey.com",
        # GMX / United Internet (gmx.* is also matched as a family, see is_public_mail_domain)
        "gmx.com",
        "gmx.net",
        "gmx.de",
        "gmx.at",
        "gmx.ch",
        "gmx.fr",
        "gmx.co.uk",
        "gmx.us",
        "web.de",
        "mail.com",
        "email.com",
        # Europe
        "t-online.de",
        "freenet.de",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "sfr.fr",
        "libero.it",
        "virgilio.it",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "interia.pl",
        "btinternet.com",
        "sky.com",
        "bluewin.ch",
        # Elsewhere
        "yandex.ru",
        "yandex.com",
        "mail.ru",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "naver.com",
        "daum.net",
        "rediffmail.com",
        "comcast.net",
        "att.net",
        "sbcglobal.net",
        "zoho.com",
        "zohomail.com",
        "hushmail.com",
        "inbox.com",
        "mailbox.org",
        "posteo.de",
        "posteo.net",
    }
)

# Brands that hand out addresses under many country domains ("gmx.*"): any ``<brand>.<tld>`` or
# ``<brand>.<sld>.<tld>`` counts as public. Kept to brands with no plausible company namesake.
_PUBLIC_MAIL_FAMILIES = frozenset({"gmx", "googlemail", "hotmail", "yahoo"})
_SECOND_LEVELS = frozenset({"co", "com", "net", "org", "ne", "or"})


def split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local, domain


def canonical_address(address: str) -> str:
    """The mailbox an address delivers to, for comparison (see the module docstring).

    Raises ValueError for something that is not an address.
    """
    local, domain = split_address(normalize_address(address))
    if domain in GMAIL_DOMAINS:
        gmail_local = local.split("+", 1)[0].replace(".", "")
        # "+x@gmail.com" or ".@gmail.com" is not a Gmail mailbox; keep it whole rather than
        # collapse it onto "@gmail.com".
        if gmail_local:
            return f"{gmail_local}@{GMAIL}"
    return f"{local}@{domain}"


def address_domain(address: str) -> str:
    """The (canonical) domain of an address: ``googlemail.com`` reads as ``gmail.com``."""
    return split_address(canonical_address(address))[1]


def is_public_mail_domain(domain: str) -> bool:
    """True for a webmail/ISP domain (including ``gmx.*`` and the like): never an organisation."""
    domain = domain.strip().lower().removeprefix("@").rstrip(".")
    if domain in PUBLIC_MAIL_DOMAINS:
        return True
    labels = domain.split(".")
    if not labels or labels[0] not in _PUBLIC_MAIL_FAMILIES:
        return False
    # gmx.es, yahoo.co.nz, hotmail.com.br; not gmx.acme.com (a company's own subdomain).
    return len(labels) == 2 or (len(labels) == 3 and labels[1] in _SECOND_LEVELS)
