"""CRM records as admins write them, and what a change of one means for matching.

**Writing.** An admin (the API, a bulk JSON call or a CSV file) sends an *input*: the record's
fields, each optional. A field given replaces the stored value (an empty list clears a list,
``null`` clears a reference); a field left out keeps the stored value, or the default on a new
record. So a file that only has ``id`` and ``domains`` columns changes only domains. A new
organisation or investor needs a ``name``; a record without ``id`` is new and gets a generated
one. ``deleted`` is the soft delete (``false`` restores); ``graveyard`` marks an investor as
graveyard, which never changes matching.

**What matching sees** of a record (:func:`investor_keys` and friends): the addresses and
domains through which it can link mail, each tagged with what it links to. A change's re-match
keys are the symmetric difference of those sets before and after (:func:`changed_keys`): a key
that appears links new mail, one that disappears unlinks old mail, and a key both sides hold
for the same target needs nothing. By the matching rules (``shared/domain/matching.py``):

- a live investor's addresses, its own non-public domains and its live organisation's
  non-public domains, and the addresses of its live contacts (the latter two change only when
  the investor's liveness or organisation changes);
- a live organisation's non-public domains, through its live investors (an organisation with
  none links nothing);
- a live contact's addresses, when it belongs to a live investor (a contact without one links
  nothing; it is only reported);
- graveyard never matters: graveyard investors' mail stays linked, listed and searchable.

Soft-deleted records stop matching: their mail is unlinked (its open proposals withdrawn; decided
ones stand) and a restore links it again. The panel names a soft-deleted record by the matched
address (seed-spec, "Email-activity panel").

Pure: no I/O. ``shared/services/crm.py`` loads what these functions need.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from shared.domain.addresses import (
    canonical_address,
    is_public_mail_domain,
    normalize_address,
    normalize_domain,
)
from shared.domain.matching import Exclusions
from shared.domain.models import (
    Contact,
    InputRecordId,
    Investor,
    Organization,
    new_id,
)

# Per record: enough for any person or firm, small enough that a 500-record batch stays a
# bounded re-match.
MAX_VALUES = 20
MAX_NAME = 300
# RFC 5321's longest path; Gmail and every store take it.
MAX_ADDRESS = 254

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)]
OptionalName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NAME)]
# Length first, then the check: a huge value is refused without being parsed or quoted back.
InputAddress = Annotated[
    str, StringConstraints(max_length=MAX_ADDRESS), AfterValidator(normalize_address)
]
InputDomain = Annotated[
    str, StringConstraints(max_length=MAX_ADDRESS), AfterValidator(normalize_domain)
]


class CrmInput(BaseModel):
    """Base of the inputs: unknown fields are refused; fields left out keep stored values."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    def given(self) -> dict[str, Any]:
        """The fields the caller gave (id aside), as the record takes them."""
        return self.model_dump(include=self.model_fields_set - {"id"})


class OrganizationInput(CrmInput):
    """An organisation: its domains link mail to its investors."""

    id: InputRecordId | None = None
    name: Name = Field(default="", description="Required for a new organisation.")
    domains: list[InputDomain] = Field(default_factory=list, max_length=MAX_VALUES)
    deleted: bool = Field(default=False, description="Soft delete; false restores.")


class InvestorInput(CrmInput):
    """An investor (a fund, an angel): its addresses and domains link mail to it."""

    id: InputRecordId | None = None
    name: Name = Field(default="", description="Required for a new investor.")
    organization_id: InputRecordId | None = Field(
        default=None, description="An existing, live organisation; null detaches."
    )
    emails: list[InputAddress] = Field(default_factory=list, max_length=MAX_VALUES)
    domains: list[InputDomain] = Field(default_factory=list, max_length=MAX_VALUES)
    graveyard: bool = False
    deleted: bool = Field(default=False, description="Soft delete; false restores.")


class ContactInput(CrmInput):
    """A person: their addresses link mail to their investor."""

    id: InputRecordId | None = None
    name: OptionalName = ""
    investor_id: InputRecordId | None = Field(
        default=None, description="An existing, live investor; null detaches."
    )
    organization_id: InputRecordId | None = Field(
        default=None, description="An existing, live organisation; null detaches."
    )
    emails: list[InputAddress] = Field(default_factory=list, max_length=MAX_VALUES)
    deleted: bool = Field(default=False, description="Soft delete; false restores.")


CrmRecord = Organization | Investor | Contact
R = TypeVar("R", Organization, Investor, Contact)

# What each record's references point at: (field, kind of the record referred to).
REFERENCES: dict[type[BaseModel], tuple[tuple[str, str], ...]] = {
    Organization: (),
    Investor: (("organization_id", "organization"),),
    Contact: (("investor_id", "investor"), ("organization_id", "organization")),
}
NAME_REQUIRED: frozenset[type[BaseModel]] = frozenset({Organization, Investor})
_VOLATILE = frozenset({"updated_at", "deleted_at", "name_key", "email_keys"})


