"""The local audit trail: events written to the ``audit_outbox`` table, for the sender to ship.

``record`` writes inside the caller's transaction, so an audit row exists exactly when the
change it describes was committed; ``record_now`` is for what has no transaction of its own
(queries, reads, refusals, failures after a rollback). Neither waits for the Audit Record
Repository: the sender (``xds.audit.sender``) ships the rows in the background.
"""

from __future__ import annotations

import logging
import os
import socket
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, event, insert, or_, select

from xds.audit.events import (
    Action, ActiveParticipant, AuditEvent, CodedValue, EventId, Outcome,
    REQUEST, ParticipantObject, Role,
)
from xds.audit.message import audit_message
from xds.config import Settings
from xds.store.db import read_connection, write_transaction
from xds.store.tables import audit_outbox

__all__ = [
    "record", "record_now", "security_alert", "application_activity", "local_trail", "prune",
    "on_record", "APPLICATION_START", "APPLICATION_STOP", "NODE_AUTHENTICATION",
    "AUTHENTICATION_DECISION", "USE_OF_RESTRICTED_FUNCTION",
]

log = logging.getLogger("xds.audit")

#: EventTypeCodes of Application Activity (CID 401) and Security Alert (CID 403), DCM.
APPLICATION_START = CodedValue("110120", "DCM", "Application Start")
APPLICATION_STOP = CodedValue("110121", "DCM", "Application Stop")
NODE_AUTHENTICATION = CodedValue("110126", "DCM", "Node Authentication")
USE_OF_RESTRICTED_FUNCTION = CodedValue("110132", "DCM", "Use of Restricted Function")
AUTHENTICATION_DECISION = CodedValue("110143", "DCM", "Authentication Decision")
#: ParticipantObjectIDTypeCode 12 (RFC-3881): a URI, here the endpoint an alert is about.
_URI = CodedValue("12", "RFC-3881", "URI")

_WAKERS: weakref.WeakKeyDictionary[Engine, Callable[[], None]] = weakref.WeakKeyDictionary()
_HOOKED: weakref.WeakSet[Engine] = weakref.WeakSet()
#: Set in a pooled connection's info by ``record``: wake the sender when it is checked in.
_RECORDED = "xds_audit_recorded"


def on_record(engine: Engine, wake: Callable[[], None] | None) -> None:
    """Have ``wake`` called after a connection of ``engine`` that recorded an event went back
    to the pool (so after its transaction committed: the "commit" event fires before the
    COMMIT, too early for a reader to see the row); ``None`` removes it."""
    if wake is None:
        _WAKERS.pop(engine, None)
        return
    _WAKERS[engine] = wake
    if engine not in _HOOKED:
        _HOOKED.add(engine)
        engine_ref = weakref.ref(engine)

        def checkin(_dbapi_connection: Any, connection_record: Any) -> None:
            if connection_record.info.pop(_RECORDED, False):
                hooked = engine_ref()
                waker = _WAKERS.get(hooked) if hooked is not None else None
                if waker is not None:
                    waker()

        event.listen(engine, "checkin", checkin)


def _row(event_: AuditEvent, settings: Settings) -> dict[str, Any]:
    return {
        "created": event_.time,
        "event_id": event_.event_id.value.code,
        "event_type": event_.event_type.code[:32] if event_.event_type else None,
        "outcome": int(event_.outcome),
        "patient": event_.patient,
        "message": audit_message(event_, settings.audit_source_id),
    }


def record(conn: Connection, event_: AuditEvent, settings: Settings) -> None:
    """Add ``event_`` to the outbox inside the caller's transaction on ``conn``: it commits or
    rolls back with the change it describes. An event that cannot be written as a message is
    logged, not raised: auditing never fails the change."""
    try:
        row = _row(event_, settings)
    except Exception:
        log.exception("audit event %s not recorded", event_.event_id.value.code)
        return
    _claim(conn)
    conn.execute(insert(audit_outbox).values(**row))
    if conn.engine in _WAKERS:
        conn.info[_RECORDED] = True


def _claim(conn: Connection) -> None:
    """The request's pending claim (its XUA assertion ID) goes into its first audit write;
    a replay raises IntegrityError here, rolling back the change the record describes."""
    info = REQUEST.get()
    if info is not None and info.claim is not None:
        info.claim.record(conn)


