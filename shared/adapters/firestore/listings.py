"""The Firestore Store's listings (``shared.ports.listings``): the admin lists' pages and the
listing keys they sort on, stored as top-level fields beside each record's model
(``listing_name``, ``last_contact_key``, ``email_domains``; activities' ``sort_key``).

Every page is one query served by one declared index: equality on ``deleted`` (unless deleted
records are asked for), at most one array-contains (an address or a domain), and a range and
order on the one key the list sorts by. A page resumes with ``key > last`` (or ``<`` for
newest-first lists), never a cursor or an offset, which the emulator ignores.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from google.cloud import firestore

from shared.adapters.firestore.base import FirestoreBase
from shared.adapters.firestore.documents import (
    ACTIVITIES,
    AUDIT,
    CONTACTS,
    EMAILS,
    INVESTORS,
    ORGANIZATIONS,
    PROPOSALS,
    M,
    _document,
    _model,
    _Query,
    _valid_document_id,
)
from shared.adapters.firestore.indexes import Direction
from shared.domain.activity_keys import facet_token
from shared.domain.listing_keys import (
    INVESTOR_SORT_FIELDS,
    InvestorSort,
    address_filter,
    check_investor_search,
    check_list_limit,
    contact_domains,
    domain_filter,
    investor_page_key,
    last_contact_key,
    name_listing_key,
    name_page_key,
    name_prefix_bounds,
    one_filter,
)
from shared.domain.models import (
    Activity,
    AuditEntry,
    Contact,
    Investor,
    Organization,
    Proposal,
)
from shared.domain.paging import encode_page_token, proposal_window_keys, split_time_id_key
from shared.ports import Page

_COLLECTIONS: dict[type, str] = {
    Organization: ORGANIZATIONS,
    Investor: INVESTORS,
    Contact: CONTACTS,
}


def listing_fields(record: Organization | Investor | Contact) -> dict[str, Any]:
    """The storage-only listing fields of a CRM record's document (all but the investor's
    last contact, which the investor's upsert keeps from the stored document)."""
    fields: dict[str, Any] = {"listing_name": name_listing_key(record.name, record.id)}
    if isinstance(record, Contact):
        fields["email_domains"] = contact_domains(record.emails)
    return fields


