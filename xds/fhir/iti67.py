"""ITI-67 Find Document References: DocumentReference search and read.

A search is translated to the Slots of an ITI-18 FindDocuments and answered by the registry's
own ``check_params`` + ``run_stored_query``, so it finds exactly what ITI-18 finds; only the
page shown is loaded and mapped. ``identifier`` (entryUUID or uniqueId) and ``related``
(referenceIdList, matched by prefix so that ``urn:oid:<oid>|id`` finds a typed CXi) narrow the
hits afterwards. An XdsError of the stored
query becomes an OperationOutcome carrying its IHE error code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, or_, select

from xds.ebrim.query import QuerySlot
from xds.ebrim.vocabulary import Status, StoredQuery
from xds.fhir.context import FhirContext
from xds.fhir.docref import (
    document_reference, entry_uuid, load_objects, relations,
)
from xds.fhir.errors import FhirError, Issue, invalid, not_found
from xds.fhir.identity import patient_identities
from xds.fhir.ids import domain_of_system
from xds.fhir.interactions import ResourceType
from xds.fhir.search import (
    DateParam, ParamType, SearchParam, SearchRequest, SearchResult, SearchSpec, Token,
    parse_token,
)
from xds.model.errors import ErrorCode, XdsError
from xds.model.metadata import DocumentEntry
from xds.registry.querybase import Hit, QueryResult, chunks
from xds.registry.queryparams import check_params, query_spec
from xds.registry.storedqueries import run_stored_query
from xds.store.db import read_connection
from xds.store.tables import document_entry, document_reference_id

__all__ = ["DOCUMENT_REFERENCE", "search_documents", "read_document", "related_filter",
           "xds_code", "code_slot", "statuses", "date_range", "require_patients", "run_query",
           "identifier_filter", "check_id", "SLOT"]

_T, _D, _S, _R = ParamType.token, ParamType.date, ParamType.string, ParamType.reference
SLOT = "$XDSDocumentEntry"
SPEC = SearchSpec("DocumentReference", (
    SearchParam("patient", _R, "the subject Patient (required, or patient.identifier)"),
    SearchParam("patient.identifier", _T, "the subject's identifier urn:oid:<authority>|<id> "
                "(required, or patient)"),
    SearchParam("status", _T, "current (Approved) | superseded (Deprecated); required"),
    SearchParam("creation", _D, "attachment.creation (creationTime) with eq/ge/gt/le/lt"),
    SearchParam("author.given", _S, "author given name (AuthorPerson pattern)"),
    SearchParam("author.family", _S, "author family name (AuthorPerson pattern)"),
    SearchParam("category", _T, "classCode as system|code"),
    SearchParam("type", _T, "typeCode as system|code"),
    SearchParam("setting", _T, "practiceSettingCode as system|code"),
    SearchParam("period", _D, "context.period: ge/gt -> serviceStartTime from, le/lt -> "
                "serviceStopTime to"),
    SearchParam("facility", _T, "healthcareFacilityTypeCode as system|code"),
    SearchParam("event", _T, "eventCodeList as system|code (repeat to AND)"),
    SearchParam("security-label", _T, "confidentialityCode as system|code (repeat to AND)"),
    SearchParam("format", _T, "formatCode as system|code"),
    SearchParam("related", _T, "referenceIdList: a CXi value, or urn:oid:<authority>|<id> "
                "(matches id^^^&authority&ISO of any type); repeat to AND",
                frozenset({"identifier"})),
    SearchParam("identifier", _T, "entryUUID (urn:uuid:...) or uniqueId (urn:oid:... or "
                "urn:ietf:rfc:3986|value)"),
))
_STATUS = {"current": Status.Approved.value, "superseded": Status.Deprecated.value}
#: Single-slot code parameters (ORed values) and the AND/OR ones (one Slot per repetition).
_CODES = {"category": "ClassCode", "type": "TypeCode", "setting": "PracticeSettingCode",
          "facility": "HealthcareFacilityTypeCode", "format": "FormatCode"}
_AND_OR = {"event": "EventCodeList", "security-label": "ConfidentialityCode"}


def xds_code(token: Token, name: str) -> str:
    """``code^^scheme`` of a ``system|code`` token (urn:oid:X -> X; 400 without both)."""
    if not token.system or not token.code or "^" in token.code or "^" in token.system:
        raise invalid(f"{name}: give system|code (e.g. urn:oid:2.16.840.1.113883.6.1|"
                      "18842-5); XDS codes belong to a coding scheme", expression=name)
    return f"{token.code}^^{domain_of_system(token.system) or token.system}"


def code_slot(search: SearchRequest, name: str, slot: str) -> list[QuerySlot]:
    """The Slot of a single-slot code parameter (its ORed values), none when absent."""
    if not search.has(name):
        return []
    tokens = search.tokens(name)
    if len(tokens) > 1:
        raise invalid(f"{name} may be given only once (use commas for alternatives)",
                      expression=name)
    return [QuerySlot(slot, tuple(xds_code(t, name) for t in tokens[0]))]


def statuses(search: SearchRequest, table: dict[str, str], name: str = "status") -> list[str]:
    """The XDS statuses ``status`` asks for (400 when absent or unknown)."""
    if not search.has(name):
        raise invalid(f"{name} is required ({' | '.join(table)})", expression=name)
    out = []
    for group in search.tokens(name):
        for token in group:
            if token.code not in table and token.code != "entered-in-error":
                raise invalid(f"{name}={token.code!r} is not one of {', '.join(table)}",
                              expression=name)
            if token.code in table:
                out.append(table[token.code])
    return out


def date_range(params: Sequence[DateParam], name: str) -> tuple[str | None, str | None]:
    """The intersection (From inclusive, To exclusive) of the date values (400 for ``ne``)."""
    low: str | None = None
    high: str | None = None
    for param in params:
        if param.prefix in ("ne", "ap"):
            raise invalid(f"{name}: the prefix {param.prefix} is not supported (use eq, ge, gt, "
                          "le, lt)", expression=name)
        lo, hi = param.bounds()
        low = max(low, lo) if low and lo else (lo or low)
        high = min(high, hi) if high and hi else (hi or high)
    return low, high


def require_patients(ctx: FhirContext, search: SearchRequest) -> list[str]:
    """The affinity-domain ids (CX) of the patient named (400 when none is named)."""
    identities = patient_identities(ctx, search)
    if identities is None:
        raise invalid("patient or patient.identifier is required", expression="patient")
    ids = [cx for i in identities for cx in i.affinity_ids(ctx.settings.affinity_domain)]
    return list(dict.fromkeys(ids))


def run_query(ctx: FhirContext, conn: Connection, query: StoredQuery,
              slots: list[QuerySlot]) -> QueryResult:
    """``query`` with ``slots`` through the ITI-18 code path; XdsError -> OperationOutcome."""
    try:
        return run_stored_query(check_params(query_spec(query.value), slots), conn,
                                ctx.registry)
    except XdsError as exc:
        raise _outcome(exc) from None


def _identifiers(search: SearchRequest) -> tuple[set[str], set[str]] | None:
    """(entryUUIDs, uniqueIds) ``identifier`` names (ORed), None when absent."""
    if not search.has("identifier"):
        return None
    uuids: set[str] = set()
    uids: set[str] = set()
    for value in search.one("identifier"):
        code = parse_token(value, "identifier").code
        if code.startswith("urn:uuid:"):
            uuids.add(code)
        elif code:
            uids.add(code.removeprefix("urn:oid:"))
    return uuids, uids


def identifier_filter(conn: Connection, search: SearchRequest, hits: list[Hit],
                      table: Any = document_entry) -> list[Hit]:
    """``hits`` narrowed to those ``identifier`` names (all of them when it is absent)."""
    wanted = _identifiers(search)
    if wanted is None:
        return hits
    uuids, uids = wanted
    keep: set[str] = set()
    for part in chunks([h.id for h in hits]):
        keep.update(conn.execute(select(table.c.id).where(
            table.c.id.in_(part),
            or_(table.c.id.in_(sorted(uuids)), table.c.unique_id.in_(sorted(uids))))).scalars())
    return [h for h in hits if h.id in keep]


def _related_values(search: SearchRequest) -> list[list[str]]:
    """The CXi prefixes ``related`` asks for: ANDed groups of ORed ``id^^^&oid&ISO`` (from
    ``urn:oid:<oid>|id``) or raw CXi values."""
    groups = []
    for group in search.tokens("related"):
        values = []
        for token in group:
            domain = domain_of_system(token.system) if token.system else None
            if token.system and domain is None or not token.code:
                raise invalid("related: give urn:oid:<assigning authority>|<id> or a CXi "
                              "value", expression="related")
            values.append(f"{token.code}^^^&{domain}&ISO" if domain else token.code)
        groups.append(values)
    return groups


def related_filter(conn: Connection, search: SearchRequest, hits: list[Hit]) -> list[Hit]:
    """``hits`` narrowed to the entries whose referenceIdList holds, for every ``related``
    repetition, a value equal to one of its values or extending it with more components
    (``id^^^&oid&ISO`` matches ``id^^^&oid&ISO^urn:ihe:iti:xds:2013:accession``)."""
    groups = _related_values(search)
    if not groups:
        return hits
    ref = document_reference_id.c
    held: dict[str, list[str]] = {}
    for part in chunks([h.id for h in hits]):
        for entry, value in conn.execute(select(ref.entry_id, ref.value).where(
                ref.entry_id.in_(part))):
            held.setdefault(entry, []).append(value)

    def matches(values: list[str], wanted: list[str]) -> bool:
        return any(v == w or v.startswith(w + "^") for v in values for w in wanted)

    return [h for h in hits if all(matches(held.get(h.id, []), g) for g in groups)]


def _author(search: SearchRequest) -> list[QuerySlot]:
    """AuthorPerson patterns (XCN: ``id^family^given...``) from author.family/given."""
    families = search.one("author.family") or [""]
    givens = search.one("author.given") or [""]
    if families == [""] and givens == [""]:
        return []
    patterns = []
    for family in families:
        for given in givens:
            patterns.append(f"%^{family}%^{given}%" if given else f"%^{family}%")
    return [QuerySlot(SLOT + "AuthorPerson", tuple(patterns))]


def _slots(search: SearchRequest, patient: str, wanted: list[str]) -> list[QuerySlot]:
    """The FindDocuments Slots of ``search`` for ``patient`` and the statuses ``wanted``."""
    slots = [QuerySlot(SLOT + "PatientId", (patient,)), QuerySlot(SLOT + "Status", tuple(wanted))]
    for name, attribute in _CODES.items():
        slots += code_slot(search, name, SLOT + attribute)
    for name, attribute in _AND_OR.items():
        slots += [QuerySlot(SLOT + attribute, tuple(xds_code(t, name) for t in group))
                  for group in search.tokens(name)]
    for name, low_slot, high_slot in (("creation", "CreationTimeFrom", "CreationTimeTo"),
                                      ("period", "ServiceStartTimeFrom", "ServiceStopTimeTo")):
        low, high = date_range(search.dates(name), name)
        slots += [QuerySlot(SLOT + s, (v,)) for s, v in ((low_slot, low), (high_slot, high)) if v]
    return slots + _author(search)


def _validate(ctx: FhirContext, query: StoredQuery, search: SearchRequest) -> None:
    """Check the Slots ``search`` makes (as for a patient) without running the query."""
    slots = _slots(search, f"0^^^&{ctx.settings.affinity_domain}&ISO", [Status.Approved.value])
    try:
        check_params(query_spec(query.value), slots)
    except XdsError as exc:
        raise _outcome(exc) from None


def _outcome(exc: XdsError) -> FhirError:
    too_many = any(e.code is ErrorCode.XDSTooManyResults for e in exc.errors)
    return FhirError(400, *(Issue("too-costly" if too_many else "invalid",
                                  e.context or str(e.code), ihe_code=str(e.code))
                            for e in exc.errors))


def search_documents(ctx: FhirContext, search: SearchRequest) -> SearchResult:
    """ITI-67: FindDocuments for the patient named, paged; the page mapped to
    DocumentReferences."""
    patients = require_patients(ctx, search)
    known = statuses(search, _STATUS)
    query = StoredQuery.FindDocuments
    with read_connection(ctx.engine) as conn:
        hits: list[Hit] = []
        for patient in patients if known else []:
            hits += run_query(ctx, conn, query, _slots(search, patient, known)).document_entries
        if not hits:  # nobody or no status matched: the parameters are still checked
            _validate(ctx, query, search)
        hits = related_filter(conn, search, identifier_filter(conn, search, hits))
        hits = sorted({h.id: h for h in hits}.values(), key=lambda h: h.id)
        if search.summary_count:
            return SearchResult(len(hits), [])
        page = list(search.page(hits))
        resources = _resources(ctx, conn, page)
    return SearchResult(len(hits), resources)


def _resources(ctx: FhirContext, conn: Connection, page: Iterable[Hit]) -> list[dict[str, Any]]:
    objects = load_objects(conn, QueryResult(document_entries=list(page)))
    entries = [o for o in objects if isinstance(o, DocumentEntry)]
    related = relations(conn, [e.entry_uuid for e in entries])
    return [document_reference(e, ctx.base_url, related.get(e.entry_uuid, ())) for e in entries]


def check_id(resource: str, kind: str) -> str:
    """The entryUUID of a FHIR id (404 for a malformed one)."""
    if not resource or len(resource) > 64 or not all(c.isalnum() or c in "-." for c in resource):
        raise not_found(f"{kind}/{resource} is not known")
    return entry_uuid(resource)


def read_document(ctx: FhirContext, resource: str) -> dict[str, Any]:
    """The DocumentReference with id ``resource`` (404 when no DocumentEntry has it)."""
    uuid = check_id(resource, "DocumentReference")
    de = document_entry.c
    with read_connection(ctx.engine) as conn:
        row = conn.execute(select(de.id, de.patient_id).where(de.id == uuid)).first()
        if row is None:
            raise not_found(f"DocumentReference/{resource} is not known")
        found = _resources(ctx, conn, [Hit(row[0], row[1])])
    if not found:
        raise not_found(f"DocumentReference/{resource} is not known")
    return found[0]


DOCUMENT_REFERENCE = ResourceType(
    spec=SPEC, read=read_document, search=search_documents,
    profiles=("https://profiles.ihe.net/ITI/MHD/StructureDefinition/"
              "IHE.MHD.Comprehensive.DocumentReference",),
    documentation="MHD Document Responder: ITI-67 Find Document References over the "
                  "registry's FindDocuments (answers identical to ITI-18)")
