"""Reading the audit outbox in the transaction audit tests: the rows a test created, their
AuditMessage parsed, and checks of the participants and objects every transaction shares."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from lxml import etree
from sqlalchemy import Engine, func, select

from tests import soapclient
from xds.store.tables import audit_outbox

__all__ = ["ANONYMOUS", "SOURCE", "DESTINATION", "ParsedAudit", "Record", "details", "query_of", "last_id",
           "records", "one", "assert_client_source", "assert_us", "assert_patient"]

ANONYMOUS = soapclient.ANONYMOUS
SOURCE, DESTINATION = "110153", "110152"


class ParsedAudit:
    """Lookups in one parsed AuditMessage, ``root``."""

    root: etree._Element

    def participant(self, role: str) -> etree._Element:
        found = [p for p in self.root.iterfind("ActiveParticipant")
                 if p.find(f"RoleIDCode[@csd-code='{role}']") is not None]
        assert len(found) == 1, etree.tostring(self.root)
        return found[0]

    def objects(self, type_code: str, role: str) -> list[etree._Element]:
        return [o for o in self.root.iterfind("ParticipantObjectIdentification")
                if o.get("ParticipantObjectTypeCode") == type_code
                and o.get("ParticipantObjectTypeCodeRole") == role]


@dataclasses.dataclass
class Record(ParsedAudit):
    """One outbox row with its AuditMessage parsed."""

    row: Any
    root: etree._Element

    @property
    def ident(self) -> etree._Element:
        found = self.root.find("EventIdentification")
        assert found is not None
        return found

    def coded(self, tag: str) -> tuple[str | None, str | None, str | None]:
        el = self.ident.find(tag)
        assert el is not None, tag
        return el.get("csd-code"), el.get("codeSystemName"), el.get("originalText")

    def assert_event(self, event_id: str, action: str, outcome: int, code: str,
                     display: str) -> None:
        assert self.coded("EventID")[0] == event_id
        assert self.ident.get("EventActionCode") == action
        assert self.ident.get("EventOutcomeIndicator") == str(outcome)
        assert self.coded("EventTypeCode") == (code, "IHE Transactions", display)
        assert (self.row.event_id, self.row.event_type, self.row.outcome) == \
            (event_id, code, outcome)


def details(obj: etree._Element) -> dict[str, str]:
    return {d.get("type") or "": base64.b64decode(d.get("value") or "").decode()
            for d in obj.iterfind("ParticipantObjectDetail")}


def query_of(obj: etree._Element) -> bytes:
    return base64.b64decode(obj.findtext("ParticipantObjectQuery") or "")


def last_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(audit_outbox.c.id), 0))).scalar_one())


def records(engine: Engine, since: int, event_type: str | None = None,
            patient: str | None = None) -> list[Record]:
    query = select(audit_outbox).where(audit_outbox.c.id > since).order_by(audit_outbox.c.id)
    if event_type is not None:
        query = query.where(audit_outbox.c.event_type == event_type)
    if patient is not None:
        query = query.where(audit_outbox.c.patient == patient)
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    return [Record(r, etree.fromstring(r.message.encode("utf-8"))) for r in rows]


def one(found: list[Record]) -> Record:
    assert len(found) == 1, [(r.row.event_type, r.row.outcome) for r in found]
    return found[0]


def assert_client_source(record: Record, *, requestor: str = "true",
                         role: str = SOURCE) -> None:
    client = record.participant(role)
    assert client.get("UserID") == ANONYMOUS
    assert client.get("UserIsRequestor") == requestor
    assert client.get("NetworkAccessPointID") == "127.0.0.1"
    assert client.get("NetworkAccessPointTypeCode") == "2"


def assert_us(record: Record, path: str, *, role: str = DESTINATION) -> None:
    us = record.participant(role)
    assert (us.get("UserID") or "").endswith(path), us.get("UserID")
    assert us.get("UserIsRequestor") == "false"
    assert us.get("NetworkAccessPointID") == "127.0.0.1"
    assert us.get("AlternativeUserID")


def assert_patient(record: Record, patient: str) -> None:
    patients = record.objects("1", "1")
    assert [p.get("ParticipantObjectID") for p in patients] == [patient]
    el = patients[0].find("ParticipantObjectIDTypeCode")
    assert el is not None and (el.get("csd-code"), el.get("codeSystemName")) == ("2", "RFC-3881")
    assert record.row.patient == patient
