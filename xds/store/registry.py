"""Registry index writes and the lookups ITI-42 needs (SQLAlchemy Core, one Connection each)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import (
    Connection, String, and_, bindparam, insert, literal, select, union_all, update,
)
from sqlalchemy.sql.elements import BindParameter, Label

from xds.ebrim.vocabulary import AssociationType, Status
from xds.model.metadata import Association, DocumentEntry, Folder, SubmissionSet
from xds.model.values import normalize_dtm
from xds.store.tables import (
    association, document_author, document_code, document_entry, document_reference_id, folder,
    folder_code, submission_set, submission_set_author, unique_id_claim,
)

__all__ = [
    "StoredObject", "UniqueIdClaim", "find_objects", "find_claims", "insert_document_entry",
    "insert_submission_set", "insert_folder", "insert_associations", "insert_claims",
    "deprecate_document", "deprecate_documents", "approved_folders_containing",
    "transforms_and_addenda", "touch_folders",
]


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What ITI-42 needs to know about an object already in the registry."""

    id: str
    kind: str  # DocumentEntry | SubmissionSet | Folder | Association
    patient_id: str
    status: str
    object_type: str | None = None


@dataclass(frozen=True, slots=True)
class UniqueIdClaim:
    """A uniqueId in use, with the hash and size of its DocumentEntry."""

    unique_id: str
    kind: str
    hash: str | None
    size: int | None


