"""The AuditMessage XML, element by element, for the event shapes the transactions produce."""

from __future__ import annotations

import base64

from lxml import etree

from xds.audit.events import (
    Action, ActiveParticipant, AuditEvent, CodedValue, EventId, Outcome, ParticipantObject, Role,
)
from xds.audit.message import audit_message, event_datetime

ITI18 = CodedValue("ITI-18", "IHE Transactions", "Registry Stored Query")
ITI41 = CodedValue("ITI-41", "IHE Transactions", "Provide and Register Document Set-b")
ITI43 = CodedValue("ITI-43", "IHE Transactions", "Retrieve Document Set")
RAD69 = CodedValue("RAD-69", "IHE Transactions", "Retrieve Imaging Document Set")
PATIENT_NUMBER = CodedValue("2", "RFC-3881", "Patient Number")
SUBMISSION_SET = CodedValue("urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd", "IHE XDS Metadata",
                            "submission set classificationNode")
PID = "8743^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
SOURCE = ActiveParticipant("http://10.1.2.3/consumer", requestor=True,
                           roles=(Role.SOURCE.value,), network_id="10.1.2.3",
                           alternative_user_id="4711")
DESTINATION = ActiveParticipant("http://registry.example.org/xds/registry", requestor=False,
                                roles=(Role.DESTINATION.value,), network_id="registry.example.org")
T = 1_764_766_068.5


def parse(event: AuditEvent, site: str = "") -> etree._Element:
    xml = audit_message(event, "xds-test", site)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?><AuditMessage>')
    return etree.fromstring(xml.encode("utf-8"))


def coded(element: etree._Element) -> tuple[str | None, str | None, str | None]:
    return element.get("csd-code"), element.get("codeSystemName"), element.get("originalText")


def tags(element: etree._Element) -> list[str]:
    return [str(child.tag) for child in element]


def test_query_with_base64_request() -> None:
    request = b"<query:AdhocQueryRequest>\xc3\xa9</query:AdhocQueryRequest>"
    human = ActiveParticipant("alice<alice@idp.example>", requestor=True, user_name="Alice Doe",
                              roles=(CodedValue("46255001", "SNOMED_CT", "Pharmacist"),))
    event = AuditEvent(
        EventId.QUERY, Action.EXECUTE, Outcome.SUCCESS, ITI18,
        participants=(SOURCE, human, DESTINATION),
        objects=(ParticipantObject(PID, 1, 1, PATIENT_NUMBER),
                 ParticipantObject("urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d", 2, 24,
                                   ITI18, query=request,
                                   details=(("QueryEncoding", "UTF-8"),
                                            ("urn:ihe:iti:xca:2010:homeCommunityId",
                                             "urn:oid:1.2.3")))),
        purpose_of_use=(CodedValue("TREATMENT", "1.0.14265.1", "Treatment"),), time=T)
    root = parse(event)
    assert tags(root) == ["EventIdentification", "ActiveParticipant", "ActiveParticipant",
                          "ActiveParticipant", "AuditSourceIdentification",
                          "ParticipantObjectIdentification", "ParticipantObjectIdentification"]
    ident = root[0]
    assert dict(ident.attrib.items()) == {"EventActionCode": "E", "EventDateTime": "2025-12-03T12:47:48.500Z",
                                  "EventOutcomeIndicator": "0"}
    assert tags(ident) == ["EventID", "EventTypeCode", "PurposeOfUse"]
    assert coded(ident[0]) == ("110112", "DCM", "Query")
    assert coded(ident[1]) == ("ITI-18", "IHE Transactions", "Registry Stored Query")
    assert coded(ident[2]) == ("TREATMENT", "1.0.14265.1", "Treatment")
    source, person, destination = list(root)[1:4]
    assert list(source.attrib.items()) == [
        ("UserID", "http://10.1.2.3/consumer"), ("AlternativeUserID", "4711"),
        ("UserIsRequestor", "true"), ("NetworkAccessPointID", "10.1.2.3"),
        ("NetworkAccessPointTypeCode", "2")]
    assert [coded(r) for r in source] == [("110153", "DCM", "Source Role ID")]
    assert person.get("UserName") == "Alice Doe" and person.get("NetworkAccessPointID") is None
    assert [coded(r) for r in person] == [("46255001", "SNOMED_CT", "Pharmacist")]
    assert destination.get("UserIsRequestor") == "false"
    assert destination.get("NetworkAccessPointTypeCode") == "1"
    patient, query = list(root)[5:]
    assert list(patient.attrib.items()) == [("ParticipantObjectID", PID),
                                            ("ParticipantObjectTypeCode", "1"),
                                            ("ParticipantObjectTypeCodeRole", "1")]
    assert tags(patient) == ["ParticipantObjectIDTypeCode"]
    assert coded(patient[0]) == ("2", "RFC-3881", "Patient Number")
    assert query.get("ParticipantObjectTypeCode") == "2"
    assert query.get("ParticipantObjectTypeCodeRole") == "24"
    assert tags(query) == ["ParticipantObjectIDTypeCode", "ParticipantObjectQuery",
                           "ParticipantObjectDetail", "ParticipantObjectDetail"]
    assert coded(query[0]) == ("ITI-18", "IHE Transactions", "Registry Stored Query")
    assert base64.b64decode(query[1].text or "") == request
    assert [(d.get("type"), base64.b64decode(d.get("value") or "")) for d in list(query)[2:]] == [
        ("QueryEncoding", b"UTF-8"), ("urn:ihe:iti:xca:2010:homeCommunityId", b"urn:oid:1.2.3")]


