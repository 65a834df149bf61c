"""The id-based stored queries: Get* (ITI TF-2 §3.18.4.1.2.3.7.5-.13)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, Select, Table, select

from xds.ebrim.vocabulary import AssociationType
from xds.registry.context import Registry
from xds.registry.querybase import (
    Hit, QueryResult, associations_touching, chunks, content_filters, entry_types, fetch,
    too_many,
)
from xds.registry.queryparams import QueryParams
from xds.store.tables import association, document_entry, folder, submission_set

__all__ = [
    "get_documents", "get_folders", "get_associations", "get_documents_and_associations",
    "get_submission_sets", "get_submission_set_and_contents", "get_folder_and_contents",
    "get_folders_for_document", "get_related_documents",
]

_de, _ss, _fd, _a = document_entry.c, submission_set.c, folder.c, association.c
_HAS_MEMBER = AssociationType.HasMember.value


def _by_id(table: Table, params: QueryParams, uuid_param: str,
           unique_id_param: str) -> ColumnElement[bool]:
    # check_params guarantees exactly one of the pair; a uniqueId may select several entries
    # (a DocumentEntry uniqueId registered twice with the same hash and size).
    if uuids := params.values(uuid_param):
        return table.c.id.in_(uuids)
    return table.c.unique_id.in_(params.values(unique_id_param))


def _members_of(source_id: str) -> Select[str, str, str]:
    return select(_a.id, _a.patient_id, _a.target_id).where(
        _a.source_id == source_id, _a.association_type == _HAS_MEMBER)


def get_documents(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """GetDocuments: the DocumentEntries with the given entryUUIDs or uniqueIds, any status."""
    stmt = select(_de.id, _de.patient_id).where(_by_id(
        document_entry, params, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"))
    return QueryResult(document_entries=fetch(conn, stmt, registry))


def get_folders(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """GetFolders: the Folders with the given entryUUIDs or uniqueIds, any status."""
    stmt = select(_fd.id, _fd.patient_id).where(
        _by_id(folder, params, "$XDSFolderEntryUUID", "$XDSFolderUniqueId"))
    return QueryResult(folders=fetch(conn, stmt, registry))


def get_associations(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """GetAssociations: Associations whose source or target is one of ``$uuid``."""
    touching = associations_touching(list(params.values("$uuid")))
    return QueryResult(associations=fetch(conn, touching, registry))


def get_documents_and_associations(params: QueryParams, conn: Connection,
                                   registry: Registry) -> QueryResult:
    """GetDocumentsAndAssociations: GetDocuments plus the Associations touching those entries."""
    result = get_documents(params, conn, registry)
    found = [h.id for h in result.document_entries]
    for part in chunks(found):
        result.associations += fetch(conn, associations_touching(part), registry)
    return result


def get_submission_sets(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """GetSubmissionSets: the SubmissionSets holding any of ``$uuid`` (DocumentEntries, Folders)
    through HasMember, with those HasMember Associations."""
    stmt = (select(_a.id, _a.patient_id, _ss.id, _ss.patient_id)
            .join(submission_set, _ss.id == _a.source_id)
            .where(_a.association_type == _HAS_MEMBER,
                   _a.target_id.in_(params.values("$uuid"))))
    cap = registry.settings.max_query_results
    rows = conn.execute(stmt.limit(cap + 1)).all()
    if len(rows) > cap:
        raise too_many(cap)
    return QueryResult(associations=[Hit(r[0], r[1]) for r in rows],
                       submission_sets=[Hit(r[2], r[3]) for r in rows])


def get_submission_set_and_contents(params: QueryParams, conn: Connection,
                                    registry: Registry) -> QueryResult:
    """GetSubmissionSetAndContents: the SubmissionSet, its member DocumentEntries passing the
    format/confidentiality/type filters, its member Folders, and the Associations it holds
    whose two ends are both in that result; each with the SubmissionSet's HasMember to it."""
    found = fetch(conn, select(_ss.id, _ss.patient_id).where(_by_id(
        submission_set, params, "$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId")),
        registry)
    if not found:
        return QueryResult()
    ss = found[0]
    members = {r[2]: Hit(r[0], r[1]) for r in conn.execute(_members_of(ss.id))}
    targets = select(_members_of(ss.id).subquery().c.target_id)
    entries = fetch(conn, select(_de.id, _de.patient_id).where(
        _de.id.in_(targets), *content_filters(params)), registry)
    folders = fetch(conn, select(_fd.id, _fd.patient_id).where(_fd.id.in_(targets)), registry)
    in_result = {ss.id} | {h.id for h in entries} | {h.id for h in folders}
    # Associations the SubmissionSet holds (FD-DE HasMembers, ITI TF-2 §3.42.4.1.3.4): kept only
    # when both ends are in the result, so no reference dangles into filtered-out entries.
    held = [Hit(r[0], r[1]) for r in conn.execute(
        select(_a.id, _a.patient_id, _a.source_id, _a.target_id).where(_a.id.in_(targets)))
        if r[2] in in_result and r[3] in in_result]
    in_result |= {h.id for h in held}
    return QueryResult(
        submission_sets=[ss], document_entries=entries, folders=folders,
        associations=held + [hm for target, hm in members.items() if target in in_result])


