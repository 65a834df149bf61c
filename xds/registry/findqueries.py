"""The patient-based stored queries: Find* and GetAll (ITI TF-2 §3.18.4.1.2.3.7; ITI-51).

Each covers its patient's merged-in ids and answers their objects under it; a patient id that
was merged away finds nothing (§3.18.4.1.2.3.9).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, select, union_all

from xds.registry.context import Registry
from xds.registry.querybase import (
    QueryResult, answered_under, associations_touching, content_filters, document_filters, fetch,
    folder_filters, like, patient_is, time_range, to_survivors,
)
from xds.registry.queryparams import QueryParams
from xds.store.patients import patient_scope
from xds.store.tables import (
    document_entry, document_reference_id, folder, submission_set, submission_set_author,
)

__all__ = [
    "find_documents", "find_documents_by_reference_id", "find_documents_for_multiple_patients",
    "find_submission_sets", "find_folders", "find_folders_for_multiple_patients", "get_all",
]

_de, _ss, _fd = document_entry.c, submission_set.c, folder.c


def _scope(conn: Connection, params: QueryParams, name: str) -> dict[str, str]:
    """The patient ids the query's ``name`` parameter covers (empty: it was merged away)."""
    return patient_scope(conn, params.values(name))


def _documents(conn: Connection, registry: Registry, conditions: list[ColumnElement[bool]],
               scope: dict[str, str]) -> QueryResult:
    stmt = select(_de.id, _de.patient_id).where(*conditions)
    return QueryResult(document_entries=answered_under(fetch(conn, stmt, registry), scope))


def find_documents(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """FindDocuments: the patient's DocumentEntries that pass every filter given."""
    if not (scope := _scope(conn, params, "$XDSDocumentEntryPatientId")):
        return QueryResult()
    return _documents(conn, registry, [
        patient_is(_de.patient_id, scope), *document_filters(params, conn.dialect.name)], scope)


def find_documents_by_reference_id(params: QueryParams, conn: Connection,
                                   registry: Registry) -> QueryResult:
    """FindDocumentsByReferenceId: FindDocuments narrowed by referenceIdList.

    Values match a referenceIdList value exactly: the TF text says so; its table footnote's
    LIKE reading would make ``_`` (common in CXi type codes) a wildcard.
    """
    if not (scope := _scope(conn, params, "$XDSDocumentEntryPatientId")):
        return QueryResult()
    conditions = [patient_is(_de.patient_id, scope), *document_filters(params, conn.dialect.name)]
    for group in params.groups("$XDSDocumentEntryReferenceIdList"):
        ref = document_reference_id.alias()
        conditions.append(select(ref.c.entry_id).where(
            ref.c.entry_id == _de.id, ref.c.value.in_(group)).exists())
    return _documents(conn, registry, conditions, scope)


def find_documents_for_multiple_patients(params: QueryParams, conn: Connection,
                                         registry: Registry) -> QueryResult:
    """FindDocumentsForMultiplePatients (ITI-51): FindDocuments over any of the patient ids
    given, or over every patient when none is (each entry under its surviving patient id)."""
    conditions = document_filters(params, conn.dialect.name)
    if not params.values("$XDSDocumentEntryPatientId"):
        return to_survivors(conn, _documents(conn, registry, conditions, {}))
    if not (scope := _scope(conn, params, "$XDSDocumentEntryPatientId")):
        return QueryResult()
    return _documents(conn, registry, [*conditions, _de.patient_id.in_(sorted(scope))], scope)


def find_submission_sets(params: QueryParams, conn: Connection,
                         registry: Registry) -> QueryResult:
    """FindSubmissionSets: the patient's SubmissionSets that pass every filter given."""
    if not (scope := _scope(conn, params, "$XDSSubmissionSetPatientId")):
        return QueryResult()
    conditions = [
        patient_is(_ss.patient_id, scope),
        _ss.status.in_(params.values("$XDSSubmissionSetStatus")),
        *time_range(_ss.submission_time, params.single("$XDSSubmissionSetSubmissionTimeFrom"),
                    params.single("$XDSSubmissionSetSubmissionTimeTo")),
    ]
    if sources := params.values("$XDSSubmissionSetSourceId"):
        conditions.append(_ss.source_id.in_(sources))
    if content_types := params.values("$XDSSubmissionSetContentType"):
        conditions.append(_ss.content_type_code.in_(content_types))
    if pattern := params.single("$XDSSubmissionSetAuthorPerson"):
        sa = submission_set_author.alias()
        conditions.append(select(sa.c.submission_set_id).where(
            sa.c.submission_set_id == _ss.id,
            like(sa.c.author_person, pattern, conn.dialect.name)).exists())
    stmt = select(_ss.id, _ss.patient_id).where(*conditions)
    return QueryResult(submission_sets=answered_under(fetch(conn, stmt, registry), scope))


def find_folders(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """FindFolders: the patient's Folders that pass every filter given."""
    if not (scope := _scope(conn, params, "$XDSFolderPatientId")):
        return QueryResult()
    stmt = select(_fd.id, _fd.patient_id).where(
        patient_is(_fd.patient_id, scope), *folder_filters(params))
    return QueryResult(folders=answered_under(fetch(conn, stmt, registry), scope))


def find_folders_for_multiple_patients(params: QueryParams, conn: Connection,
                                       registry: Registry) -> QueryResult:
    """FindFoldersForMultiplePatients (ITI-51): FindFolders over any of the patient ids given,
    or over every patient when none is (each Folder under its surviving patient id)."""
    conditions = folder_filters(params)
    if not params.values("$XDSFolderPatientId"):
        stmt = select(_fd.id, _fd.patient_id).where(*conditions)
        return to_survivors(conn, QueryResult(folders=fetch(conn, stmt, registry)))
    if not (scope := _scope(conn, params, "$XDSFolderPatientId")):
        return QueryResult()
    stmt = select(_fd.id, _fd.patient_id).where(*conditions, _fd.patient_id.in_(sorted(scope)))
    return QueryResult(folders=answered_under(fetch(conn, stmt, registry), scope))


def get_all(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """GetAll: the patient's SubmissionSets, DocumentEntries and Folders that pass the status
    and DocumentEntry filters, and every Association with one of them at either end (the other
    end may lie outside the result, e.g. a deprecated or filtered-out entry)."""
    if not (scope := _scope(conn, params, "$patientId")):
        return QueryResult()
    parts = [
        (document_entry, [patient_is(_de.patient_id, scope),
                          _de.status.in_(params.values("$XDSDocumentEntryStatus")),
                          *content_filters(params)]),
        (submission_set, [patient_is(_ss.patient_id, scope),
                          _ss.status.in_(params.values("$XDSSubmissionSetStatus"))]),
        (folder, [patient_is(_fd.patient_id, scope),
                  _fd.status.in_(params.values("$XDSFolderStatus"))]),
    ]
    entries, sets, folders = (answered_under(
        fetch(conn, select(t.c.id, t.c.patient_id).where(*c), registry), scope) for t, c in parts)
    members = union_all(*(select(t.c.id).where(*c) for t, c in parts)).subquery()
    touching = associations_touching(select(members.c.id))
    return QueryResult(document_entries=entries, submission_sets=sets, folders=folders,
                       associations=fetch(conn, touching, registry))
