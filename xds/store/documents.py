"""The repository's document table: (repositoryUniqueId, documentUniqueId) -> blob (ITI-41, ITI-43)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, and_, bindparam, delete, insert, select, text

from xds.store.tables import dicom_instance, repository_document
from xds.model.values import now_dtm

if TYPE_CHECKING:
    from xds.store.blobs import BlobStore

__all__ = ["StoredDocument", "find_documents", "insert_documents", "delete_documents",
           "blobs_in_use", "lock_blobs", "delete_unreferenced"]


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document the repository holds."""

    repository_unique_id: str
    document_unique_id: str
    sha256: str
    sha1: str
    size: int
    mime_type: str


def find_documents(conn: Connection, repository_unique_id: str,
                   unique_ids: Iterable[str]) -> dict[str, StoredDocument]:
    """The documents of ``unique_ids`` in repository ``repository_unique_id``, by uniqueId."""
    wanted = sorted(set(unique_ids))
    if not wanted:
        return {}
    rows = conn.execute(_FIND, {"repo": repository_unique_id, "ids": wanted})
    return {r.document_unique_id: StoredDocument(
        r.repository_unique_id, r.document_unique_id, r.sha256, r.sha1, r.size, r.mime_type)
        for r in rows}


def insert_documents(conn: Connection, documents: Iterable[StoredDocument]) -> None:
    """Record ``documents``; a uniqueId already present makes the statement fail."""
    now = now_dtm()
    rows = [{"repository_unique_id": d.repository_unique_id,
             "document_unique_id": d.document_unique_id, "sha256": d.sha256, "sha1": d.sha1,
             "size": d.size, "mime_type": d.mime_type, "created": now}
            for d in sorted(documents, key=lambda d: d.document_unique_id)]
    if rows:
        conn.execute(insert(repository_document), rows)


def delete_documents(conn: Connection, repository_unique_id: str, unique_ids: Iterable[str]) -> None:
    """Forget the documents ``unique_ids`` (their blobs are the caller's to delete)."""
    ids = sorted(set(unique_ids))
    if ids:
        conn.execute(delete(repository_document).where(and_(
            repository_document.c.repository_unique_id == repository_unique_id,
            repository_document.c.document_unique_id.in_(ids))))


def blobs_in_use(conn: Connection, sha256s: Iterable[str]) -> set[str]:
    """Those of ``sha256s`` that a document or DICOM instance row refers to."""
    wanted = sorted(set(sha256s))
    if not wanted:
        return set()
    used = set(conn.execute(select(repository_document.c.sha256).distinct().where(
        repository_document.c.sha256.in_(wanted))).scalars())
    used |= set(conn.execute(select(dicom_instance.c.sha256).distinct().where(
        dicom_instance.c.sha256.in_(wanted))).scalars())
    return used


def lock_blobs(conn: Connection, sha256s: Iterable[str]) -> None:
    """Hold the blobs ``sha256s`` until the write transaction of ``conn`` ends.

    Whoever deletes a blob (a failed submission undoing itself, ``xds blobs gc``) and whoever
    commits a row that refers to one takes this first, then checks: the deleter that no row
    refers to it, the committer that it still exists. On PostgreSQL these are transaction
    advisory locks (in sorted order, so two holders cannot deadlock); on SQLite a write
    transaction already holds the database's only write lock.
    """
    if conn.dialect.name != "postgresql":
        return
    for sha in sorted(set(sha256s)):
        # The first 15 hex digits fit a signed 64-bit key; collisions only serialise more.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(sha[:15], 16)})


def delete_unreferenced(conn: Connection, blobs: BlobStore, sha256s: Iterable[str]) -> list[str]:
    """Delete from ``blobs`` those of ``sha256s`` that no row refers to, under ``lock_blobs``
    (in the write transaction of ``conn``); those deleted. A failed submission undoing itself,
    an instance replaced and ``xds blobs gc`` all delete this way."""
    shas = sorted(set(sha256s))
    lock_blobs(conn, shas)
    used = blobs_in_use(conn, shas)
    gone = [sha for sha in shas if sha not in used]
    for sha in gone:
        blobs.delete(sha)
    return gone


_FIND = select(repository_document).where(
    repository_document.c.repository_unique_id == bindparam("repo"),
    repository_document.c.document_unique_id.in_(bindparam("ids", expanding=True)),
)
