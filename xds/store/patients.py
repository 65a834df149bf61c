"""Known patients of the affinity domain: the ids ITI-42 accepts (`xds patient add`, the MPI), and
their merges (ITI TF-2 §3.18.4.1.2.3.9)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    CompoundSelect, Connection, Engine, bindparam, literal, select, union_all,
)
from sqlalchemy.sql.elements import BindParameter

from xds.store.db import write_transaction
from xds.store.tables import patient
from xds.model.values import now_dtm

__all__ = ["add_patient", "is_known", "ensure_patient", "merge_patient", "surviving", "survivors",
           "patient_scope"]


_MERGED_INTO = select(patient.c.merged_into).where(patient.c.patient_id == bindparam("pid"))
_CHUNK = 500  # ids per IN list
_PIDS: BindParameter[list[str]] = bindparam("pids", expanding=True)
_MERGED = select(patient.c.patient_id, patient.c.merged_into).where(
    patient.c.patient_id.in_(_PIDS), patient.c.merged_into.is_not(None))


def _scope_statement() -> CompoundSelect[str, str | None, bool]:
    # Every id merged into one of :pids, through chains, with the named id it ends at (one
    # round trip); UNION, not UNION ALL, so even a cycle the MPI should never let in ends.
    seed = select(patient.c.patient_id, patient.c.merged_into.label("root")).where(
        patient.c.merged_into.in_(_PIDS))
    covered = seed.cte("covered", recursive=True)
    child = patient.alias("child")
    covered = covered.union(select(child.c.patient_id, covered.c.root).join(
        covered, child.c.merged_into == covered.c.patient_id))
    # And the named ids' own rows (by primary key), to see which were merged away.
    return union_all(
        select(covered.c.patient_id, covered.c.root, literal(False).label("named")),
        select(patient.c.patient_id, patient.c.merged_into, literal(True).label("named"))
        .where(patient.c.patient_id.in_(_PIDS)))


_SCOPE = _scope_statement()


def add_patient(engine: Engine, patient_id: str) -> bool:
    """Make ``patient_id`` (CX) known; False if it already was."""
    with write_transaction(engine) as conn:
        if is_known(conn, patient_id):
            return False
        now = now_dtm()
        conn.execute(patient.insert().values(patient_id=patient_id, created=now))
        return True


def is_known(conn: Connection, patient_id: str) -> bool:
    """True when ``patient_id`` was fed and not merged away."""
    row = conn.execute(_MERGED_INTO, {"pid": patient_id}).first()
    return row is not None and row.merged_into is None


def ensure_patient(conn: Connection, patient_id: str) -> None:
    """Make ``patient_id`` known inside the caller's transaction (the identity feed's path)."""
    if conn.execute(_MERGED_INTO, {"pid": patient_id}).first() is None:
        now = now_dtm()
        conn.execute(patient.insert().values(patient_id=patient_id, created=now))


def merge_patient(conn: Connection, subsumed: str, surviving: str) -> None:
    """Record that ``subsumed`` was merged into ``surviving`` (both known afterwards)."""
    ensure_patient(conn, surviving)
    ensure_patient(conn, subsumed)
    conn.execute(patient.update().where(patient.c.patient_id == subsumed)
                 .values(merged_into=surviving))


def surviving(conn: Connection, patient_id: str) -> str:
    """The id ``patient_id`` is answered under: the end of its chain of merges, else itself."""
    return survivors(conn, [patient_id])[patient_id]


def survivors(conn: Connection, patient_ids: Iterable[str]) -> dict[str, str]:
    """Each of ``patient_ids`` -> its surviving id (itself unless merged away; unknown ids too).

    One primary-key query; one more per link of the longest merge chain among them.
    """
    result = {pid: pid for pid in patient_ids}
    pending = dict(result)  # id -> where its chain has got to
    for _ in range(len(result) + 64):  # bound: the MPI refuses circular merges
        current = sorted(set(pending.values()))
        nxt: dict[str, str] = {}
        for start in range(0, len(current), _CHUNK):
            nxt |= {r.patient_id: r.merged_into for r in conn.execute(
                _MERGED, {"pids": current[start:start + _CHUNK]})}
        pending = {pid: nxt[at] for pid, at in pending.items() if at in nxt}
        if not pending:
            break
        result |= pending
    return result


def patient_scope(conn: Connection, patient_ids: Iterable[str]) -> dict[str, str]:
    """The ids whose metadata a query naming ``patient_ids`` covers -> the named id each one is
    answered under (ITI TF-2 §3.18.4.1.2.3.9): each named id that was not merged away (known
    or not), and every id merged into one of those, directly or through a chain.

    A named id that was merged away covers nothing, so a query by it finds nothing. One query.
    """
    named = sorted(set(patient_ids))
    if not named:
        return {}
    rows = [(r.patient_id, r.root, r.named) for start in range(0, len(named), _CHUNK)
            for r in conn.execute(_SCOPE, {"pids": named[start:start + _CHUNK]})]
    merged_away = {pid for pid, root, is_named in rows if is_named and root is not None}
    scope = {pid: pid for pid in named if pid not in merged_away}
    live = set(scope)
    for pid, root, is_named in rows:
        if not is_named and root in live and pid not in scope:
            scope[pid] = root
    return scope
