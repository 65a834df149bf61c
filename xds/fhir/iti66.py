"""ITI-66 Find Document Lists: List search and read for SubmissionSets and Folders.

``code=submissionset`` runs ITI-18 FindSubmissionSets, ``code=folder`` FindFolders (both when
``code`` is absent: SubmissionSets first, then Folders, each sorted by entryUUID); the page
shown is mapped to MHD Lists whose entries are the member DocumentReferences (HasMember).
``identifier`` narrows the hits afterwards (entryUUID or uniqueId).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from xds.ebrim.query import QuerySlot
from xds.ebrim.vocabulary import Status, StoredQuery
from xds.fhir.context import FhirContext
from xds.fhir.docref import LIST_TYPES, folder_list, load_objects, members, submission_set_list
from xds.fhir.errors import invalid, not_found
from xds.fhir.ids import domain_of_system
from xds.fhir.interactions import ResourceType
from xds.fhir.iti67 import (
    check_id, date_range, identifier_filter, require_patients, run_query, statuses, xds_code,
)
from xds.fhir.search import (
    ParamType, SearchParam, SearchRequest, SearchResult, SearchSpec, parse_token,
)
from xds.model.metadata import Folder, SubmissionSet
from xds.registry.querybase import Hit, QueryResult
from xds.store.db import read_connection
from xds.store.tables import folder, submission_set

__all__ = ["LIST"]

_T, _D, _R = ParamType.token, ParamType.date, ParamType.reference
SPEC = SearchSpec("List", (
    SearchParam("patient", _R, "the subject Patient (required, or patient.identifier)"),
    SearchParam("patient.identifier", _T, "the subject's identifier urn:oid:<authority>|<id>"),
    SearchParam("code", _T, f"submissionset | folder ({LIST_TYPES}); both when absent"),
    SearchParam("status", _T, "current (Approved) | retired (Deprecated); required"),
    SearchParam("date", _D, "submissionTime (SubmissionSet) / lastUpdateTime (Folder)"),
    SearchParam("identifier", _T, "entryUUID (urn:uuid:...) or uniqueId (urn:oid:...)"),
    SearchParam("sourceId", _T, "SubmissionSet sourceId (urn:oid:... or the OID)"),
    SearchParam("designationType", _T, "contentTypeCode (SubmissionSet) / codeList (Folder) "
                "as system|code"),
))
_STATUS = {"current": Status.Approved.value, "retired": Status.Deprecated.value,
           "superseded": Status.Deprecated.value}
_KINDS = ("submissionset", "folder")


def _kinds(search: SearchRequest) -> list[str]:
    """The List kinds ``code`` asks for (both when absent; 400 for another code)."""
    if not search.has("code"):
        return list(_KINDS)
    kinds = []
    for value in search.one("code"):
        token = parse_token(value, "code")
        if token.code not in _KINDS or token.system not in (None, LIST_TYPES):
            raise invalid(f"code={value!r}: give {LIST_TYPES}|submissionset or |folder",
                          expression="code")
        kinds.append(token.code)
    return kinds


def _source_ids(search: SearchRequest) -> tuple[str, ...]:
    """sourceId values as OIDs (``urn:oid:`` dropped; a ``system|`` part is ignored)."""
    codes = (parse_token(v, "sourceId").code for v in search.one("sourceId"))
    return tuple(domain_of_system(c) or c for c in codes)


def _submission_set_slots(search: SearchRequest, patient: str,
                          wanted: list[str]) -> list[QuerySlot]:
    prefix = "$XDSSubmissionSet"
    slots = [QuerySlot(prefix + "PatientId", (patient,)), QuerySlot(prefix + "Status",
                                                                     tuple(wanted))]
    low, high = date_range(search.dates("date"), "date")
    slots += [QuerySlot(prefix + s, (v,)) for s, v in (("SubmissionTimeFrom", low),
                                                       ("SubmissionTimeTo", high)) if v]
    if sources := _source_ids(search):
        slots.append(QuerySlot(prefix + "SourceId", sources))
    if search.has("designationType"):
        slots.append(QuerySlot(prefix + "ContentType", tuple(
            xds_code(t, "designationType") for t in search.tokens("designationType")[0])))
    return slots


def _folder_slots(search: SearchRequest, patient: str, wanted: list[str]) -> list[QuerySlot]:
    prefix = "$XDSFolder"
    slots = [QuerySlot(prefix + "PatientId", (patient,)), QuerySlot(prefix + "Status",
                                                                     tuple(wanted))]
    low, high = date_range(search.dates("date"), "date")
    slots += [QuerySlot(prefix + s, (v,)) for s, v in (("LastUpdateTimeFrom", low),
                                                       ("LastUpdateTimeTo", high)) if v]
    slots += [QuerySlot(prefix + "CodeList", tuple(xds_code(t, "designationType") for t in g))
              for g in search.tokens("designationType")]
    return slots


def _sorted(hits: list[Hit]) -> list[Hit]:
    return sorted({h.id: h for h in hits}.values(), key=lambda h: h.id)


def search_lists(ctx: FhirContext, search: SearchRequest) -> SearchResult:
    """ITI-66: FindSubmissionSets / FindFolders for the patient named, paged."""
    patients = require_patients(ctx, search)
    wanted = statuses(search, _STATUS)
    kinds = _kinds(search)
    if len(search.groups("designationType")) > 1 and "submissionset" in kinds:
        raise invalid("designationType may be given only once for submission sets",
                      expression="designationType")
    # The parameters are checked even when nobody matches.
    _submission_set_slots(search, "", wanted)
    _folder_slots(search, "", wanted)
    sets: list[Hit] = []
    folders: list[Hit] = []
    with read_connection(ctx.engine) as conn:
        for patient in patients if wanted else []:
            if "submissionset" in kinds:
                sets += run_query(ctx, conn, StoredQuery.FindSubmissionSets,
                                  _submission_set_slots(search, patient, wanted)).submission_sets
            if "folder" in kinds and not search.has("sourceId"):
                folders += run_query(ctx, conn, StoredQuery.FindFolders,
                                     _folder_slots(search, patient, wanted)).folders
        sets = _sorted(identifier_filter(conn, search, sets, submission_set))
        folders = _sorted(identifier_filter(conn, search, folders, folder))
        total = len(sets) + len(folders)
        if search.summary_count:
            return SearchResult(total, [])
        page = list(search.page([*sets, *folders]))
        ids = {h.id for h in sets}
        result = QueryResult(submission_sets=[h for h in page if h.id in ids],
                             folders=[h for h in page if h.id not in ids])
        return SearchResult(total, _resources(conn, result))


def _resources(conn: Connection, result: QueryResult) -> list[dict[str, Any]]:
    objects = load_objects(conn, result)
    held = members(conn, [o.entry_uuid for o in objects])
    out = []
    for obj in objects:
        if isinstance(obj, SubmissionSet):
            out.append(submission_set_list(obj, held.get(obj.entry_uuid, [])))
        elif isinstance(obj, Folder):
            out.append(folder_list(obj, held.get(obj.entry_uuid, [])))
    return out


def read_list(ctx: FhirContext, resource: str) -> dict[str, Any]:
    """The List of the SubmissionSet or Folder with id ``resource`` (404 otherwise)."""
    uuid = check_id(resource, "List")
    with read_connection(ctx.engine) as conn:
        for table, field in ((submission_set, "submission_sets"), (folder, "folders")):
            row = conn.execute(select(table.c.id, table.c.patient_id).where(
                table.c.id == uuid)).first()
            if row is not None:
                found = _resources(conn, QueryResult(**{field: [Hit(row[0], row[1])]}))
                if found:
                    return found[0]
    raise not_found(f"List/{resource} is not known")


LIST = ResourceType(
    spec=SPEC, read=read_list, search=search_lists,
    profiles=("https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.SubmissionSet",
              "https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Folder"),
    documentation="MHD Document Responder: ITI-66 Find Document Lists over FindSubmissionSets "
                  "and FindFolders")