def find_objects(conn: Connection, ids: Iterable[str]) -> dict[str, StoredObject]:
    """The registry objects among ``ids`` (any type), by id."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {
        row.id: StoredObject(id=row.id, kind=row.kind, patient_id=row.patient_id,
                             status=row.status, object_type=row.object_type)
        for row in conn.execute(_FIND_OBJECTS, {"ids": wanted})
    }


def _kind(name: str) -> Label[str]:
    return literal(name, String).label("kind")


def _none() -> Label[str]:
    return literal(None, String).label("object_type")


# Statements are built once: SQLAlchemy then compiles each once and ITI-42 only binds values.
_IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
_FIND_OBJECTS = union_all(
    select(document_entry.c.id, document_entry.c.patient_id, document_entry.c.status,
           document_entry.c.object_type, _kind("DocumentEntry"))
    .where(document_entry.c.id.in_(_IDS)),
    select(submission_set.c.id, submission_set.c.patient_id, submission_set.c.status,
           _none(), _kind("SubmissionSet")).where(submission_set.c.id.in_(_IDS)),
    select(folder.c.id, folder.c.patient_id, folder.c.status, _none(), _kind("Folder"))
    .where(folder.c.id.in_(_IDS)),
    select(association.c.id, association.c.patient_id, association.c.status, _none(),
           _kind("Association")).where(association.c.id.in_(_IDS)),
)
_FIND_CLAIMS = select(unique_id_claim).where(unique_id_claim.c.unique_id.in_(_IDS))


def find_claims(conn: Connection, unique_ids: Iterable[str]) -> dict[str, UniqueIdClaim]:
    """Claims of the ``unique_ids`` already in use, by uniqueId."""
    wanted = sorted(set(unique_ids))
    if not wanted:
        return {}
    rows = conn.execute(_FIND_CLAIMS, {"ids": wanted})
    return {r.unique_id: UniqueIdClaim(r.unique_id, r.kind, r.hash, r.size) for r in rows}


def insert_claims(conn: Connection, claims: Iterable[UniqueIdClaim]) -> None:
    """Claim each uniqueId; a concurrent claim of the same id makes one transaction fail."""
    rows = [{"unique_id": c.unique_id, "kind": c.kind, "hash": c.hash, "size": c.size}
            for c in claims]
    if rows:
        conn.execute(insert(unique_id_claim), rows)


def _time(value: str | None) -> str | None:
    return normalize_dtm(value) if value else None


def insert_document_entry(conn: Connection, de: DocumentEntry, submission_set_id: str,
                          xml: bytes) -> None:
    """Index ``de`` (ids already resolved, status set) with its XML."""
    pid = de.patient_id or ""
    conn.execute(insert(document_entry), dict(
        id=de.entry_uuid, patient_id=pid, status=de.availability_status,
        object_type=de.object_type, unique_id=de.unique_id, lid=de.lid or de.entry_uuid,
        version=int(de.version or 1), hash=(de.hash or "").lower() or None,
        size=int(de.size) if de.size and de.size.isdigit() else None,
        repository_unique_id=de.repository_unique_id, mime_type=de.mime_type or "",
        home=de.home_community_id, creation_time=_time(de.creation_time),
        service_start_time=_time(de.service_start_time),
        service_stop_time=_time(de.service_stop_time),
        class_code=de.class_code.key if de.class_code else None,
        type_code=de.type_code.key if de.type_code else None,
        format_code=de.format_code.key if de.format_code else None,
        practice_setting_code=de.practice_setting_code.key if de.practice_setting_code else None,
        healthcare_facility_type_code=(
            de.healthcare_facility_type_code.key if de.healthcare_facility_type_code else None),
        submission_set_id=submission_set_id, xml=xml,
    ))
    codes = {("confidentialityCode", c.key) for c in de.confidentiality_codes}
    codes |= {("eventCodeList", c.key) for c in de.event_codes}
    if codes:
        conn.execute(insert(document_code), [
            {"entry_id": de.entry_uuid, "attribute": a, "code": k, "patient_id": pid}
            for a, k in sorted(codes)])
    authors = [a.person for a in de.authors if a.person]
    if authors:
        conn.execute(insert(document_author), [
            {"entry_id": de.entry_uuid, "patient_id": pid, "author_person": p} for p in authors])
    if de.reference_id_list:
        conn.execute(insert(document_reference_id), [
            {"entry_id": de.entry_uuid, "patient_id": pid, "value": v}
            for v in dict.fromkeys(de.reference_id_list)])


def insert_submission_set(conn: Connection, ss: SubmissionSet, xml: bytes) -> None:
    """Index ``ss`` with its XML."""
    pid = ss.patient_id or ""
    conn.execute(insert(submission_set), dict(
        id=ss.entry_uuid, patient_id=pid, status=ss.availability_status,
        unique_id=ss.unique_id, source_id=ss.source_id,
        submission_time=_time(ss.submission_time),
        content_type_code=ss.content_type_code.key if ss.content_type_code else None,
        home=ss.home_community_id, xml=xml,
    ))
    authors = [a.person for a in ss.authors if a.person]
    if authors:
        conn.execute(insert(submission_set_author), [
            {"submission_set_id": ss.entry_uuid, "patient_id": pid, "author_person": p}
            for p in authors])


def insert_folder(conn: Connection, fd: Folder, last_update_time: str, xml: bytes) -> None:
    """Index ``fd`` with its XML (which holds no lastUpdateTime: the column is the truth)."""
    pid = fd.patient_id or ""
    conn.execute(insert(folder), dict(
        id=fd.entry_uuid, patient_id=pid, status=fd.availability_status,
        unique_id=fd.unique_id, lid=fd.lid or fd.entry_uuid, version=int(fd.version or 1),
        last_update_time=last_update_time, home=fd.home_community_id, xml=xml,
    ))
    codes = sorted({c.key for c in fd.codes})
    if codes:
        conn.execute(insert(folder_code), [
            {"folder_id": fd.entry_uuid, "code": k, "patient_id": pid} for k in codes])


def insert_associations(conn: Connection, rows: Iterable[tuple[Association, bytes]],
                        patient_id: str) -> None:
    """Index each (association, its XML) under ``patient_id`` (the SubmissionSet's)."""
    params = [
        {"id": a.entry_uuid, "patient_id": patient_id, "association_type": a.association_type,
         "source_id": a.source_object, "target_id": a.target_object,
         "status": a.availability_status, "xml": xml}
        for a, xml in rows]
    if params:
        conn.execute(insert(association), params)


def deprecate_document(conn: Connection, entry_id: str) -> bool:
    """Approved -> Deprecated; False when it was no longer Approved (a concurrent replace won)."""
    result = conn.execute(
        update(document_entry)
        .where(document_entry.c.id == entry_id, document_entry.c.status == Status.Approved)
        .values(status=Status.Deprecated)
    )
    return result.rowcount == 1


def deprecate_documents(conn: Connection, entry_ids: Iterable[str]) -> None:
    """Deprecate every entry of ``entry_ids`` that is still Approved."""
    ids = sorted(set(entry_ids))
    if ids:
        conn.execute(update(document_entry).where(document_entry.c.id.in_(ids))
                     .values(status=Status.Deprecated))


def transforms_and_addenda(conn: Connection, entry_id: str) -> list[str]:
    """Approved DocumentEntries that are XFRM or APND of ``entry_id`` (deprecated with it)."""
    rows = conn.execute(
        select(document_entry.c.id)
        .join(association, association.c.source_id == document_entry.c.id)
        .where(
            association.c.target_id == entry_id,
            association.c.association_type.in_([AssociationType.XFRM, AssociationType.APND]),
            document_entry.c.status == Status.Approved,
        )
    )
    return [r.id for r in rows]


def approved_folders_containing(conn: Connection, entry_id: str) -> list[tuple[str, str]]:
    """(folder id, patient id) of each Approved Folder holding ``entry_id`` via FD-DE HasMember."""
    rows = conn.execute(
        select(folder.c.id, folder.c.patient_id)
        .join(association, and_(association.c.source_id == folder.c.id,
                                association.c.target_id == entry_id))
        .where(association.c.association_type == AssociationType.HasMember,
               folder.c.status == Status.Approved)
        .distinct()
    )
    return [(r.id, r.patient_id) for r in rows]


def touch_folders(conn: Connection, folder_ids: Iterable[str], now: str) -> None:
    """Set lastUpdateTime of existing Folders that received a DocumentEntry."""
    ids = sorted(set(folder_ids))
    if ids:
        conn.execute(update(folder).where(folder.c.id.in_(ids)).values(last_update_time=now))