def get_folder_and_contents(params: QueryParams, conn: Connection,
                            registry: Registry) -> QueryResult:
    """GetFolderAndContents: the Folder, its member DocumentEntries passing the
    format/confidentiality/type filters, and the Folder's HasMember to each of them."""
    found = fetch(conn, select(_fd.id, _fd.patient_id).where(
        _by_id(folder, params, "$XDSFolderEntryUUID", "$XDSFolderUniqueId")), registry)
    if not found:
        return QueryResult()
    fd = found[0]
    members = select(_members_of(fd.id).subquery().c.target_id)
    entries = fetch(conn, select(_de.id, _de.patient_id).where(
        _de.id.in_(members), *content_filters(params)), registry)
    returned = {h.id for h in entries}
    links = [Hit(r[0], r[1]) for r in conn.execute(_members_of(fd.id)) if r[2] in returned]
    return QueryResult(folders=[fd], document_entries=entries, associations=links)


def get_folders_for_document(params: QueryParams, conn: Connection,
                             registry: Registry) -> QueryResult:
    """GetFoldersForDocument: the Folders holding the DocumentEntry through HasMember."""
    entry = select(_de.id).where(_by_id(
        document_entry, params, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"))
    stmt = (select(_fd.id, _fd.patient_id).join(association, _a.source_id == _fd.id)
            .where(_a.association_type == _HAS_MEMBER, _a.target_id.in_(entry)).distinct())
    return QueryResult(folders=fetch(conn, stmt, registry))


def get_related_documents(params: QueryParams, conn: Connection,
                          registry: Registry) -> QueryResult:
    """GetRelatedDocuments: Associations of ``$AssociationTypes`` between the DocumentEntry and
    other DocumentEntries (of ``$XDSDocumentEntryType``, Stable by default), with the entries at
    both ends. Without such an Association nothing is returned, not even the entry."""
    origin = {h.id: h for h in fetch(conn, select(_de.id, _de.patient_id).where(_by_id(
        document_entry, params, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")),
        registry)}
    if not origin:
        return QueryResult()
    types = params.values("$AssociationTypes")
    relations = [(r[0], r[1], r[2], r[3]) for part in chunks(sorted(origin)) for r in conn.execute(
        select(_a.id, _a.patient_id, _a.source_id, _a.target_id)
        .where(_a.association_type.in_(types), _a.source_id.in_(part) | _a.target_id.in_(part)))]
    ends = sorted({e for _, _, s, t in relations for e in (s, t)} - origin.keys())
    wanted = set(entry_types(params))
    related: dict[str, Hit] = {}
    for part in chunks(ends):
        for r in conn.execute(select(_de.id, _de.patient_id, _de.object_type)
                              .where(_de.id.in_(part))):
            if r[2] in wanted:
                related[r[0]] = Hit(r[0], r[1])
    entries = origin | related
    kept = [(Hit(a, p), s, t) for a, p, s, t in relations if s in entries and t in entries]
    if len(kept) > registry.settings.max_query_results:
        raise too_many(registry.settings.max_query_results)
    returned = {e for _, s, t in kept for e in (s, t)}
    return QueryResult(associations=[h for h, _, _ in kept],
                       document_entries=[entries[e] for e in sorted(returned)])