def merged(
    cls: type[R], stored: R | None, given: CrmInput, *, at: datetime, record_id: str | None = None
) -> R:
    """The record after ``given`` is applied to ``stored`` at time ``at`` (None: a new record,
    whose id is ``record_id``, else the input's, else a generated one).

    Raises ValueError (naming the field) when a new organisation or investor has no name.
    """
    fields = given.given()
    now = at
    if stored is None:
        if cls in NAME_REQUIRED and "name" not in fields:
            raise ValueError("name: required for a new record")
        base: dict[str, Any] = {"id": record_id or getattr(given, "id", None) or new_id()}
    else:
        base = stored.model_dump()
    record = {**base, **fields, "updated_at": now}
    if "deleted" in fields:
        was_deleted = stored is not None and stored.deleted
        if not fields["deleted"]:
            record["deleted_at"] = None
        elif not was_deleted:
            record["deleted_at"] = now
    return cls.model_validate(record)


def changed_fields(stored: CrmRecord | None, record: CrmRecord) -> list[str]:
    """Names of the fields an admin would see change (derived keys and times left out)."""
    before = stored.model_dump() if stored is not None else {}
    after = record.model_dump()
    return sorted(
        name for name in after if name not in _VOLATILE and before.get(name) != after[name]
    )


# -- what matching sees ------------------------------------------------------------------------

# (kind, value, target): kind "address" (canonical) or "domain"; target what it links to.
Key = tuple[str, str, str]


@dataclass(frozen=True)
class RematchKeys:
    """The addresses and domains whose mail a change may link or unlink."""

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.addresses or self.domains)

    def __or__(self, other: RematchKeys) -> RematchKeys:
        return RematchKeys(self.addresses | other.addresses, self.domains | other.domains)


def _addresses(values: Iterable[str], target: str) -> set[Key]:
    return {("address", canonical_address(v), target) for v in values}


def _domains(values: Iterable[str], target: str) -> set[Key]:
    return {("domain", d, target) for d in values if not is_public_mail_domain(d)}


def organization_keys(organization: Organization | None, *, has_live_investors: bool) -> set[Key]:
    """An organisation's domains, if it is live and has live investors for them to link."""
    if organization is None or organization.deleted or not has_live_investors:
        return set()
    return _domains(organization.domains, f"organization:{organization.id}")


def investor_keys(
    investor: Investor | None,
    *,
    organization: Organization | None,
    contact_addresses: Iterable[str] = (),
) -> set[Key]:
    """A live investor's addresses and domains, its live organisation's domains and its live
    contacts' addresses (``organization`` is the one ``investor.organization_id`` names)."""
    if investor is None or investor.deleted:
        return set()
    target = f"investor:{investor.id}"
    keys = _addresses(investor.emails, target) | _domains(investor.domains, target)
    if organization is not None and not organization.deleted:
        keys |= _domains(organization.domains, target)
    return keys | _addresses(contact_addresses, target)


def contact_keys(contact: Contact | None, *, investor_is_live: bool) -> set[Key]:
    """A live contact's addresses, if it belongs to a live investor."""
    if contact is None or contact.deleted or not contact.investor_id or not investor_is_live:
        return set()
    return _addresses(contact.emails, f"contact:{contact.id}:{contact.investor_id}")


def changed_keys(before: set[Key], after: set[Key]) -> RematchKeys:
    """The keys whose mail must be looked at again: those either side holds and not both."""
    changed = before ^ after
    return RematchKeys(
        addresses=frozenset(value for kind, value, _ in changed if kind == "address"),
        domains=frozenset(value for kind, value, _ in changed if kind == "domain"),
    )


# -- the exclusion list --------------------------------------------------------------------------


def exclusion_entries(addresses: Iterable[str], domains: Iterable[str]) -> list[str]:
    """The stored form of the list: addresses, then ``@domain``s, each sorted and unique."""
    return sorted(set(addresses)) + [f"@{d}" for d in sorted(set(domains))]


def split_exclusions(entries: Iterable[str]) -> tuple[list[str], list[str]]:
    """Stored entries as (addresses, domains), the way ``Exclusions.parse`` reads them
    (``@x.com`` and a bare ``x.com`` are domains); blank entries dropped."""
    addresses: set[str] = set()
    domains: set[str] = set()
    for raw in entries:
        entry = str(raw).strip().lower()
        if not entry:
            continue
        if entry.startswith("@") or "@" not in entry:
            domains.add(entry.removeprefix("@"))
        else:
            addresses.add(entry)
    return sorted(addresses), sorted(domains)


def exclusion_keys(before: Iterable[str], after: Iterable[str]) -> RematchKeys:
    """What a change of the exclusion list re-matches: every address and domain excluded on
    one side only (canonically, with gmail.com and googlemail.com as one).

    An excluded domain also excludes its subdomains, but the re-match finds mail by exact
    participant domain: mail from ``a@eu.x.com`` is re-matched on excluding ``x.com`` only if
    ``eu.x.com`` itself is given, or through an address of it that changed.
    """
    old, new = Exclusions.parse(before), Exclusions.parse(after)
    return RematchKeys(
        addresses=frozenset(old.addresses ^ new.addresses),
        domains=frozenset(old.domains ^ new.domains),
    )
