"""CRM records as admins change them: upsert one, a batch or a CSV file; graveyard; soft delete;
the exclusion list. Every write is audited; a change that can link or unlink mail queues one
re-match job (``shared/services/rematch.py``) covering exactly the addresses and domains it
changed (``shared/domain/crm.py`` says which), and the caller gets its id.

Validation comes before any write: field rules (the input models), a name for new
organisations and investors, references (``investor_id``, ``organization_id``) to records that
exist and are live, no id twice in one request, and a re-match small enough for one job. A batch
is all or nothing (the first invalid item refuses it, every bad item named); a CSV file writes
its good rows and reports the bad ones. A record whose fields did not change is not written,
audited or re-matched.

Concurrent edits of one record are last-writer-wins, and each request re-matches what it saw
change: if two admins edit the same record at the same instant, mail of an address only the
overwritten edit added can stay linked until the next change of that record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from pydantic import TypeAdapter, ValidationError

from shared.domain.crm import (
    REFERENCES,
    ContactInput,
    CrmInput,
    InvestorInput,
    OrganizationInput,
    RematchKeys,
    changed_fields,
    changed_keys,
    contact_keys,
    exclusion_entries,
    exclusion_keys,
    investor_keys,
    merged,
    organization_keys,
    split_exclusions,
)
from shared.domain.crm_csv import RowError, parse_csv, row_problems
from shared.domain.models import (
    AuditEntry,
    Caller,
    Contact,
    Guard,
    Investor,
    Organization,
    RecordId,
    normalize_address,
    normalize_domain,
    utcnow,
)
from shared.errors import BadRequestError, ConflictError, NotFoundError, TooLargeError
from shared.ports import CrmEditStore, CrmStore, Queue, SettingsStore
from shared.services.capture import EXCLUSIONS_SETTING
from shared.services.rematch import job_guard_id, queue_rematch, rematch_keys

logger = logging.getLogger(__name__)

R = TypeVar("R", Organization, Investor, Contact)
T = TypeVar("T")

MAX_BATCH = 500
# Store calls in flight at once for a batch or a file.
WORKERS = 8
MAX_EXCLUSIONS = 2000
_RECORD_ID: TypeAdapter[str] = TypeAdapter(RecordId)
# Job ids are uuid4().hex (queue_rematch): anything else is not one, without a look-up.
_JOB_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Kind(Generic[R]):
    """One kind of CRM record: its name (audit actions, messages), model and input."""

    name: str
    model: type[R]
    input: type[CrmInput]
    get: Callable[[CrmStore, str], R | None]
    put: Callable[[CrmStore, R], None]


ORGANIZATION: Kind[Organization] = Kind(
    "organization",
    Organization,
    OrganizationInput,
    lambda store, key: store.get_organization(key),
    lambda store, record: store.upsert_organization(record),
)
INVESTOR: Kind[Investor] = Kind(
    "investor",
    Investor,
    InvestorInput,
    lambda store, key: store.get_investor(key),
    lambda store, record: store.upsert_investor(record),
)
CONTACT: Kind[Contact] = Kind(
    "contact",
    Contact,
    ContactInput,
    lambda store, key: store.get_contact(key),
    lambda store, record: store.upsert_contact(record),
)


@dataclass
class Written(Generic[R]):
    """One record after a request: whether it was created or changed, and from which row."""

    record: R
    created: bool
    changed: bool
    row: int = 0


@dataclass
class WriteReport(Generic[R]):
    """What a request wrote, the rows it refused (CSV only) and the re-match job it queued."""

    written: list[Written[R]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    job_id: str | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for w in self.written if _outcome(w) == outcome)


def outcome(written: Written[Any]) -> str:
    """``created``, ``updated`` or ``unchanged``."""
    return _outcome(written)


def _outcome(written: Written[Any]) -> str:
    if written.created:
        return "created"
    return "updated" if written.changed else "unchanged"


class _Invalid(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class _Plan(Generic[R]):
    stored: R | None
    record: R
    fields: list[str]
    keys: RematchKeys
    row: int = 0

    @property
    def changed(self) -> bool:
        return self.stored is None or bool(self.fields)


class _Planner(Generic[R]):
    """Validates inputs of one kind against the store and works out their re-match keys.

    Organisations and investors looked up for references and keys are cached for the request:
    a request writes one kind, so the records it looks up do not change under it.
    """

    def __init__(self, store: CrmStore, kind: Kind[R]) -> None:
        self.store = store
        self.kind: Kind[R] = kind
        self._organizations: dict[str, Organization | None] = {}
        self._investors: dict[str, Investor | None] = {}
        self._seen: dict[str, int] = {}
        self._stored: dict[str, R | None] = {}

    def prefetch(self, inputs: Iterable[CrmInput]) -> None:
        """Read the stored records the inputs name, several at once (a batch or a file)."""
        ids = (cast(str | None, getattr(given, "id", None)) for given in inputs)
        keys = sorted({key for key in ids if key and valid_id(key)})
        found: dict[str, R | None] = {}

        def read(key: str) -> None:
            found[key] = self.kind.get(self.store, key)

        failure = next((f for f in _run_all(keys, read) if f is not None), None)
        if failure is not None:
            raise failure
        self._stored.update(found)

    def organization(self, key: str | None) -> Organization | None:
        if not key:
            return None
        if key not in self._organizations:
            self._organizations[key] = self.store.get_organization(key)
        return self._organizations[key]

    def investor(self, key: str | None) -> Investor | None:
        if not key:
            return None
        if key not in self._investors:
            self._investors[key] = self.store.get_investor(key)
        return self._investors[key]

    def plan(self, given: CrmInput, *, record_id: str | None = None, row: int = 0) -> _Plan[R]:
        """Validate one input (raises _Invalid naming each problem) and plan its write."""
        given_id = cast(str | None, getattr(given, "id", None))
        if record_id is not None and given_id is not None and given_id != record_id:
            raise _Invalid(["id: differs from the id in the path"])
        key = record_id or given_id
        if key is not None:
            if key in self._seen:
                raise _Invalid([f"id: {key} is given twice (also {self._seen[key]})"])
            self._seen[key] = row
        if key is not None and not valid_id(key):
            raise _Invalid(["id: not a valid id (letters, digits and _.:@+=- only, 1-200)"])
        stored = None
        if key is not None:
            stored = self._stored[key] if key in self._stored else self.kind.get(self.store, key)
        try:
            record = merged(self.kind.model, stored, given, at=utcnow(), record_id=key)
        except ValidationError as exc:
            raise _Invalid(row_problems(exc)) from None
        except ValueError as exc:
            raise _Invalid([str(exc)]) from None
        problems = self._reference_problems(given, stored, record)
        if problems:
            raise _Invalid(problems)
        fields = changed_fields(stored, record)
        changed = stored is None or bool(fields)
        keys = self._keys(stored, record) if changed else RematchKeys()
        return _Plan(stored, record, fields, keys, row)

    def _reference_problems(self, given: CrmInput, stored: R | None, record: R) -> list[str]:
        """References the input sets to a new value must name a live record."""
        problems = []
        for name, target in REFERENCES[self.kind.model]:
            value = getattr(record, name)
            if name not in given.model_fields_set or not value:
                continue
            if stored is not None and getattr(stored, name) == value:
                continue  # unchanged: kept even if the referred record was deleted since
            found = self.organization(value) if target == "organization" else self.investor(value)
            if found is None:
                problems.append(f"{name}: no {target} has the id {value}")
            elif found.deleted:
                problems.append(f"{name}: the {target} {value} is deleted")
        return problems

    def _keys(self, stored: R | None, record: R) -> RematchKeys:
        if isinstance(record, Organization):
            return self._organization_keys(_as(Organization, stored), record)
        if isinstance(record, Investor):
            return self._investor_keys(_as(Investor, stored), record)
        return self._contact_keys(_as(Contact, stored), record)

    def _organization_keys(self, before: Organization | None, after: Organization) -> RematchKeys:
        if before is not None and (before.domains, before.deleted) == (
            after.domains,
            after.deleted,
        ):
            return RematchKeys()
        members = bool(self.store.find_investors_by_organizations([after.id]))
        return changed_keys(
            organization_keys(before, has_live_investors=members),
            organization_keys(after, has_live_investors=members),
        )

    def _investor_keys(self, before: Investor | None, after: Investor) -> RematchKeys:
        # Its contacts' addresses count only while it is live, so they matter when that changes
        # (a new investor has no contacts yet: a contact's investor must exist first).
        people: list[str] = []
        if before is not None and before.deleted != after.deleted:
            contacts = self.store.find_contacts_by_investors([after.id])
            people = [address for contact in contacts for address in contact.emails]
        return changed_keys(
            investor_keys(
                before,
                organization=self.organization(before.organization_id) if before else None,
                contact_addresses=people,
            ),
            investor_keys(
                after,
                organization=self.organization(after.organization_id),
                contact_addresses=people,
            ),
        )

    def _contact_keys(self, before: Contact | None, after: Contact) -> RematchKeys:
        return changed_keys(
            contact_keys(before, investor_is_live=self._live_investor(before)),
            contact_keys(after, investor_is_live=self._live_investor(after)),
        )

    def _live_investor(self, contact: Contact | None) -> bool:
        investor = self.investor(contact.investor_id) if contact is not None else None
        return investor is not None and not investor.deleted


def valid_id(value: str) -> bool:
    """Whether ``value`` can be a record's id (``RecordId``)."""
    try:
        _RECORD_ID.validate_python(value)
    except ValidationError:
        return False
    return True


