"""CRM records (admins only): organisations, investors and contacts, and the exclusion list.

For each kind (``organizations``, ``investors``, ``contacts``):

- ``GET /<kind>/<id>``: the record (soft-deleted ones too, with ``deleted``).
- ``POST /<kind>``: create (id generated unless given; 409 if the given id exists).
- ``PUT /<kind>/<id>``: create or update; fields left out keep their stored values.
- ``POST /<kind>/bulk``: up to 500 records as JSON, all or nothing (400 names each bad item).
- ``POST /<kind>/import``: a CSV file (``text/csv``, at most 2 MiB and 2,000 rows; columns in
  ``shared/domain/crm_csv.py``): good rows are written, bad rows reported as ``{row, errors}``.
- ``DELETE /<kind>/<id>``: soft delete (kept, marked ``deleted``; it stops matching).

Plus ``POST /investors/<id>/graveyard``, ``GET /investors/<id>/contacts``, and
``GET``/``PUT /exclusions``. The lists (``GET /investors`` and the others) are in ``lists.py``.

A write that changes what matching sees (addresses, domains, an organisation, a reference,
deletion; never graveyard) queues one re-match job for the request and answers **202** with its
``job_id`` (``GET /jobs/<job_id>``); otherwise 201 (created) or 200. Every write is audited.
Rules: ``shared/services/crm.py`` and ``shared/domain/crm.py``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import flask
from pydantic import BaseModel, Field

from functions.admin.schemas import ApiModel
from functions.admin_api import api
from shared import wiring
from shared.domain.crm import (
    ContactInput,
    CrmInput,
    InputAddress,
    InputDomain,
    InvestorInput,
    OrganizationInput,
)
from shared.domain.crm_csv import MAX_CSV_BYTES, CsvError, CsvTooLargeError
from shared.domain.models import Caller, Contact, Investor, Organization
from shared.errors import BadRequestError, ErrorKind, TooLargeError
from shared.services import crm
from shared.web import ADMINS, Reply, SplitBeyondMax, read_body

CSV_TYPES = frozenset({"text/csv", "text/plain", "application/csv", "application/vnd.ms-excel"})


class UnsupportedMediaTypeError(BadRequestError):
    kind = ErrorKind.UNSUPPORTED_MEDIA
    code = "unsupported_media_type"


# -- reply models ------------------------------------------------------------------------------


class OrganizationWrite(ApiModel):
    """The organisation after the write; ``job_id`` when it queued a re-match (202)."""

    record: Organization
    created: bool
    changed: bool
    job_id: str | None = None


class InvestorWrite(ApiModel):
    """The investor after the write; ``job_id`` when it queued a re-match (202)."""

    record: Investor
    created: bool
    changed: bool
    job_id: str | None = None


class ContactWrite(ApiModel):
    """The contact after the write; ``job_id`` when it queued a re-match (202)."""

    record: Contact
    created: bool
    changed: bool
    job_id: str | None = None


# Over crm.MAX_BATCH items is the request being too large (413: split it), not malformed.
class OrganizationBatch(ApiModel):
    items: Annotated[list[OrganizationInput], SplitBeyondMax()] = Field(
        min_length=1, max_length=crm.MAX_BATCH
    )


class InvestorBatch(ApiModel):
    items: Annotated[list[InvestorInput], SplitBeyondMax()] = Field(
        min_length=1, max_length=crm.MAX_BATCH
    )


class ContactBatch(ApiModel):
    items: Annotated[list[ContactInput], SplitBeyondMax()] = Field(
        min_length=1, max_length=crm.MAX_BATCH
    )


class OrganizationBatchResult(ApiModel):
    items: list[Organization]
    created: int
    updated: int
    unchanged: int
    job_id: str | None = None


class InvestorBatchResult(ApiModel):
    items: list[Investor]
    created: int
    updated: int
    unchanged: int
    job_id: str | None = None


class ContactBatchResult(ApiModel):
    items: list[Contact]
    created: int
    updated: int
    unchanged: int
    job_id: str | None = None


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class ImportedRow(ApiModel):
    row: int
    id: str
    outcome: Outcome


class RowProblem(ApiModel):
    """A row that was not imported, and why (the header is row 1)."""

    row: int
    errors: list[str]


class ImportReport(ApiModel):
    """A CSV import: what each good row did, what was wrong with each bad one."""

    rows: int = Field(description="Data rows read (blank rows aside).")
    created: int
    updated: int
    unchanged: int
    imported: list[ImportedRow]
    errors: list[RowProblem]
    job_id: str | None = None


class Graveyard(ApiModel):
    graveyard: bool


class ContactList(ApiModel):
    items: list[Contact]


class ExclusionList(ApiModel):
    """Never matched: these addresses (compared as Gmail delivers, dots and +tags folded on
    gmail.com) and these domains (with their subdomains)."""

    addresses: list[str]
    domains: list[str] = Field(description="Domains, without the leading '@'.")


class ExclusionChange(ApiModel):
    """The whole list (it replaces the stored one); domains may be written ``@x.com``."""

    addresses: Annotated[list[InputAddress], SplitBeyondMax()] = Field(
        default_factory=list, max_length=crm.MAX_EXCLUSIONS
    )
    domains: Annotated[list[InputDomain], SplitBeyondMax()] = Field(
        default_factory=list, max_length=crm.MAX_EXCLUSIONS
    )


class ExclusionWrite(ExclusionList):
    job_id: str | None = None


# -- routes, the same for each kind ----------------------------------------------------------------


def _status(report: crm.WriteReport[Any], *, default: int = 200) -> int:
    if report.job_id:
        return 202
    if report.written and report.written[0].created:
        return 201
    return default


def _reply(model: type[BaseModel], report: crm.WriteReport[Any], *, default: int = 200) -> Reply:
    (written,) = report.written
    body = model(
        record=written.record,
        created=written.created,
        changed=written.changed,
        job_id=report.job_id,
    )
    return Reply(body, _status(report, default=default))


def _batch_reply(model: type[BaseModel], report: crm.WriteReport[Any]) -> Reply:
    body = model(
        items=[w.record for w in report.written],
        created=report.count("created"),
        updated=report.count("updated"),
        unchanged=report.count("unchanged"),
        job_id=report.job_id,
    )
    return Reply(body, 202 if report.job_id else 200)


def _csv_body(request: flask.Request) -> bytes:
    if request.mimetype and request.mimetype not in CSV_TYPES:
        raise UnsupportedMediaTypeError(
            f"send the file as text/csv, not {request.mimetype}", accepted=sorted(CSV_TYPES)
        )
    try:
        return read_body(request, MAX_CSV_BYTES)
    except TooLargeError:
        raise TooLargeError(f"the file is over {MAX_CSV_BYTES} bytes: split it") from None


def _register(
    kind: crm.Kind[Any],
    plural: str,
    write_model: type[BaseModel],
    batch_model: type[BaseModel],
    batch_result: type[BaseModel],
) -> None:
    """The seven routes of one kind. Handlers get per-kind names: they are the operation ids."""
    name, model, id_param = kind.name, kind.model, f"{kind.name}_id"
    article = "an" if name[0] in "aeiou" else "a"

    def named(handler: Any, function_name: str, doc: str) -> Any:
        handler.__name__ = handler.__qualname__ = function_name
        handler.__doc__ = doc
        return handler

    def get_one(request: flask.Request, caller: Caller, **path: str) -> BaseModel:
        return crm.get_record(wiring.store(), kind, path[id_param])

    api.route("GET", f"/{plural}/<{id_param}>", roles=ADMINS, response=model, tag="crm")(
        named(get_one, f"get_{name}", f"One {name}, soft-deleted or not.")
    )

    def create(request: flask.Request, caller: Caller, body: CrmInput) -> Reply:
        report = crm.upsert(wiring.store(), wiring.queue(), caller, kind, body, create_only=True)
        return _reply(write_model, report, default=201)

    api.route(
        "POST",
        f"/{plural}",
        roles=ADMINS,
        body=kind.input,
        response=write_model,
        status=201,
        also=(202,),
        errors=(409, 413),
        tag="crm",
    )(
        named(
            create,
            f"create_{name}",
            f"Create {article} {name} (audited); 202 with a job id if it links mail.",
        )
    )

    def put(request: flask.Request, caller: Caller, body: CrmInput, **path: str) -> Reply:
        report = crm.upsert(
            wiring.store(), wiring.queue(), caller, kind, body, record_id=path[id_param]
        )
        return _reply(write_model, report)

    api.route(
        "PUT",
        f"/{plural}/<{id_param}>",
        roles=ADMINS,
        body=kind.input,
        response=write_model,
        also=(201, 202),
        errors=(413,),
        tag="crm",
    )(
        named(
            put,
            f"put_{name}",
            f"Create or update {article} {name}: fields left out keep their values (audited);"
            " 202 with a job id if matching changes.",
        )
    )

    def delete(request: flask.Request, caller: Caller, **path: str) -> Reply:
        report = crm.soft_delete(wiring.store(), wiring.queue(), caller, kind, path[id_param])
        return _reply(write_model, report)

    api.route(
        "DELETE",
        f"/{plural}/<{id_param}>",
        roles=ADMINS,
        response=write_model,
        also=(202,),
        errors=(413,),
        tag="crm",
    )(
        named(
            delete,
            f"delete_{name}",
            f"Soft-delete {article} {name} (audited): it stops matching; 202 with a job id"
            " when that unlinks mail.",
        )
    )

    def bulk(request: flask.Request, caller: Caller, body: Any) -> Reply:
        report = crm.upsert_batch(wiring.store(), wiring.queue(), caller, kind, body.items)
        return _batch_reply(batch_result, report)

    api.route(
        "POST",
        f"/{plural}/bulk",
        roles=ADMINS,
        body=batch_model,
        response=batch_result,
        also=(202,),
        errors=(413,),
        tag="crm",
    )(
        named(
            bulk,
            f"bulk_{name}s",
            f"Create or update up to {crm.MAX_BATCH} {plural}, all or nothing (audited each);"
            " one re-match job for the batch (202).",
        )
    )

    def import_file(request: flask.Request, caller: Caller) -> Reply:
        try:
            report = crm.import_csv(
                wiring.store(), wiring.queue(), caller, kind, _csv_body(request)
            )
        except CsvTooLargeError as exc:
            raise TooLargeError(str(exc)) from None
        except CsvError as exc:
            raise BadRequestError(str(exc)) from None
        body = ImportReport(
            rows=len(report.written) + len(report.errors),
            created=report.count("created"),
            updated=report.count("updated"),
            unchanged=report.count("unchanged"),
            imported=[
                ImportedRow(row=w.row, id=w.record.id, outcome=Outcome(crm.outcome(w)))
                for w in report.written
            ],
            errors=[RowProblem(row=e.row, errors=e.errors) for e in report.errors],
            job_id=report.job_id,
        )
        return Reply(body, 202 if report.job_id else 200)

    api.route(
        "POST",
        f"/{plural}/import",
        roles=ADMINS,
        raw_body="text/csv",
        response=ImportReport,
        also=(202,),
        errors=(413, 415),
        tag="crm",
    )(
        named(
            import_file,
            f"import_{name}s",
            f"Import {plural} from a CSV file: good rows written (audited each), bad rows"
            " reported; one re-match job for the file (202).",
        )
    )


_register(
    crm.ORGANIZATION,
    "organizations",
    OrganizationWrite,
    OrganizationBatch,
    OrganizationBatchResult,
)
_register(crm.INVESTOR, "investors", InvestorWrite, InvestorBatch, InvestorBatchResult)
_register(crm.CONTACT, "contacts", ContactWrite, ContactBatch, ContactBatchResult)


# -- investors only ----------------------------------------------------------------------------


@api.route(
    "POST",
    "/investors/<investor_id>/graveyard",
    roles=ADMINS,
    body=Graveyard,
    response=InvestorWrite,
    tag="crm",
)
def set_graveyard(
    request: flask.Request, caller: Caller, investor_id: str, body: Graveyard
) -> InvestorWrite:
    """Mark or unmark a graveyard investor (audited). Its mail stays linked and listed; it
    leaves the picker. Never a re-match."""
    report = crm.set_graveyard(wiring.store(), wiring.queue(), caller, investor_id, body.graveyard)
    (written,) = report.written
    return InvestorWrite(record=written.record, created=False, changed=written.changed)


@api.route(
    "GET", "/investors/<investor_id>/contacts", roles=ADMINS, response=ContactList, tag="crm"
)
def investor_contacts(request: flask.Request, caller: Caller, investor_id: str) -> ContactList:
    """The investor's live contacts, by id."""
    return ContactList(items=crm.contacts_of(wiring.store(), investor_id))


# -- the exclusion list --------------------------------------------------------------------------


@api.route("GET", "/exclusions", roles=ADMINS, response=ExclusionList, tag="crm")
def get_exclusions(request: flask.Request, caller: Caller) -> ExclusionList:
    """Addresses and domains that never match."""
    addresses, domains = crm.get_exclusions(wiring.store())
    return ExclusionList(addresses=addresses, domains=domains)


@api.route(
    "PUT",
    "/exclusions",
    roles=ADMINS,
    body=ExclusionChange,
    response=ExclusionWrite,
    also=(202,),
    errors=(413,),
    tag="crm",
)
def put_exclusions(request: flask.Request, caller: Caller, body: ExclusionChange) -> Reply:
    """Replace the exclusion list (audited); 202 with a job id that unlinks newly excluded
    mail and links what is no longer excluded."""
    addresses, domains, job_id = crm.set_exclusions(
        wiring.store(), wiring.queue(), caller, addresses=body.addresses, domains=body.domains
    )
    body_out = ExclusionWrite(addresses=addresses, domains=domains, job_id=job_id)
    return Reply(body_out, 202 if job_id else 200)
