"""The patient identifier cross-reference: feed, merge and query, each one transaction (ITI-8/44/9/45).

Identifiers fed together are linked into one person (link group); a group gets an
affinity-domain id if it has none (configurable); merges move a subsumed identifier's links to
the survivor. Every change is recorded in ``mpi_event``, mirrored into the registry's
known-patient table, and queued in ``mpi_notification`` for the PIX Consumers.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from xds.config import Settings
from xds.mpi.model import Demographics, MpiError, MpiErrorKind, PatientIdentifier, Person, match_key
from xds.store.db import read_connection, write_transaction
from xds.store.patients import ensure_patient, merge_patient
from xds.store.tables import mpi_event, mpi_identifier, mpi_notification, mpi_person
from xds.model.values import now_dtm

__all__ = ["PatientIndex", "Audit"]

#: Records the audit event of a change, given the change's connection and the person after it.
Audit = Callable[[Connection, Person], None]

log = logging.getLogger("xds.mpi")
_ATTEMPTS = 3
_DEMOGRAPHIC_FIELDS = ("family", "given", "birth_date", "sex", "address", "phone",
                       "mothers_maiden_name")


class PatientIndex:
    """The MPI over the project's database.

    >>> index = PatientIndex(engine, settings)
    >>> person = index.feed([PatientIdentifier("1.2.3", "A1")], Demographics(family="DOE"))
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.affinity_domain = settings.affinity_domain
        self.domains = {d.strip() for d in settings.pix_domains.split(",") if d.strip()}
        self.assign_ids = settings.pix_assign_ids.strip().lower() in ("yes", "true", "1", "on")
        self.match = settings.pix_match.strip().lower() == "demographics"
        self.subscribers = [s.strip() for s in settings.pix_subscribers.split(",") if s.strip()]
        #: Called after each committed change (e.g. to wake the notification sender).
        self.listeners: list[Callable[[], None]] = []

    # -- feeds ----------------------------------------------------------------------------------

    def feed(self, identifiers: Sequence[PatientIdentifier], demographics: Demographics, *,
             audit: Audit | None = None) -> Person:
        """Create or update a patient (A01/A04/A05/A08, PRPA_IN201301/201302UV02).

        ``audit`` is called with the connection and the person inside the write transaction
        (the audit record commits with the change).

        Raises MpiError: MissingIdentifier, UnknownDomain (``positions`` = the refused ones),
        UnknownIdentifier for an identifier merged away, Conflict when the identifiers belong to
        people with different affinity-domain ids.
        """
        if not identifiers:
            raise MpiError(MpiErrorKind.MissingIdentifier, "no patient identifier")
        refused = tuple(i for i, pid in enumerate(identifiers) if not self.accepts(pid.domain))
        if refused:
            raise MpiError(MpiErrorKind.UnknownDomain, "assigning authority "
                           f"{identifiers[refused[0]].domain} is not accepted", refused)
        return self._retry(lambda conn: self._feed(conn, list(dict.fromkeys(identifiers)),
                                                    demographics), audit)

    def merge(self, surviving: PatientIdentifier, subsumed: PatientIdentifier,
              demographics: Demographics | None = None, *, audit: Audit | None = None) -> Person:
        """Merge ``subsumed`` into ``surviving`` (A40, PRPA_IN201304UV02); ``audit`` as for
        ``feed``.

        Raises MpiError InvalidMerge (same id, other domains, circular, already merged
        elsewhere), UnknownDomain, UnknownIdentifier (``subsumed`` never fed).
        """
        if surviving.domain != subsumed.domain:
            raise MpiError(MpiErrorKind.InvalidMerge, "a merge stays within one assigning authority")
        if surviving == subsumed:
            raise MpiError(MpiErrorKind.InvalidMerge, f"{subsumed} cannot be merged into itself")
        if not self.accepts(surviving.domain):
            raise MpiError(MpiErrorKind.UnknownDomain,
                           f"assigning authority {surviving.domain} is not accepted", (0,))
        return self._retry(lambda conn: self._merge(conn, surviving, subsumed,
                                                     demographics or Demographics()), audit)

    def accepts(self, domain: str) -> bool:
        """True when feeds from ``domain`` are taken."""
        return not self.domains or domain in self.domains or domain == self.affinity_domain

    # -- queries ---------------------------------------------------------------------------------

    def query(self, identifier: PatientIdentifier,
              target_domains: Sequence[str] = ()) -> list[PatientIdentifier]:
        """The identifiers linked to ``identifier`` (never itself), in ``target_domains`` if given.

        Raises MpiError UnknownDomain (source), UnknownTargetDomain (``positions`` = indexes of
        the unknown targets), UnknownIdentifier (not fed, or merged away).
        """
        with read_connection(self.engine) as conn:
            if not self._known_domain(conn, identifier.domain):
                raise MpiError(MpiErrorKind.UnknownDomain,
                               f"assigning authority {identifier.domain} is not known")
            bad = tuple(i for i, d in enumerate(target_domains) if not self._known_domain(conn, d))
            if bad:
                raise MpiError(MpiErrorKind.UnknownTargetDomain,
                               f"target domain {target_domains[bad[0]]} is not known", bad)
            row = self._row(conn, identifier)
            if row is None or row.person_id is None:
                raise MpiError(MpiErrorKind.UnknownIdentifier, f"{identifier} is not known")
            linked = self._identifiers(conn, row.person_id)
        wanted = set(target_domains)
        return [i for i in linked if i != identifier and (not wanted or i.domain in wanted)]

    def person(self, identifier: PatientIdentifier) -> Person | None:
        """The link group of ``identifier`` (None when unknown or merged away)."""
        with read_connection(self.engine) as conn:
            row = self._row(conn, identifier)
            if row is None or row.person_id is None:
                return None
            return self._person(conn, row.person_id)

    def persons(self, limit: int = 100, offset: int = 0) -> list[Person]:
        """Link groups in creation order."""
        with read_connection(self.engine) as conn:
            ids = conn.execute(select(mpi_person.c.person_id).order_by(
                mpi_person.c.created, mpi_person.c.person_id).limit(limit).offset(offset))
            return [self._person(conn, r.person_id) for r in ids]

    def history(self, identifier: PatientIdentifier) -> list[dict[str, str | None]]:
        """The recorded events of ``identifier``, oldest first."""
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(mpi_event).where(and_(
                mpi_event.c.domain == identifier.domain, mpi_event.c.value == identifier.value))
                .order_by(mpi_event.c.id))
            return [{k: (str(v) if v is not None else None) for k, v in r._mapping.items()}
                    for r in rows]

    # -- internals -------------------------------------------------------------------------------

    def _retry(self, work: Callable[[Connection], Person], audit: Audit | None = None) -> Person:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with write_transaction(self.engine) as conn:
                    person = work(conn)
                    if audit is not None:
                        audit(conn, person)
                break
            except IntegrityError:
                # A concurrent feed created the same identifier first; again, now seeing it.
                if attempt == _ATTEMPTS:
                    raise
        for listener in self.listeners:
            listener()
        return person

    def _feed(self, conn: Connection, ids: list[PatientIdentifier], demo: Demographics) -> Person:
        rows = {pid: self._row(conn, pid) for pid in ids}
        for pid, row in rows.items():
            if row is not None and row.person_id is None:
                raise MpiError(MpiErrorKind.UnknownIdentifier,
                               f"{pid} was merged into {row.merged_into}")
        persons = sorted({row.person_id for row in rows.values() if row is not None})
        key = match_key(demo)
        if not persons and self.match and key:
            candidates = {r.person_id for r in conn.execute(select(mpi_identifier.c.person_id).where(
                mpi_identifier.c.match_key == key, mpi_identifier.c.person_id.is_not(None)))}
            if len(candidates) == 1:  # never link on ambiguity
                persons = sorted(candidates)
        if len(persons) > 1:
            affinity = {i for p in persons for i in self._identifiers(conn, p)
                        if i.domain == self.affinity_domain}
            if len(affinity) > 1:
                raise MpiError(MpiErrorKind.Conflict, "the identifiers belong to patients with "
                               f"different affinity-domain ids: {', '.join(map(str, sorted(affinity)))}")
        now = now_dtm()
        person_id = persons[0] if persons else self._new_person(conn, now)
        for other in persons[1:]:
            conn.execute(update(mpi_identifier).where(mpi_identifier.c.person_id == other)
                         .values(person_id=person_id))
            conn.execute(delete(mpi_person).where(mpi_person.c.person_id == other))
            self._event(conn, "linked", ids[0], person_id, detail=f"joined link group {other}")
        values = {f: getattr(demo, f) for f in _DEMOGRAPHIC_FIELDS if getattr(demo, f) is not None}
        for pid, row in rows.items():
            if row is None:
                conn.execute(insert(mpi_identifier), {
                    "domain": pid.domain, "value": pid.value, "person_id": person_id,
                    "updated": now, "match_key": key, **values})
                self._event(conn, "created", pid, person_id)
            else:
                if row.person_id != person_id:
                    conn.execute(update(mpi_identifier).where(self._is(pid)).values(
                        person_id=person_id))
                if values:
                    conn.execute(update(mpi_identifier).where(self._is(pid)).values(
                        updated=now, match_key=key, **values))
                self._event(conn, "updated", pid, person_id)
        self._affinity(conn, person_id, now)
        self._queue_notifications(conn, person_id, now)
        return self._person(conn, person_id)

    def _merge(self, conn: Connection, surviving: PatientIdentifier, subsumed: PatientIdentifier,
               demo: Demographics) -> Person:
        old = self._row(conn, subsumed)
        if old is None:
            raise MpiError(MpiErrorKind.UnknownIdentifier, f"{subsumed} is not known")
        if old.person_id is None:
            if old.merged_into == surviving.value:
                return self._person_of(conn, surviving)
            raise MpiError(MpiErrorKind.InvalidMerge,
                           f"{subsumed} was already merged into {old.merged_into}")
        survivor = self._row(conn, surviving)
        if survivor is not None and survivor.person_id is None:
            raise MpiError(MpiErrorKind.InvalidMerge,
                           f"{surviving} was itself merged into {survivor.merged_into}")
        if survivor is None:
            self._feed(conn, [surviving], demo)
            survivor = self._row(conn, surviving)
        assert survivor is not None
        now, person_id = now_dtm(), survivor.person_id
        # The subsumed record's other identifiers now belong to the survivor.
        if old.person_id != person_id:
            moved = self._identifiers(conn, old.person_id)
            kept_affinity = [i for i in self._identifiers(conn, person_id)
                             if i.domain == self.affinity_domain]
            conn.execute(update(mpi_identifier).where(mpi_identifier.c.person_id == old.person_id)
                         .values(person_id=person_id))
            conn.execute(delete(mpi_person).where(mpi_person.c.person_id == old.person_id))
            for pid in moved:
                if pid.domain == self.affinity_domain and kept_affinity and pid != subsumed:
                    self._retire(conn, pid, kept_affinity[0], now)
        self._retire(conn, subsumed, surviving, now)
        self._event(conn, "merged", subsumed, person_id, other=surviving)
        self._affinity(conn, person_id, now)
        self._queue_notifications(conn, person_id, now)
        return self._person(conn, person_id)

    def _retire(self, conn: Connection, pid: PatientIdentifier, into: PatientIdentifier,
                now: str) -> None:
        """``pid`` leaves its group, merged into ``into`` (same domain, or the survivor's
        affinity id); an affinity-domain id is merged in the registry too."""
        conn.execute(update(mpi_identifier).where(self._is(pid)).values(
            person_id=None, merged_into=into.value, updated=now))
        if pid.domain == self.affinity_domain and into.domain == self.affinity_domain:
            merge_patient(conn, pid.cx, into.cx)

    def _affinity(self, conn: Connection, person_id: str, now: str) -> None:
        ids = [i for i in self._identifiers(conn, person_id) if i.domain == self.affinity_domain]
        if not ids and self.assign_ids:
            new = PatientIdentifier(self.affinity_domain, f"XDS{uuid.uuid4().hex[:16].upper()}")
            conn.execute(insert(mpi_identifier), {
                "domain": new.domain, "value": new.value, "person_id": person_id, "updated": now})
            self._event(conn, "assigned", new, person_id)
            ids = [new]
        for pid in ids:
            ensure_patient(conn, pid.cx)

    def _queue_notifications(self, conn: Connection, person_id: str, now: str) -> None:
        if self.subscribers:
            conn.execute(insert(mpi_notification), [
                {"subscriber": s, "person_id": person_id, "created": now, "attempts": 0,
                 "next_attempt": now} for s in self.subscribers])

    def _new_person(self, conn: Connection, now: str) -> str:
        person_id = f"urn:uuid:{uuid.uuid4()}"
        conn.execute(insert(mpi_person), {"person_id": person_id, "created": now})
        return person_id

    def _event(self, conn: Connection, kind: str, pid: PatientIdentifier, person_id: str | None,
               *, other: PatientIdentifier | None = None, detail: str | None = None) -> None:
        conn.execute(insert(mpi_event), {
            "at": now_dtm(), "kind": kind, "domain": pid.domain, "value": pid.value,
            "person_id": person_id, "other_domain": other.domain if other else None,
            "other_value": other.value if other else None, "detail": detail})

    @staticmethod
    def _is(pid: PatientIdentifier):  # type: ignore[no-untyped-def]
        return and_(mpi_identifier.c.domain == pid.domain, mpi_identifier.c.value == pid.value)

    def _row(self, conn: Connection, pid: PatientIdentifier):  # type: ignore[no-untyped-def]
        return conn.execute(select(mpi_identifier).where(self._is(pid))).first()

    def _identifiers(self, conn: Connection, person_id: str) -> list[PatientIdentifier]:
        rows = conn.execute(select(mpi_identifier.c.domain, mpi_identifier.c.value)
                            .where(mpi_identifier.c.person_id == person_id)
                            .order_by(mpi_identifier.c.domain, mpi_identifier.c.value))
        return [PatientIdentifier(r.domain, r.value) for r in rows]

    def _person(self, conn: Connection, person_id: str) -> Person:
        rows = list(conn.execute(select(mpi_identifier).where(
            mpi_identifier.c.person_id == person_id).order_by(mpi_identifier.c.updated.desc())))
        demo = Demographics()
        for row in rows:  # the most recently fed non-empty value of each field
            for f in _DEMOGRAPHIC_FIELDS:
                if getattr(demo, f) is None and getattr(row, f) is not None:
                    setattr(demo, f, getattr(row, f))
        return Person(person_id=person_id, demographics=demo,
                      identifiers=sorted(PatientIdentifier(r.domain, r.value) for r in rows))

    def _person_of(self, conn: Connection, pid: PatientIdentifier) -> Person:
        row = self._row(conn, pid)
        if row is None or row.person_id is None:
            raise MpiError(MpiErrorKind.UnknownIdentifier, f"{pid} is not known")
        return self._person(conn, row.person_id)

    def _known_domain(self, conn: Connection, domain: str) -> bool:
        if domain == self.affinity_domain or domain in self.domains:
            return True
        if self.domains:
            return False
        return conn.execute(select(mpi_identifier.c.domain).where(
            mpi_identifier.c.domain == domain).limit(1)).first() is not None