class ListingsMixin(FirestoreBase):
    """The admin lists and their keys."""

    def set_last_contact(self, investor_id: str, at: datetime | None) -> None:
        if not _valid_document_id(investor_id):
            return
        ref = self._ref(INVESTORS, investor_id)
        key = last_contact_key(at, investor_id)

        def write_last_contact(transaction: firestore.Transaction) -> None:
            if ref.get(transaction=transaction).exists:
                transaction.update(ref, {"last_contact_key": key})

        self._transact(write_last_contact)

    def _newest_listed_mail(self, investor_id: str) -> datetime | None:
        spec = _Query(
            EMAILS,
            contains_any=("activity_facets", (facet_token(investor_id, None, None),)),
            order_by=(("activity_key", Direction.DESCENDING),),
            limit=1,
        )
        for snapshot in self._query(spec):
            key = (snapshot.to_dict() or {}).get("activity_key", "")
            return split_time_id_key(key)[0] if key else None
        return None

    def refresh_listing_keys(self, investor_ids: Iterable[str] | None = None) -> int:
        """Documents written before the listing keys get them; activities their ``sort_key``
        (and their proposal's mailbox); investors their last contact from stored mail.
        Reads every CRM record (or the investors asked for): a maintenance command's cost."""
        changed = 0
        if investor_ids is None:
            records: tuple[type[Organization] | type[Contact], ...] = (Organization, Contact)
            for cls in records:
                for snapshot in self._query(_Query(_COLLECTIONS[cls])):
                    data = snapshot.to_dict() or {}
                    wanted = listing_fields(_model(cls, data))
                    if any(data.get(k) != v for k, v in wanted.items()):
                        snapshot.reference.update(wanted)
                        changed += 1
            for snapshot in self._query(_Query(ACTIVITIES)):
                changed += self._refresh_activity_keys(snapshot)
            investors = [s.id for s in self._query(_Query(INVESTORS))]
        else:
            investors = sorted(set(investor_ids))
        for investor_id in investors:
            investor = self._get(Investor, INVESTORS, investor_id)
            if investor is None:
                continue
            snapshot = self._ref(INVESTORS, investor_id).get()
            data = snapshot.to_dict() or {}
            wanted = {
                **listing_fields(investor),
                "last_contact_key": last_contact_key(
                    self._newest_listed_mail(investor_id), investor_id
                ),
            }
            if any(data.get(k) != v for k, v in wanted.items()):
                snapshot.reference.update(wanted)
                changed += 1
        return changed

    def _refresh_activity_keys(self, snapshot: firestore.DocumentSnapshot) -> int:
        data = snapshot.to_dict() or {}
        activity = _model(Activity, data)
        if activity.account_id is None:
            proposal = self._get(Proposal, PROPOSALS, activity.proposal_id)
            if proposal is not None and proposal.account_id:
                activity = activity.model_copy(update={"account_id": proposal.account_id})
        if data.get("sort_key") == activity.sort_key and data.get("account_id") == (
            activity.account_id
        ):
            return 0
        snapshot.reference.set(_document(activity, sort_key=activity.sort_key))
        return 1

    # -- pages -----------------------------------------------------------------------------

    def _name_page(
        self,
        cls: type[M],
        *,
        contains: tuple[str, str] | None,
        name_prefix: str,
        include_deleted: bool,
        limit: int,
        page_token: str,
        include_graveyard: bool = True,
    ) -> Page[M]:
        check_list_limit(limit)
        lower: tuple[str, str, Any] | None = None
        upper: tuple[str, str, Any] | None = None
        if name_prefix:
            low, high = name_prefix_bounds(name_prefix)
            lower = ("listing_name", ">=", low)
            upper = ("listing_name", "<", high)
        if page_token:
            resume = name_page_key(page_token)
            if lower is None or resume >= lower[2]:
                lower = ("listing_name", ">", resume)
        spec = _Query(
            _COLLECTIONS[cls],
            equals=_live(include_deleted, include_graveyard),
            contains_any=(contains[0], (contains[1],)) if contains else None,
            range=lower or upper,
            upper=upper if lower else None,
            order_by=(("listing_name", Direction.ASCENDING),),
            limit=limit + 1,
        )
        return _page(cls, self._query(spec), "listing_name", limit)

    def list_organization_page(
        self,
        *,
        name_prefix: str = "",
        domain: str = "",
        include_deleted: bool = False,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Organization]:
        return self._name_page(
            Organization,
            contains=("domains", domain_filter(domain)) if domain else None,
            name_prefix=name_prefix,
            include_deleted=include_deleted,
            limit=limit,
            page_token=page_token,
        )

    def list_contact_page(
        self,
        *,
        name_prefix: str = "",
        address: str = "",
        domain: str = "",
        include_deleted: bool = False,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Contact]:
        one_filter(address=address, domain=domain)
        contains = None
        if address:
            contains = ("email_keys", address_filter(address))
        elif domain:
            contains = ("email_domains", domain_filter(domain))
        return self._name_page(
            Contact,
            contains=contains,
            name_prefix=name_prefix,
            include_deleted=include_deleted,
            limit=limit,
            page_token=page_token,
        )

    def list_investor_page(
        self,
        *,
        sort: InvestorSort = InvestorSort.NAME,
        name_prefix: str = "",
        include_graveyard: bool = True,
        include_deleted: bool = False,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Investor]:
        check_investor_search(sort, name_prefix)
        if sort is InvestorSort.NAME:
            return self._name_page(
                Investor,
                contains=None,
                name_prefix=name_prefix,
                include_deleted=include_deleted,
                include_graveyard=include_graveyard,
                limit=limit,
                page_token=page_token,
            )
        check_list_limit(limit)
        field, descending = INVESTOR_SORT_FIELDS[sort]
        bound = None
        if page_token:
            bound = (field, "<" if descending else ">", investor_page_key(sort, page_token))
        spec = _Query(
            INVESTORS,
            equals=_live(include_deleted, include_graveyard),
            range=bound,
            order_by=((field, Direction.DESCENDING if descending else Direction.ASCENDING),),
            limit=limit + 1,
        )
        return _page(Investor, self._query(spec), field, limit)

    def _time_page(
        self,
        cls: type[M],
        collection: str,
        equals: tuple[tuple[str, Any], ...],
        window: tuple[datetime | None, datetime | None],
        limit: int,
        page_token: str,
    ) -> Page[M]:
        check_list_limit(limit)
        lower, upper = proposal_window_keys(window[0], window[1], page_token)
        bounds: list[tuple[str, str, Any]] = []
        if lower is not None:
            bounds.append(("sort_key", ">=", lower))
        if upper is not None:
            bounds.append(("sort_key", "<", upper))
        spec = _Query(
            collection,
            equals=equals,
            range=bounds[0] if bounds else None,
            upper=bounds[1] if len(bounds) > 1 else None,
            order_by=(("sort_key", Direction.DESCENDING),),
            limit=limit + 1,
        )
        return _page(cls, self._query(spec), "sort_key", limit)

    def list_activity_page(
        self,
        *,
        investor_id: str | None = None,
        contact_id: str | None = None,
        account_id: str | None = None,
        occurred_from: datetime | None = None,
        occurred_to: datetime | None = None,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Activity]:
        given = {"investor_id": investor_id, "contact_id": contact_id, "account_id": account_id}
        name = one_filter(**given)
        equals = ((name, given[name]),) if name else ()
        return self._time_page(
            Activity, ACTIVITIES, equals, (occurred_from, occurred_to), limit, page_token
        )

    def list_audit_page(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        at_from: datetime | None = None,
        at_to: datetime | None = None,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[AuditEntry]:
        given = {"actor": actor, "action": action, "target": target}
        name = one_filter(**given)
        equals = ((name, given[name]),) if name else ()
        return self._time_page(AuditEntry, AUDIT, equals, (at_from, at_to), limit, page_token)


def _live(include_deleted: bool, include_graveyard: bool) -> tuple[tuple[str, Any], ...]:
    """The equality filters that leave soft-deleted (and graveyard) records out."""
    equals: list[tuple[str, Any]] = []
    if not include_deleted:
        equals.append(("deleted", False))
    if not include_graveyard:
        equals.append(("graveyard", False))
    return tuple(equals)


def _page(
    cls: type[M], snapshots: list[firestore.DocumentSnapshot], key_field: str, limit: int
) -> Page[M]:
    """The first ``limit`` documents as models; the token is the last one's key if more follow."""
    documents = [snapshot.to_dict() or {} for snapshot in snapshots]
    items = [_model(cls, data) for data in documents[:limit]]
    more = len(documents) > limit
    return Page(items, encode_page_token(documents[limit - 1][key_field]) if more else "")
