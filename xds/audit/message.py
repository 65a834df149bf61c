"""The DICOM audit message (PS3.15 A.5.1 ``AuditMessage``) of an ``AuditEvent``, as XML text.

Elements and attributes follow the order of the DICOM schema (audit-message.rnc), the model
IPF's DICOM serializer and dcm4che write: EventIdentification, ActiveParticipant+,
AuditSourceIdentification, ParticipantObjectIdentification*.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re

from lxml import etree

from xds.audit.events import ActiveParticipant, AuditEvent, CodedValue, ParticipantObject

__all__ = ["audit_message", "event_datetime", "APPLICATION_SERVER"]

#: AuditSourceTypeCode 4: application server process tier in a multi-tier system.
APPLICATION_SERVER = CodedValue("4", "DCM", "Application Server Process Tier in a Multi-tier System")
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
#: Characters XML 1.0 cannot carry (control characters, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    """``value`` without the characters XML cannot carry (an HL7 field may hold some)."""
    return _NOT_XML.sub("", value)


def _set(element: etree._Element, name: str, value: str) -> None:
    element.set(name, _text(value))


def event_datetime(seconds: float) -> str:
    """xsd:dateTime in UTC with milliseconds: ``2026-12-03T13:07:48.123Z``."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _coded(parent: etree._Element, tag: str, value: CodedValue) -> etree._Element:
    element = etree.SubElement(parent, tag)
    _set(element, "csd-code", value.code)
    # The schema requires codeSystemName and originalText (DICOM's Code Meaning).
    _set(element, "codeSystemName", value.system)
    _set(element, "originalText", value.display or value.code)
    return element


def _access_point_type(network_id: str) -> str:
    """NetworkAccessPointTypeCode: 2 for an IP address, 1 for a machine name."""
    host = network_id.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "1"
    return "2"


def _participant(root: etree._Element, participant: ActiveParticipant) -> None:
    element = etree.SubElement(root, "ActiveParticipant")
    _set(element, "UserID", participant.user_id)
    if participant.alternative_user_id:
        _set(element, "AlternativeUserID", participant.alternative_user_id)
    if participant.user_name:
        _set(element, "UserName", participant.user_name)
    _set(element, "UserIsRequestor", "true" if participant.requestor else "false")
    if participant.network_id:
        _set(element, "NetworkAccessPointID", participant.network_id)
        _set(element, "NetworkAccessPointTypeCode", _access_point_type(participant.network_id))
    for role in participant.roles:
        _coded(element, "RoleIDCode", role)


def _object(root: etree._Element, obj: ParticipantObject) -> None:
    element = etree.SubElement(root, "ParticipantObjectIdentification")
    _set(element, "ParticipantObjectID", obj.object_id)
    _set(element, "ParticipantObjectTypeCode", str(obj.type_code))
    _set(element, "ParticipantObjectTypeCodeRole", str(obj.role))
    _coded(element, "ParticipantObjectIDTypeCode", obj.id_type)
    # The schema offers ParticipantObjectName or ParticipantObjectQuery, not both.
    if obj.query is not None:
        etree.SubElement(element, "ParticipantObjectQuery").text = \
            base64.b64encode(obj.query).decode("ascii")
    elif obj.name:
        etree.SubElement(element, "ParticipantObjectName").text = _text(obj.name)
    for kind, value in obj.details:
        detail = etree.SubElement(element, "ParticipantObjectDetail")
        _set(detail, "type", kind)
        _set(detail, "value", base64.b64encode(value.encode("utf-8", "replace")).decode("ascii"))


def audit_message(event: AuditEvent, source_id: str, enterprise_site: str = "") -> str:
    """The AuditMessage XML of ``event`` (with its XML declaration) as ``source_id`` reports it."""
    root = etree.Element("AuditMessage")
    ident = etree.SubElement(root, "EventIdentification")
    _set(ident, "EventActionCode", event.action.value)
    _set(ident, "EventDateTime", event_datetime(event.time))
    _set(ident, "EventOutcomeIndicator", str(int(event.outcome)))
    _coded(ident, "EventID", event.event_id.value)
    if event.event_type is not None:
        _coded(ident, "EventTypeCode", event.event_type)
    if event.description:
        etree.SubElement(ident, "EventOutcomeDescription").text = _text(event.description)
    for purpose in event.purpose_of_use:
        _coded(ident, "PurposeOfUse", purpose)
    for participant in event.participants:
        _participant(root, participant)
    source = etree.SubElement(root, "AuditSourceIdentification")
    if enterprise_site:
        _set(source, "AuditEnterpriseSiteID", enterprise_site)
    _set(source, "AuditSourceID", source_id)
    _coded(source, "AuditSourceTypeCode", APPLICATION_SERVER)
    for obj in event.objects:
        _object(root, obj)
    return _DECLARATION + etree.tostring(root, encoding="unicode")