def _as(cls: type[R], value: object) -> R | None:
    """``value`` as a ``cls`` (the stored side of a plan: None for a new record)."""
    return value if isinstance(value, cls) else None


# -- use cases ---------------------------------------------------------------------------------


def get_record(store: CrmStore, kind: Kind[R], record_id: str) -> R:
    record = kind.get(store, record_id)
    if record is None:
        raise NotFoundError(f"no such {kind.name}", id=record_id)
    return record


def upsert(
    store: CrmEditStore,
    queue: Queue,
    caller: Caller,
    kind: Kind[R],
    given: CrmInput,
    *,
    record_id: str | None = None,
    create_only: bool = False,
    action: str = "",
) -> WriteReport[R]:
    """Create or update one record (``record_id``: the path's id). ``create_only`` refuses an
    id that exists (409). 400 names each problem."""
    planner = _Planner(store, kind)
    try:
        plan = planner.plan(given, record_id=record_id)
    except _Invalid as exc:
        raise BadRequestError("; ".join(exc.problems)) from None
    if create_only and plan.stored is not None:
        raise ConflictError(f"a {kind.name} with this id exists", id=plan.record.id)
    return _write(store, queue, caller, kind, [plan], source="api", action=action)


def upsert_batch(
    store: CrmEditStore, queue: Queue, caller: Caller, kind: Kind[R], items: Sequence[CrmInput]
) -> WriteReport[R]:
    """All or nothing: every item is validated first, and one bad item refuses the batch (400
    naming each bad item as ``items.<index>.<field>``)."""
    if len(items) > MAX_BATCH:
        raise TooLargeError(f"items: at most {MAX_BATCH} records a request: split it")
    planner = _Planner(store, kind)
    planner.prefetch(items)
    plans: list[_Plan[R]] = []
    problems: list[str] = []
    for index, given in enumerate(items):
        try:
            plans.append(planner.plan(given, row=index))
        except _Invalid as exc:
            problems += [f"items.{index}.{problem}" for problem in exc.problems]
    if problems:
        raise BadRequestError("; ".join(problems))
    return _write(store, queue, caller, kind, plans, source="bulk")


