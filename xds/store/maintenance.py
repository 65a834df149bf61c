"""Blob-store upkeep: fixity checks (``xds blobs verify``) and garbage collection (``xds blobs gc``).

A long-term archive must prove its bytes are intact: ``verify_blobs`` re-reads stored objects and
checks each against the SHA-256 it is addressed by and the size (and, for documents, the XDS
SHA-1) its rows recorded.

A crash between upload and commit leaves bytes no row refers to; ``collect_garbage`` removes
them, but never what a submission in flight may still commit to: only objects older than the
grace period are candidates, and each is deleted under ``lock_blobs`` after checking again that
no row refers to it (a committer checks the bytes exist under the same lock).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from sqlalchemy import CompoundSelect, Engine, and_, delete, exists, func, literal, select, union_all

from xds.store.blobs import BlobStore, StoredBlob, StoreUnavailable, sweep_files
from xds.store.db import read_connection, write_transaction
from xds.store.documents import blobs_in_use, delete_unreferenced
from xds.store.tables import dicom_instance, document_entry, repository_document

__all__ = ["GcReport", "VerifyReport", "Problem", "collect_garbage", "verify_blobs",
           "count_blobs", "IN_FLIGHT"]

#: Objects examined per database round trip.
_BATCH = 500

#: Seconds a repository row must be old, whatever the grace period, before ``collect_garbage``
#: takes its missing registry entry for a crash's leftover: ITI-41 commits its rows *before*
#: it sends ITI-42, so a younger row may belong to a submission still waiting for the
#: registry's answer (an ITI-42 may queue for the database's write lock a while), and dropping
#: it would lose a document the registry is about to list. (A retry that finds an old row
#: makes it new again: ``xds.repository.iti41``.)
IN_FLIGHT = 15 * 60

Progress = Callable[[int], None]


@dataclass(slots=True)
class GcReport:
    """What ``collect_garbage`` saw and did."""

    scanned: int = 0
    referenced: int = 0
    young: int = 0
    removed: int = 0
    removed_bytes: int = 0
    unfinished: int = 0
    unregistered_rows: int = 0
    removed_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Problem:
    """One blob that failed verification: ``kind`` is missing, corrupt or unreadable."""

    sha256: str
    kind: str
    detail: str


@dataclass(slots=True)
class VerifyReport:
    """What ``verify_blobs`` checked and what it found wrong."""

    checked: int = 0
    bytes_read: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every checked blob was present and intact."""
        return not self.problems


def collect_garbage(engine: Engine, blobs: BlobStore, *, grace: float,
                    registry_is_local: bool = True, dry_run: bool = False,
                    in_flight: float = IN_FLIGHT, spool_dir: Path | None = None,
                    progress: Progress | None = None) -> GcReport:
    """Remove the objects of ``blobs`` that no row refers to and that are older than ``grace``
    seconds, and what crashed writers left (temp files, unfinished multipart uploads, and the
    files of ``spool_dir``, this machine's spool).

    With ``registry_is_local`` (the repository registers in this same database), repository
    rows older than the grace period and than ``in_flight`` seconds (0 only when no request can
    be in flight) whose document never reached the registry (a crash between ITI-41's store and
    ITI-42) go first, so their bytes are collected too.
    """
    report = GcReport()
    now = time.time()
    cutoff = now - grace
    if not dry_run:
        report.unfinished = blobs.sweep(cutoff)
        if spool_dir is not None:
            report.unfinished += sweep_files(spool_dir, cutoff)
        if registry_is_local:
            report.unregistered_rows = _drop_unregistered(engine, min(cutoff, now - in_flight))
    objects = blobs.scan()
    while batch := list(islice(objects, _BATCH)):
        report.scanned += len(batch)
        old = {b.sha256: b for b in batch if b.modified < cutoff}
        report.young += len(batch) - len(old)
        with read_connection(engine) as conn:
            used = blobs_in_use(conn, old)
        report.referenced += len(used)
        unused = [old[sha] for sha in sorted(set(old) - used)]
        if unused and not dry_run:
            unused = _delete_unreferenced(engine, blobs, unused)
        report.removed += len(unused)
        report.removed_bytes += sum(b.size for b in unused)
        report.removed_keys += [b.sha256 for b in unused]
        if progress is not None:
            progress(len(batch))
    return report