def test_import_with_patient_and_submission_set() -> None:
    event = AuditEvent(
        EventId.IMPORT, Action.CREATE, Outcome.SUCCESS, ITI41, participants=(SOURCE, DESTINATION),
        objects=(ParticipantObject(PID, 1, 1, PATIENT_NUMBER),
                 ParticipantObject("1.3.6.1.4.1.21367.2017.2.1.99", 2, 20, SUBMISSION_SET)),
        time=T)
    root = parse(event, site="Hospital A")
    assert root[0].get("EventActionCode") == "C"
    assert coded(root[0][0]) == ("110107", "DCM", "Import")
    source = root.find("AuditSourceIdentification")
    assert source is not None
    assert list(source.attrib.items()) == [("AuditEnterpriseSiteID", "Hospital A"),
                                           ("AuditSourceID", "xds-test")]
    assert [coded(c) for c in source] == [
        ("4", "DCM", "Application Server Process Tier in a Multi-tier System")]
    submission = root.findall("ParticipantObjectIdentification")[1]
    assert submission.get("ParticipantObjectTypeCodeRole") == "20"
    assert coded(submission[0]) == ("urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd",
                                    "IHE XDS Metadata", "submission set classificationNode")


def test_document_export_failure() -> None:
    document = ParticipantObject("1.2.3.4.5.6", 2, 3, CodedValue("9", "RFC-3881", "Report Number"),
                                 name="Discharge summary",
                                 details=(("Repository Unique Id", "1.3.6.1.4.1.21367.13.50.1"),
                                          ("ihe:homeCommunityID", "urn:oid:1.2.3")))
    event = AuditEvent(EventId.EXPORT, Action.READ, Outcome.SERIOUS_FAILURE, ITI43,
                       participants=(DESTINATION,), objects=(document,),
                       description="XDSDocumentUniqueIdError: 1.2.3.4.5.6", time=T)
    root = parse(event)
    ident = root[0]
    assert ident.get("EventOutcomeIndicator") == "8" and ident.get("EventActionCode") == "R"
    assert tags(ident) == ["EventID", "EventTypeCode", "EventOutcomeDescription"]
    assert ident[2].text == "XDSDocumentUniqueIdError: 1.2.3.4.5.6"
    obj = root[-1]
    assert tags(obj) == ["ParticipantObjectIDTypeCode", "ParticipantObjectName",
                         "ParticipantObjectDetail", "ParticipantObjectDetail"]
    assert obj[1].text == document.name
    assert base64.b64decode(obj[2].get("value") or "") == b"1.3.6.1.4.1.21367.13.50.1"


def test_study_transferred() -> None:
    study = ParticipantObject(
        "1.2.840.113619.2.55.3.1", 2, 3, CodedValue("110180", "DCM", "Study Instance UID"),
        details=(("ihe:DocumentUniqueId", "1.2.840.1.1"), ("Series Instance Unique Id", "1.2.9")))
    event = AuditEvent(EventId.INSTANCES_TRANSFERRED, Action.READ, Outcome.MINOR_FAILURE, RAD69,
                       participants=(SOURCE, DESTINATION),
                       objects=(study, ParticipantObject(PID, 1, 1, PATIENT_NUMBER)), time=T)
    root = parse(event)
    assert coded(root[0][0]) == ("110104", "DCM", "DICOM Instances Transferred")
    assert root[0].get("EventOutcomeIndicator") == "4"
    assert coded(root[-2][0]) == ("110180", "DCM", "Study Instance UID")
    assert event.patient == PID


def test_no_event_type_and_name_or_query_not_both() -> None:
    both = ParticipantObject("q", 2, 24, ITI18, name="a name", query=b"QPD|")
    root = parse(AuditEvent(EventId.APPLICATION_ACTIVITY, Action.EXECUTE, Outcome.SUCCESS, None,
                            participants=(SOURCE,), objects=(both,), time=T))
    assert tags(root[0]) == ["EventID"]
    assert tags(root[-1]) == ["ParticipantObjectIDTypeCode", "ParticipantObjectQuery"]


def test_event_datetime() -> None:
    assert event_datetime(0) == "1970-01-01T00:00:00.000Z"
    assert event_datetime(T + 0.0004) == "2025-12-03T12:47:48.500Z"


def test_characters_xml_cannot_carry_are_dropped() -> None:
    person = ActiveParticipant("bob\x00\x1b", requestor=True, user_name="Bob\x07 Smith")
    root = parse(AuditEvent(EventId.PATIENT_RECORD, Action.UPDATE, Outcome.SUCCESS, None,
                            participants=(person,), description="bad\x0bfield", time=T))
    assert root[1].get("UserID") == "bob" and root[1].get("UserName") == "Bob Smith"
    assert root[0].findtext("EventOutcomeDescription") == "badfield"