def import_csv(
    store: CrmEditStore, queue: Queue, caller: Caller, kind: Kind[R], data: bytes
) -> WriteReport[R]:
    """Write the good rows of a CSV file, report the bad ones (``shared/domain/crm_csv.py``).

    CsvError (400) / CsvTooLargeError (413) for a file that cannot be imported at all.
    """
    parsed = parse_csv(data, kind.input)
    planner = _Planner(store, kind)
    planner.prefetch(given for _, given in parsed.rows)
    plans: list[_Plan[R]] = []
    errors = list(parsed.errors)
    for row, given in parsed.rows:
        try:
            plans.append(planner.plan(given, row=row))
        except _Invalid as exc:
            errors.append(RowError(row, exc.problems))
    report = _write(store, queue, caller, kind, plans, source="csv")
    report.errors = sorted(errors, key=lambda e: e.row)
    return report


def set_graveyard(
    store: CrmEditStore, queue: Queue, caller: Caller, investor_id: str, graveyard: bool
) -> WriteReport[Investor]:
    """Mark or unmark a graveyard investor: no re-match (graveyard mail keeps its links)."""
    get_record(store, INVESTOR, investor_id)
    given = InvestorInput(graveyard=graveyard)
    return upsert(store, queue, caller, INVESTOR, given, record_id=investor_id, action="graveyard")


def soft_delete(
    store: CrmEditStore, queue: Queue, caller: Caller, kind: Kind[R], record_id: str
) -> WriteReport[R]:
    """Mark a record deleted (kept, with ``deleted_at``); it stops matching. Idempotent."""
    get_record(store, kind, record_id)
    given = kind.input.model_validate({"deleted": True})
    return upsert(store, queue, caller, kind, given, record_id=record_id, action="delete")


