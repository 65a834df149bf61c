"""The audit trail of the command-line clients: the transactions this node initiates.

A client command opens a ``ClientTrail`` on its store (``--data-dir`` / ``--database-url``)
only when an Audit Record Repository is configured (``--audit-url`` / ``XDS_AUDIT_URL``);
without one nothing is recorded and no database is created. Each transaction's events go to
the same ``audit_outbox`` the server uses; when the command ends, one delivery attempt with a
short timeout ships what is pending (its own events and any left by earlier commands). What
is not delivered stays in the outbox for the next command or a ``xds serve`` on that store.

Participants (IPF's client conventions): this node is the source and the requestor (its
wsa:ReplyTo address for SOAP, MSH-4|MSH-3 for HL7 v2), the server endpoint the destination
(its URL, at its host); the XUA assertion of ``--saml`` names the human requestor.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType

from lxml import etree
from sqlalchemy import Engine

from xds.audit.events import REQUEST, Action, AuditEvent, Outcome, RequestInfo, Requestor
from xds.audit.imaging_events import InstanceRef, transferred_events
from xds.audit.pix_events import feed_event, merge_events, pix_query_event
from xds.audit.transactions import (
    ANONYMOUS, Build, ClientSide, record_after, with_request,
)
from xds.audit.xds_events import export_event, retrieve_events, stored_query_event
from xds.clients.steps import Step
from xds.config import Settings
from xds.ebrim.rim import Element
from xds.ebrim.vocabulary import ResponseStatus
from xds.hl7.message import decode, segments
from xds.model.errors import RegistryError

__all__ = ["ClientTrail", "DELIVERY_TIMEOUT", "xua_requestor", "step_events",
           "submission_event", "feed_events", "pix_query_events", "status_outcome"]

log = logging.getLogger("xds.audit.clients")

#: Seconds the delivery attempt at the end of a command may wait on the repository.
DELIVERY_TIMEOUT = 3.0
#: HL7 v2 ADT triggers of an ITI-8 feed and their EventActionCode (A40 is a merge).
_FEED_ACTIONS = {"A01": Action.CREATE, "A04": Action.CREATE, "A05": Action.CREATE,
                 "A08": Action.UPDATE}


def xua_requestor(assertion: bytes | None) -> Requestor | None:
    """The human requestor named by our own XUA assertion (not verified: we send it), or
    None without one or when it cannot be read."""
    if not assertion:
        return None
    from xds.security.saml import requestor_of
    from xds.security.wsse import read_assertion

    try:
        return requestor_of(read_assertion(assertion))
    except ValueError:
        log.warning("the XUA assertion could not be read; audited without its requestor")
        return None


class ClientTrail:
    """Records a command's events in its store's outbox and, on leaving the ``with`` block,
    makes one delivery attempt; inactive (records nothing, opens nothing) when
    ``settings.audit_url`` is empty. ``assertion``: the XUA assertion the command sends."""

    def __init__(self, settings: Settings, assertion: bytes | None = None, *,
                 timeout: float = DELIVERY_TIMEOUT) -> None:
        self.settings, self.timeout = settings, timeout
        self.enabled = bool(settings.audit_url)
        self._info = RequestInfo(client="", endpoint="", requestor=xua_requestor(assertion))
        self._engine: Engine | None = None

    def __enter__(self) -> ClientTrail:
        return self

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self.close()

    def record(self, build: Build) -> None:
        """Record the events ``build`` makes (with the XUA requestor); never raises."""
        if not self.enabled:
            return
        engine = self._open()
        if engine is not None:
            record_after(engine, self.settings, with_request(self._info, build))

    def _open(self) -> Engine | None:
        if self._engine is None:
            from xds.store.db import ensure_schema, open_engine

            try:
                engine = open_engine(self.settings)
                ensure_schema(engine)
            except Exception as exc:  # the command's own work matters more than its audit
                log.warning("audit trail unavailable (%s); event not recorded", exc)
                return None
            self._engine = engine
        return self._engine

    @contextmanager
    def requesting(self) -> Iterator[None]:
        """``REQUEST`` names the XUA requestor meanwhile, for code that records its own events
        (``xds publish``: RAD-68)."""
        token = REQUEST.set(self._info)
        try:
            yield
        finally:
            REQUEST.reset(token)

    def deliver(self) -> int:
        """One attempt to send what the outbox holds; the number of messages sent. Failures
        are logged: the rows stay for the next attempt."""
        engine = self._open() if self.enabled else None
        if engine is None:
            return 0
        from xds.audit.sender import AuditSender

        try:
            sender = AuditSender(engine, self.settings, timeout=self.timeout)
        except ValueError as exc:  # a malformed --audit-url
            log.warning("audit messages kept in the outbox: %s", exc)
            return 0
        try:
            return sender.deliver_once()
        except Exception as exc:
            log.warning("audit repository %s unreachable (%s); messages kept in the outbox",
                        self.settings.audit_url, exc)
            return 0

    def close(self) -> None:
        """Deliver, then release the store."""
        try:
            self.deliver()
        finally:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


def status_outcome(status: str, failure: str = "") -> Outcome:
    """The outcome of an answer's status URN: 0 Success, 4 PartialSuccess, 8 Failure or
    anything else; 12 when the exchange itself failed (``failure``)."""
    if failure:
        return Outcome.MAJOR_FAILURE
    if status == ResponseStatus.Success:
        return Outcome.SUCCESS
    return Outcome.MINOR_FAILURE if status == ResponseStatus.PartialSuccess \
        else Outcome.SERIOUS_FAILURE


def _errors_text(errors: Sequence[RegistryError]) -> str:
    return "; ".join(f"{e.code} {e.context}".strip() for e in errors)[:1000]


def step_events(settings: Settings, step: Step) -> list[AuditEvent]:
    """The consumer's events of one exchange: ITI-18/51 Query E, ITI-43 Import C, RAD-69
    DICOM Instances Accessed C (delivered and failed ones in separate events)."""
    client = ClientSide(ANONYMOUS, step.url)
    why = step.failure or _errors_text(step.errors)
    if step.transaction in ("ITI-18", "ITI-51"):
        query = step.query if step.query is not None else etree.Element("AdhocQueryRequest")
        return [stored_query_event(settings, query, status_outcome(step.status, step.failure),
                                   multi_patient=step.transaction == "ITI-51",
                                   description=why, client=client)]
    if step.transaction == "ITI-43":
        # (documentUniqueId, repositoryUniqueId, homeCommunityId), as retrieve_events wants them
        asked = [(doc, repository, home) for repository, doc, home in step.documents]
        came = [d for d in asked if d[0] in step.delivered]
        return _failed(step, retrieve_events(
            settings, came, [d for d in asked if d not in came], step.errors, client=client,
            description=step.failure))
    if step.transaction == "RAD-69":
        refs = [InstanceRef(study, series, sop, step.patient, step.source_id)
                for study, series, sop in step.instances]
        accessed = [r for r in refs if r.sop_uid in step.delivered]
        return _failed(step, transferred_events(
            settings, "RAD-69", accessed, [r for r in refs if r not in accessed],
            description=why, client=client))
    raise ValueError(f"no client audit for {step.transaction}")


def _failed(step: Step, events: list[AuditEvent]) -> list[AuditEvent]:
    """``events`` with the failure ones made major failures when the exchange itself failed."""
    if not step.failure:
        return events
    return [e if e.outcome is Outcome.SUCCESS else dataclasses.replace(
        e, outcome=Outcome.MAJOR_FAILURE) for e in events]


def submission_event(settings: Settings, url: str, submit_objects_request: Element,
                     errors: Sequence[RegistryError] = (), *, status: str = "",
                     failure: str = "") -> AuditEvent:
    """ITI-41 on the Document Source: Export R of the submission to the repository ``url``."""
    return export_event(settings, "ITI-41", submit_objects_request, ANONYMOUS, url, errors,
                        outcome=status_outcome(status, failure),
                        description=failure or _errors_text(errors))


def _cx_list(segment: object, field: int) -> list[str]:
    """The CX repetitions of a field, as sent."""
    value = str(segment[field]) if field < len(segment) else ""  # type: ignore[arg-type, index]
    return [cx for cx in value.split("~") if cx]


def _ack_outcome(ack_code: str, failure: str) -> Outcome:
    if failure:
        return Outcome.MAJOR_FAILURE
    return Outcome.SUCCESS if ack_code == "AA" else Outcome.SERIOUS_FAILURE


def feed_events(settings: Settings, url: str, message: bytes, ack_code: str = "", *,
                failure: str = "", description: str = "") -> list[AuditEvent]:
    """ITI-8 on the Patient Identity Source: Patient Record C (A01/A04/A05) or U (A08 and
    others) for the PID-3 ids, D and U for a merge (A40); outcome from the ACK's MSA-1
    (``failure``: no ACK came). Source MSH-4|MSH-3, destination MSH-6|MSH-5 at ``url``."""
    parsed, header = decode(message)
    client = ClientSide(f"{header.sending_facility}|{header.sending_application}", url,
                        f"{header.receiving_facility}|{header.receiving_application}")
    outcome = _ack_outcome(ack_code, failure)
    why = failure or description
    pid = segments(parsed, "PID")
    patients = _cx_list(pid[0], 3) if pid else []
    if header.trigger_event == "A40":
        mrg = segments(parsed, "MRG")
        prior = _cx_list(mrg[0], 1) if mrg else []
        return merge_events(settings, "ITI-8", patients[0] if patients else "",
                            prior[0] if prior else "", outcome, control_id=header.control_id,
                            description=why, client=client)
    return [feed_event(settings, "ITI-8", _FEED_ACTIONS.get(header.trigger_event, Action.UPDATE),
                       patients, outcome, control_id=header.control_id, description=why,
                       client=client)]


def pix_query_events(settings: Settings, url: str, message: bytes, ack_code: str = "", *,
                     failure: str = "", description: str = "") -> list[AuditEvent]:
    """ITI-9 on the PIX Consumer: Query E, the patient of QPD-3 and the QPD segment as the
    query (its QPD-2 query tag the object id), as the PIX Manager records it."""
    parsed, header = decode(message)
    client = ClientSide(f"{header.sending_facility}|{header.sending_application}", url,
                        f"{header.receiving_facility}|{header.receiving_application}")
    qpd = segments(parsed, "QPD")
    patient = str(qpd[0][3]) if qpd and len(qpd[0]) > 3 else ""
    tag = str(qpd[0][2]) if qpd and len(qpd[0]) > 2 else ""
    return [pix_query_event(settings, "ITI-9", patient, tag,
                            str(qpd[0]).encode("utf-8") if qpd else b"",
                            _ack_outcome(ack_code, failure), control_id=header.control_id,
                            description=failure or description, client=client)]
