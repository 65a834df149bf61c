"""The Imaging Document Source's instance index and per-study manifest state (SQLAlchemy Core)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

from sqlalchemy import Connection, and_, insert, select, update

from xds.store.tables import dicom_instance, imaging_study

__all__ = [
    "Instance", "StudyState", "upsert_instance", "find_instance", "find_instances",
    "study_instances", "studies_of_patient", "studies_by_accession", "study_state",
    "record_publication", "record_publish_error", "studies_due", "touch_study",
]


@dataclass(slots=True, kw_only=True)
class Instance:
    """One indexed SOP Instance: its place in the study, what the KOS and FHIR need, where it lives."""

    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    patient_id: str
    patient_issuer: str
    received: str
    instance_number: int | None = None
    patient_name: str | None = None
    patient_birth_date: str | None = None
    patient_sex: str | None = None
    accession_number: str | None = None
    accession_issuer: str | None = None
    study_id: str | None = None
    study_date: str | None = None
    study_time: str | None = None
    study_description: str | None = None
    referring_physician: str | None = None
    modality: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    body_part: str | None = None
    laterality: str | None = None
    sha256: str | None = None
    size: int | None = None
    archive_url: str | None = None

    def in_series(self, study_uid: str, series_uid: str | None) -> bool:
        """True when the instance belongs to that study and series (WADO, RAD-69 requests name
        both; an instance found under other UIDs is "not found" for them)."""
        return (self.study_instance_uid, self.series_instance_uid) == (study_uid, series_uid)


@dataclass(slots=True, kw_only=True)
class StudyState:
    """A study's revision and the manifest published for it (if any)."""

    study_instance_uid: str
    updated: float
    revision: int
    published_revision: int | None = None
    kos_sop_instance_uid: str | None = None
    kos_entry_uuid: str | None = None
    published: str | None = None
    patient_cx: str | None = None
    last_error: str | None = None

    @property
    def needs_publishing(self) -> bool:
        """True when instances changed since the current manifest (or none was published)."""
        return self.published_revision != self.revision


_INSTANCE_FIELDS = tuple(f.name for f in fields(Instance))


def _instance(row: object) -> Instance:
    mapping = row._mapping  # type: ignore[attr-defined]
    return Instance(**{name: mapping[name] for name in _INSTANCE_FIELDS})


def upsert_instance(conn: Connection, instance: Instance) -> str | None:
    """Insert ``instance`` or replace the row of the same SOP Instance UID; bump its study.

    Returns the sha256 of the bytes the instance had before (None when it is new); identical
    bytes (same sha256, same place) change nothing, not even the study's revision.
    """
    old = conn.execute(select(dicom_instance).where(
        dicom_instance.c.sop_instance_uid == instance.sop_instance_uid)).first()
    values = asdict(instance)
    if old is None:
        conn.execute(insert(dicom_instance).values(**values))
        touch_study(conn, instance.study_instance_uid)
        return None
    previous = _instance(old)
    if (previous.sha256, previous.archive_url, previous.study_instance_uid) == (
            instance.sha256, instance.archive_url, instance.study_instance_uid):
        return previous.sha256
    conn.execute(update(dicom_instance).where(
        dicom_instance.c.sop_instance_uid == instance.sop_instance_uid).values(**values))
    touch_study(conn, instance.study_instance_uid)
    if previous.study_instance_uid != instance.study_instance_uid:
        touch_study(conn, previous.study_instance_uid)
    return previous.sha256


def touch_study(conn: Connection, study_uid: str, now: float | None = None) -> None:
    """Record that ``study_uid`` changed now: a new revision, a fresh quiet period (and a
    failed publication is tried again)."""
    now = time.time() if now is None else now
    done = conn.execute(update(imaging_study).where(
        imaging_study.c.study_instance_uid == study_uid).values(
        updated=now, revision=imaging_study.c.revision + 1, last_error=None))
    if not done.rowcount:
        conn.execute(insert(imaging_study).values(
            study_instance_uid=study_uid, updated=now, revision=1))