def _delete_unreferenced(engine: Engine, blobs: BlobStore,
                         candidates: list[StoredBlob]) -> list[StoredBlob]:
    """Delete those of ``candidates`` still unreferenced under the blob lock; those deleted."""
    with write_transaction(engine) as conn:
        gone = set(delete_unreferenced(conn, blobs, [b.sha256 for b in candidates]))
    return [b for b in candidates if b.sha256 in gone]


def _drop_unregistered(engine: Engine, cutoff: float) -> int:
    """Delete repository rows created before ``cutoff`` whose document the registry lacks."""
    created_before = datetime.fromtimestamp(cutoff, UTC).strftime("%Y%m%d%H%M%S")
    doc = repository_document.c
    registered = exists().where(and_(document_entry.c.unique_id == doc.document_unique_id,
                                     document_entry.c.repository_unique_id ==
                                     doc.repository_unique_id))
    with write_transaction(engine) as conn:
        result = conn.execute(delete(repository_document).where(
            and_(doc.created < created_before, ~registered)))
        return int(result.rowcount or 0)


def count_blobs(engine: Engine) -> int:
    """How many distinct blobs the rows refer to (what ``verify_blobs`` checks in full)."""
    with read_connection(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(_recorded().subquery()))
                   .scalar_one())


def verify_blobs(engine: Engine, blobs: BlobStore, *, sample: int | None = None,
                 progress: Progress | None = None) -> VerifyReport:
    """Re-read every blob a row refers to (or a random ``sample`` of them) and check its
    SHA-256, size and recorded SHA-1. ``progress`` is called once per blob checked."""
    report = VerifyReport()
    for sha256, sha1, size in _expected(engine, sample):
        report.checked += 1
        problem = _check(blobs, sha256, sha1, size, report)
        if problem is not None:
            report.problems.append(problem)
        if progress is not None:
            progress(1)
    return report


def _recorded() -> CompoundSelect[tuple[str, str | None, int]]:
    """(sha256, sha1, size) of every referenced blob, once each (documents carry SHA-1)."""
    docs = select(repository_document.c.sha256, func.max(repository_document.c.sha1).label("sha1"),
                  func.max(repository_document.c.size).label("size")) \
        .group_by(repository_document.c.sha256)
    images = select(dicom_instance.c.sha256, literal(None).label("sha1"),
                    func.max(dicom_instance.c.size).label("size")) \
        .where(dicom_instance.c.sha256.is_not(None)) \
        .where(~exists().where(repository_document.c.sha256 == dicom_instance.c.sha256)) \
        .group_by(dicom_instance.c.sha256)
    return union_all(docs, images)


def _expected(engine: Engine, sample: int | None) -> Iterator[tuple[str, str | None, int]]:
    """The blobs to check: a random ``sample``, else all in address order, a page at a time
    (no read transaction stays open while bytes are read)."""
    rows = _recorded().subquery()
    query = select(rows.c.sha256, rows.c.sha1, rows.c.size)
    if sample is not None:
        with read_connection(engine) as conn:
            found = [(r.sha256, r.sha1, int(r.size))
                     for r in conn.execute(query.order_by(func.random()).limit(sample))]
        yield from found
        return
    last = ""
    while True:
        with read_connection(engine) as conn:
            page = [(r.sha256, r.sha1, int(r.size)) for r in conn.execute(
                query.where(rows.c.sha256 > last).order_by(rows.c.sha256).limit(_BATCH))]
        yield from page
        if len(page) < _BATCH:
            return
        last = page[-1][0]


def _check(blobs: BlobStore, sha256: str, sha1: str | None, size: int,
           report: VerifyReport) -> Problem | None:
    got256, got1, got_size = hashlib.sha256(), hashlib.sha1(), 0
    try:
        for chunk in blobs.open(sha256):
            got256.update(chunk)
            if sha1 is not None:
                got1.update(chunk)
            got_size += len(chunk)
            report.bytes_read += len(chunk)
    except FileNotFoundError:
        return Problem(sha256, "missing", "no stored object")
    except StoreUnavailable as exc:
        return Problem(sha256, "unreadable", str(exc))
    if got256.hexdigest() != sha256:
        return Problem(sha256, "corrupt", f"SHA-256 of the stored bytes is {got256.hexdigest()}")
    if got_size != size:
        return Problem(sha256, "corrupt", f"{got_size} bytes stored, {size} recorded")
    if sha1 is not None and got1.hexdigest() != sha1:
        return Problem(sha256, "corrupt", f"SHA-1 is {got1.hexdigest()}, {sha1} recorded")
    return None
