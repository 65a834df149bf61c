"""Known patients of the affinity domain: the ids ITI-42 accepts (`xds patient add`, later ITI-8)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, select

from xds.store.db import write_transaction
from xds.store.tables import patient

__all__ = ["add_patient", "known_patient_ids", "is_known", "ensure_patient", "merge_patient",
           "merged_into"]


_MERGED_INTO = select(patient.c.merged_into).where(patient.c.patient_id == bindparam("pid"))


def add_patient(engine: Engine, patient_id: str) -> bool:
    """Make ``patient_id`` (CX) known; False if it already was."""
    with write_transaction(engine) as conn:
        if is_known(conn, patient_id):
            return False
        now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        conn.execute(patient.insert().values(patient_id=patient_id, created=now))
        return True


def is_known(conn: Connection, patient_id: str) -> bool:
    """True when ``patient_id`` was fed and not merged away."""
    row = conn.execute(_MERGED_INTO, {"pid": patient_id}).first()
    return row is not None and row.merged_into is None


def known_patient_ids(conn: Connection, patient_ids: set[str]) -> set[str]:
    """The subset of ``patient_ids`` that is known (one query)."""
    if not patient_ids:
        return set()
    rows = conn.execute(
        select(patient.c.patient_id).where(
            patient.c.patient_id.in_(sorted(patient_ids)), patient.c.merged_into.is_(None)
        )
    )
    return {r.patient_id for r in rows}


def ensure_patient(conn: Connection, patient_id: str) -> None:
    """Make ``patient_id`` known inside the caller's transaction (the identity feed's path)."""
    if conn.execute(_MERGED_INTO, {"pid": patient_id}).first() is None:
        now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        conn.execute(patient.insert().values(patient_id=patient_id, created=now))


def merge_patient(conn: Connection, subsumed: str, surviving: str) -> None:
    """Record that ``subsumed`` was merged into ``surviving`` (both known afterwards)."""
    ensure_patient(conn, surviving)
    ensure_patient(conn, subsumed)
    conn.execute(patient.update().where(patient.c.patient_id == subsumed)
                 .values(merged_into=surviving))


def merged_into(conn: Connection, surviving: str) -> list[str]:
    """Every patient id merged into ``surviving``, directly or through a chain of merges."""
    found: list[str] = []
    frontier = [surviving]
    while frontier:
        rows = conn.execute(select(patient.c.patient_id).where(
            patient.c.merged_into.in_(frontier)))
        frontier = [r.patient_id for r in rows if r.patient_id not in found]
        found += frontier
    return found