def record_now(engine: Engine, event_: AuditEvent, settings: Settings) -> None:
    """``record`` in a short write transaction of its own; logs and swallows any error, so an
    audit failure never fails the request it describes."""
    try:
        row = _row(event_, settings)
        with write_transaction(engine) as conn:
            _claim(conn)
            conn.execute(insert(audit_outbox).values(**row))
    except Exception:
        log.exception("audit event %s not recorded", event_.event_id.value.code)
        return
    wake = _WAKERS.get(engine)
    if wake is not None:
        wake()


def _application(settings: Settings, requestor: bool) -> ActiveParticipant:
    """This process as an ActiveParticipant: AuditSourceID, process id, host name."""
    return ActiveParticipant(
        user_id=settings.audit_source_id, requestor=requestor, roles=(Role.APPLICATION.value,),
        network_id=socket.gethostname(), alternative_user_id=str(os.getpid()))


def _host(peer: str) -> str:
    """The address of ``host:port``, ``[v6]:port`` or a bare address."""
    if peer.startswith("["):
        return peer[1:].split("]", 1)[0]
    return peer.rsplit(":", 1)[0] if peer.count(":") == 1 else peer


def security_alert(engine: Engine, settings: Settings, *, peer: str, endpoint: str, reason: str,
                   transaction: str | None = None, requestor: str = "",
                   alert_type: CodedValue | None = None,
                   outcome: Outcome = Outcome.SERIOUS_FAILURE) -> None:
    """Record a Security Alert (110113): ``peer`` (an address) was refused at ``endpoint``.

    The EventTypeCode is ``alert_type``, by default 110126 Node Authentication for a refusal
    outside any transaction (a TLS handshake) and 110143 Authentication Decision for one of a
    ``transaction`` (an XUA assertion rejected); ``requestor`` is the user the request claimed.
    """
    kind = alert_type or (NODE_AUTHENTICATION if transaction is None else AUTHENTICATION_DECISION)
    participants = [_application(settings, requestor=False),
                    ActiveParticipant(user_id=requestor or peer, requestor=True,
                                      network_id=_host(peer))]
    details = [("Alert Description", reason)]
    if transaction:
        details.append(("IHE Transaction", transaction))
    event_ = AuditEvent(
        event_id=EventId.SECURITY_ALERT, action=Action.EXECUTE, outcome=outcome,
        event_type=kind, participants=tuple(participants), description=reason,
        objects=(ParticipantObject(object_id=endpoint, type_code=2, role=13, id_type=_URI,
                                   details=tuple(details)),))
    record_now(engine, event_, settings)


def application_activity(engine: Engine, settings: Settings, started: bool) -> None:
    """Record Application Activity (110100): this application started or stopped."""
    event_ = AuditEvent(
        event_id=EventId.APPLICATION_ACTIVITY, action=Action.EXECUTE, outcome=Outcome.SUCCESS,
        event_type=APPLICATION_START if started else APPLICATION_STOP,
        participants=(_application(settings, requestor=True),))
    record_now(engine, event_, settings)


def local_trail(engine: Engine, *, since: float | None = None, patient: str | None = None,
                event: str | None = None, limit: int = 100) -> list[Row[Any]]:
    """The newest outbox rows first, at most ``limit``: those created at or after ``since``
    (epoch seconds), about ``patient``, whose EventID or EventTypeCode is ``event``
    (``110112``, ``ITI-18``)."""
    query = select(audit_outbox).order_by(audit_outbox.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(audit_outbox.c.created >= since)
    if patient:
        query = query.where(audit_outbox.c.patient == patient)
    if event:
        query = query.where(or_(audit_outbox.c.event_id == event,
                                audit_outbox.c.event_type == event))
    with read_connection(engine) as conn:
        return list(conn.execute(query).all())



def prune(engine: Engine, *, sent_before: float) -> int:
    """Delete the rows the Audit Record Repository took before ``sent_before`` (epoch seconds);
    rows not yet sent are never deleted. Returns how many went."""
    with write_transaction(engine) as conn:
        return conn.execute(delete(audit_outbox).where(
            audit_outbox.c.sent.is_not(None), audit_outbox.c.sent < sent_before)).rowcount