def find_instance(conn: Connection, sop_instance_uid: str) -> Instance | None:
    """The instance with this SOP Instance UID, or None."""
    row = conn.execute(select(dicom_instance).where(
        dicom_instance.c.sop_instance_uid == sop_instance_uid)).first()
    return None if row is None else _instance(row)


def find_instances(conn: Connection, sop_instance_uids: Iterable[str]) -> dict[str, Instance]:
    """SOP Instance UID -> Instance for those of ``sop_instance_uids`` that are indexed."""
    uids = list(dict.fromkeys(sop_instance_uids))
    found: dict[str, Instance] = {}
    for start in range(0, len(uids), 500):
        rows = conn.execute(select(dicom_instance).where(
            dicom_instance.c.sop_instance_uid.in_(uids[start:start + 500])))
        found.update((i.sop_instance_uid, i) for i in map(_instance, rows))
    return found


def study_instances(conn: Connection, study_uid: str,
                    series_uid: str | None = None) -> list[Instance]:
    """The study's instances (of one series if given) by series number, series, instance number."""
    where = dicom_instance.c.study_instance_uid == study_uid
    if series_uid is not None:
        where = and_(where, dicom_instance.c.series_instance_uid == series_uid)
    rows = conn.execute(select(dicom_instance).where(where).order_by(
        dicom_instance.c.series_number, dicom_instance.c.series_instance_uid,
        dicom_instance.c.instance_number, dicom_instance.c.sop_instance_uid))
    return [_instance(r) for r in rows]


def _distinct_studies(conn: Connection, where: object) -> list[str]:
    rows = conn.execute(select(dicom_instance.c.study_instance_uid).where(where)  # type: ignore[arg-type]
                        .distinct().order_by(dicom_instance.c.study_instance_uid))
    return [r[0] for r in rows]


def studies_of_patient(conn: Connection, issuer: str, patient_id: str) -> list[str]:
    """Study Instance UIDs of the patient ``patient_id`` issued by ``issuer``."""
    return _distinct_studies(conn, and_(dicom_instance.c.patient_issuer == issuer,
                                        dicom_instance.c.patient_id == patient_id))


def studies_by_accession(conn: Connection, accession: str) -> list[str]:
    """Study Instance UIDs with this accession number."""
    return _distinct_studies(conn, dicom_instance.c.accession_number == accession)


def study_state(conn: Connection, study_uid: str) -> StudyState | None:
    """The study's revision and manifest, or None for a study with no instances ever."""
    row = conn.execute(select(imaging_study).where(
        imaging_study.c.study_instance_uid == study_uid)).first()
    return None if row is None else StudyState(**row._mapping)


def record_publication(conn: Connection, study_uid: str, *, revision: int, kos_uid: str,
                       entry_uuid: str, published: str, patient_cx: str) -> None:
    """The manifest ``kos_uid`` (DocumentEntry ``entry_uuid``) now shows ``revision``."""
    conn.execute(update(imaging_study).where(
        imaging_study.c.study_instance_uid == study_uid).values(
        published_revision=revision, kos_sop_instance_uid=kos_uid, kos_entry_uuid=entry_uuid,
        published=published, patient_cx=patient_cx, last_error=None))


def record_publish_error(conn: Connection, study_uid: str, error: str) -> None:
    """Keep why the last publication of ``study_uid`` failed (shown by ``xds publish``)."""
    conn.execute(update(imaging_study).where(
        imaging_study.c.study_instance_uid == study_uid).values(last_error=error[:4000]))


def studies_due(conn: Connection, quiet_seconds: float, now: float | None = None,
                limit: int = 100) -> Sequence[str]:
    """Studies changed since their manifest and quiet for ``quiet_seconds``, oldest first."""
    now = time.time() if now is None else now
    rows = conn.execute(select(imaging_study.c.study_instance_uid).where(and_(
        imaging_study.c.updated <= now - quiet_seconds,
        (imaging_study.c.published_revision.is_(None))
        | (imaging_study.c.published_revision != imaging_study.c.revision),
        imaging_study.c.last_error.is_(None),
    )).order_by(imaging_study.c.updated).limit(limit))
    return [r[0] for r in rows]
