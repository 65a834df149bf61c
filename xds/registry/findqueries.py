"""The patient-based stored queries: Find* and GetAll (ITI TF-2 §3.18.4.1.2.3.7; ITI-51)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, select, union_all

from xds.registry.context import Registry
from xds.registry.querybase import (
    QueryResult, associations_touching, content_filters, document_filters, fetch, folder_filters,
    like, time_range,
)
from xds.registry.queryparams import QueryParams
from xds.store.tables import (
    document_entry, document_reference_id, folder, submission_set, submission_set_author,
)

__all__ = [
    "find_documents", "find_documents_by_reference_id", "find_documents_for_multiple_patients",
    "find_submission_sets", "find_folders", "find_folders_for_multiple_patients", "get_all",
]

_de, _ss, _fd = document_entry.c, submission_set.c, folder.c


def _documents(conn: Connection, registry: Registry,
               conditions: list[ColumnElement[bool]]) -> QueryResult:
    stmt = select(_de.id, _de.patient_id).where(*conditions)
    return QueryResult(document_entries=fetch(conn, stmt, registry))


def find_documents(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """FindDocuments: the patient's DocumentEntries that pass every filter given."""
    return _documents(conn, registry, [
        _de.patient_id == params.single("$XDSDocumentEntryPatientId"),
        *document_filters(params, conn.dialect.name)])


def find_documents_by_reference_id(params: QueryParams, conn: Connection,
                                   registry: Registry) -> QueryResult:
    """FindDocumentsByReferenceId: FindDocuments narrowed by referenceIdList.

    Values match a referenceIdList value exactly: the TF text says so; its table footnote's
    LIKE reading would make ``_`` (common in CXi type codes) a wildcard.
    """
    conditions = [_de.patient_id == params.single("$XDSDocumentEntryPatientId"),
                  *document_filters(params, conn.dialect.name)]
    for group in params.groups("$XDSDocumentEntryReferenceIdList"):
        ref = document_reference_id.alias()
        conditions.append(select(ref.c.entry_id).where(
            ref.c.entry_id == _de.id, ref.c.value.in_(group)).exists())
    return _documents(conn, registry, conditions)


def find_documents_for_multiple_patients(params: QueryParams, conn: Connection,
                                         registry: Registry) -> QueryResult:
    """FindDocumentsForMultiplePatients (ITI-51): FindDocuments over any of the patient ids
    given, or over every patient when none is."""
    conditions = document_filters(params, conn.dialect.name)
    if patients := params.values("$XDSDocumentEntryPatientId"):
        conditions.append(_de.patient_id.in_(patients))
    return _documents(conn, registry, conditions)


def find_submission_sets(params: QueryParams, conn: Connection,
                         registry: Registry) -> QueryResult:
    """FindSubmissionSets: the patient's SubmissionSets that pass every filter given."""
    conditions = [
        _ss.patient_id == params.single("$XDSSubmissionSetPatientId"),
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
    return QueryResult(submission_sets=fetch(conn, stmt, registry))


def find_folders(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """FindFolders: the patient's Folders that pass every filter given."""
    stmt = select(_fd.id, _fd.patient_id).where(
        _fd.patient_id == params.single("$XDSFolderPatientId"), *folder_filters(params))
    return QueryResult(folders=fetch(conn, stmt, registry))


def find_folders_for_multiple_patients(params: QueryParams, conn: Connection,
                                       registry: Registry) -> QueryResult:
    """FindFoldersForMultiplePatients (ITI-51): FindFolders over any of the patient ids given,
    or over every patient when none is."""
    conditions = folder_filters(params)
    if patients := params.values("$XDSFolderPatientId"):
        conditions.append(_fd.patient_id.in_(patients))
    stmt = select(_fd.id, _fd.patient_id).where(*conditions)
    return QueryResult(folders=fetch(conn, stmt, registry))


def get_all(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """GetAll: the patient's SubmissionSets, DocumentEntries and Folders that pass the status
    and DocumentEntry filters, and every Association with one of them at either end (the other
    end may lie outside the result, e.g. a deprecated or filtered-out entry)."""
    patient = params.single("$patientId")
    parts = [
        (document_entry, [_de.patient_id == patient,
                          _de.status.in_(params.values("$XDSDocumentEntryStatus")),
                          *content_filters(params)]),
        (submission_set, [_ss.patient_id == patient,
                          _ss.status.in_(params.values("$XDSSubmissionSetStatus"))]),
        (folder, [_fd.patient_id == patient, _fd.status.in_(params.values("$XDSFolderStatus"))]),
    ]
    entries, sets, folders = (
        fetch(conn, select(t.c.id, t.c.patient_id).where(*c), registry) for t, c in parts)
    members = union_all(*(select(t.c.id).where(*c) for t, c in parts)).subquery()
    touching = associations_touching(select(members.c.id))
    return QueryResult(document_entries=entries, submission_sets=sets, folders=folders,
                       associations=fetch(conn, touching, registry))