def _write(
    store: CrmEditStore,
    queue: Queue,
    caller: Caller,
    kind: Kind[R],
    plans: list[_Plan[R]],
    *,
    source: str,
    action: str = "",
) -> WriteReport[R]:
    keys = RematchKeys()
    for plan in plans:
        keys |= plan.keys
    rematch_keys(keys.addresses, keys.domains)  # too large: refused before anything is written
    changed = [plan for plan in plans if plan.changed]
    failures = _run_all(changed, lambda plan: kind.put(store, plan.record))
    done = [plan for plan, failure in zip(changed, failures, strict=True) if failure is None]
    job_id = None
    if keys and done:
        # Queued even when some writes failed: the keys of a record left as it was only make
        # the job look at mail whose links are already right.
        names = ", ".join(plan.record.id for plan in done[:3])
        more = f" and {len(done) - 3} more" if len(done) > 3 else ""
        job_id = queue_rematch(
            store,
            queue,
            addresses=keys.addresses,
            domains=keys.domains,
            reason=f"{kind.name} {source}: {names}{more}",
            actor=caller.email,
        )

    def audit(plan: _Plan[R]) -> None:
        store.append_audit(
            AuditEntry(
                actor=caller.email,
                action=f"{kind.name}.{action or _verb(plan)}",
                target=plan.record.id,
                details={
                    "fields": plan.fields,
                    "source": source,
                    **({"row": plan.row} if source == "csv" else {}),
                    **({"job_id": job_id} if job_id and plan.keys else {}),
                },
            )
        )

    failures += _run_all(done, audit)
    failure = next((f for f in failures if f is not None), None)
    if failure is not None:
        logger.error(
            "CRM write partly failed",
            extra={
                "fields": {
                    "event": "crm_write_failed",
                    "kind": kind.name,
                    "written": len(done),
                    "failed": len(changed) - len(done),
                    "job_id": job_id,
                }
            },
        )
        raise failure
    written = [Written(p.record, p.stored is None, p.changed, p.row) for p in plans]
    return WriteReport(written=written, job_id=job_id)


def _run_all(items: Sequence[T], do: Callable[[T], object]) -> list[BaseException | None]:
    """``do(item)`` for each item, several at once when there are many (each store call is a
    round trip on Firestore); the exception each raised, or None."""

    def attempt(item: T) -> BaseException | None:
        try:
            do(item)
        except Exception as exc:
            return exc
        return None

    if len(items) <= 1:
        return [attempt(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(attempt, items))


def _verb(plan: _Plan[Any]) -> str:
    if plan.stored is None:
        return "create"
    if "deleted" in plan.fields:
        return "delete" if plan.record.deleted else "restore"
    return "update"


def contacts_of(store: CrmStore, investor_id: str) -> list[Contact]:
    """The investor's live contacts, by id."""
    get_record(store, INVESTOR, investor_id)
    return store.find_contacts_by_investors([investor_id])


# -- the exclusion list ------------------------------------------------------------------------


def get_exclusions(store: SettingsStore) -> tuple[list[str], list[str]]:
    """(addresses, domains) never matched."""
    return split_exclusions(store.get_setting(EXCLUSIONS_SETTING) or [])


def set_exclusions(
    store: SettingsStore,
    queue: Queue,
    caller: Caller,
    *,
    addresses: Iterable[str],
    domains: Iterable[str],
) -> tuple[list[str], list[str], str | None]:
    """Replace the list; re-match what entered or left it. Returns the list and the job id
    (None when nothing changed). Domains may be written ``@x.com``."""
    try:
        wanted = [normalize_address(a) for a in addresses], [normalize_domain(d) for d in domains]
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None
    if max(map(len, wanted)) > MAX_EXCLUSIONS:
        raise TooLargeError(f"at most {MAX_EXCLUSIONS} addresses and {MAX_EXCLUSIONS} domains")
    entries = exclusion_entries(*wanted)
    seen: list[Any] = []

    def change(current: Any | None) -> Any:
        seen[:] = [current]  # the last run is the one that committed
        return entries

    store.update_setting(EXCLUSIONS_SETTING, change)
    before = [str(e) for e in (seen[0] or [])] if seen else []
    keys = exclusion_keys(before, entries)
    new_addresses, new_domains = split_exclusions(entries)
    if not keys:
        return new_addresses, new_domains, None
    job_id = queue_rematch(
        store,
        queue,
        addresses=keys.addresses,
        domains=keys.domains,
        reason="exclusion list changed",
        actor=caller.email,
    )
    old_addresses, old_domains = split_exclusions(before)
    store.append_audit(
        AuditEntry(
            actor=caller.email,
            action="exclusions.update",
            target=EXCLUSIONS_SETTING,
            details={
                "added": sorted(
                    set(new_addresses) - set(old_addresses)
                    | {f"@{d}" for d in set(new_domains) - set(old_domains)}
                ),
                "removed": sorted(
                    set(old_addresses) - set(new_addresses)
                    | {f"@{d}" for d in set(old_domains) - set(new_domains)}
                ),
                "job_id": job_id,
            },
        )
    )
    return new_addresses, new_domains, job_id


# -- jobs --------------------------------------------------------------------------------------


def get_job(store: SettingsStore, job_id: str) -> Guard:
    """The re-match job's record (its progress in ``data``); 404 for an unknown id."""
    guard = store.get_guard(job_guard_id(job_id)) if _JOB_ID.fullmatch(job_id) else None
    if guard is None:
        raise NotFoundError("no such job", job_id=job_id)
    return guard
