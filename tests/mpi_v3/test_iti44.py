"""ITI-44 Patient Identity Feed HL7 V3 over SOAP: add, revise, merge and their acknowledgements."""

from __future__ import annotations

from lxml import etree
from sqlalchemy import Engine

from tests import soapclient
from xds.config import Settings
from xds.mpi.index import PatientIndex
from xds.mpi.model import PatientIdentifier
from xds.mpi.service import pix_operations
from xds.store.patients import is_known

from .conftest import (
    ADD,
    DOMAIN_A,
    DOMAIN_B,
    MERGE,
    REVISE,
    SOURCE_DEVICE,
    PixClient,
    ack_code,
    assert_valid,
    details,
    feed_message,
    h,
    new_value,
    stored,
)


def test_add_answers_aa_and_registers_affinity_id(pix: PixClient, pix_index: PatientIndex,
                                                  engine: Engine, settings: Settings) -> None:
    value = new_value()
    request = feed_message(ADD, [(DOMAIN_A, value)])
    answer = pix.send(request)

    assert answer.typed.acknowledgement[0].typeCode.code == "AA"
    assert ack_code(answer.raw) == "AA" and details(answer.raw) == []
    target = answer.raw.find(h("acknowledgement/targetMessage/id"))
    assert target is not None
    assert target.attrib == request.find(h("id")).attrib  # type: ignore[union-attr]
    assert answer.raw.find(h("receiver/device/id")).get("root") == SOURCE_DEVICE  # type: ignore[union-attr]
    person = pix_index.person(PatientIdentifier(DOMAIN_A, value))
    assert person is not None
    affinity = person.in_domain(settings.affinity_domain)
    assert len(affinity) == 1  # the group had none, so the index assigned one
    with engine.connect() as conn:
        assert is_known(conn, affinity[0].cx)


def test_add_with_affinity_id_links_both(pix: PixClient, pix_index: PatientIndex,
                                         engine: Engine, settings: Settings) -> None:
    local, affinity = new_value(), new_value("XAD")
    answer = pix.send(feed_message(ADD, [(settings.affinity_domain, affinity), (DOMAIN_A, local)]))

    assert ack_code(answer.raw) == "AA"
    person = pix_index.person(PatientIdentifier(DOMAIN_A, local))
    assert person is not None
    assert person.identifiers == sorted([PatientIdentifier(settings.affinity_domain, affinity),
                                         PatientIdentifier(DOMAIN_A, local)])
    with engine.connect() as conn:
        assert is_known(conn, f"{affinity}^^^&{settings.affinity_domain}&ISO")


def test_add_links_as_other_ids_and_keeps_demographics(pix: PixClient,
                                                       pix_index: PatientIndex) -> None:
    a, b = new_value(), new_value()
    answer = pix.send(feed_message(ADD, [(DOMAIN_A, a)], other_ids=[(DOMAIN_B, b)],
                                   family="MOORE", given="CHIP", sex="M", birth="19650704"))

    assert ack_code(answer.raw) == "AA"
    person = pix_index.person(PatientIdentifier(DOMAIN_B, b))
    assert person is not None
    assert PatientIdentifier(DOMAIN_A, a) in person.identifiers
    demo = person.demographics
    assert (demo.family, demo.given, demo.sex, demo.birth_date) == ("MOORE", "CHIP", "M", "19650704")
    assert demo.address == "1 Main St^^Springfield^^12345^USA"
    assert demo.phone == "+1-555-0100"


def test_revise_updates_demographics(pix: PixClient, pix_index: PatientIndex) -> None:
    value = new_value()
    assert ack_code(pix.send(feed_message(ADD, [(DOMAIN_A, value)], family="DOE")).raw) == "AA"

    answer = pix.send(feed_message(REVISE, [(DOMAIN_A, value)], family="SMITH",
                                   street="2 Elm St", city="Shelbyville"))

    assert answer.typed.acknowledgement[0].typeCode.code == "AA"
    person = pix_index.person(PatientIdentifier(DOMAIN_A, value))
    assert person is not None
    assert person.demographics.family == "SMITH"
    assert person.demographics.address == "2 Elm St^^Shelbyville^^12345^USA"


def test_revise_links_a_new_other_id(pix: PixClient, pix_index: PatientIndex) -> None:
    a, b = new_value(), new_value()
    pix.send(feed_message(ADD, [(DOMAIN_A, a)]))

    assert ack_code(pix.send(feed_message(REVISE, [(DOMAIN_A, a)], other_ids=[(DOMAIN_B, b)])).raw
                    ) == "AA"

    person = pix_index.person(PatientIdentifier(DOMAIN_A, a))
    assert person is not None and PatientIdentifier(DOMAIN_B, b) in person.identifiers


def test_merge_moves_links_and_retires_subsumed(pix: PixClient, pix_index: PatientIndex,
                                                engine: Engine, settings: Settings) -> None:
    old, new, other = new_value("OLD"), new_value("NEW"), new_value()
    pix.send(feed_message(ADD, [(DOMAIN_A, old)], other_ids=[(DOMAIN_B, other)]))
    pix.send(feed_message(ADD, [(DOMAIN_A, new)]))
    old_person = pix_index.person(PatientIdentifier(DOMAIN_A, old))
    assert old_person is not None
    old_affinity = old_person.in_domain(settings.affinity_domain)[0]

    answer = pix.send(feed_message(MERGE, [(DOMAIN_A, new)], subsumed=(DOMAIN_A, old)))

    assert answer.typed.acknowledgement[0].typeCode.code == "AA"
    assert pix_index.person(PatientIdentifier(DOMAIN_A, old)) is None
    survivor = pix_index.person(PatientIdentifier(DOMAIN_A, new))
    assert survivor is not None
    assert PatientIdentifier(DOMAIN_B, other) in survivor.identifiers
    assert PatientIdentifier(DOMAIN_A, old) not in survivor.identifiers
    with engine.connect() as conn:
        assert not is_known(conn, old_affinity.cx)
        assert is_known(conn, survivor.in_domain(settings.affinity_domain)[0].cx)
    # the subsumed id cannot come back through a feed
    again = pix.send(feed_message(REVISE, [(DOMAIN_A, old)]))
    assert [d["code"] for d in details(again.raw)] == ["204"]


def test_merge_into_itself_is_ae_205(pix: PixClient) -> None:
    value = new_value()
    pix.send(feed_message(ADD, [(DOMAIN_A, value)]))

    answer = pix.send(feed_message(MERGE, [(DOMAIN_A, value)], subsumed=(DOMAIN_A, value)))

    assert answer.typed.acknowledgement[0].typeCode.code == "AE"
    [detail] = details(answer.raw)
    assert detail["typeCode"] == "E"
    assert (detail["code"], detail["codeSystem"]) == ("205", "2.16.840.1.113883.12.357")
    assert detail["location"] == ("/PRPA_IN201304UV02/controlActProcess/subject/registrationEvent/"
                                  "replacementOf/priorRegistration/subject1/priorRegisteredRole/id")


def test_merge_of_unknown_subsumed_is_ae_204(pix: PixClient) -> None:
    new = new_value()
    pix.send(feed_message(ADD, [(DOMAIN_A, new)]))

    answer = pix.send(feed_message(MERGE, [(DOMAIN_A, new)], subsumed=(DOMAIN_A, new_value())))

    assert ack_code(answer.raw) == "AE"
    assert [d["code"] for d in details(answer.raw)] == ["204"]


def test_unknown_domain_is_ae_204_at_the_id(restricted_pix: PixClient, engine: Engine) -> None:
    a, b = new_value(), new_value()

    answer = restricted_pix.send(feed_message(ADD, [(DOMAIN_A, a), (DOMAIN_B, b)]))

    assert answer.typed.acknowledgement[0].typeCode.code == "AE"
    [detail] = details(answer.raw)
    assert (detail["code"], detail["codeSystem"]) == ("204", "2.16.840.1.113883.12.357")
    assert detail["location"] == ("/PRPA_IN201301UV02/controlActProcess/subject/registrationEvent/"
                                  "subject1/patient/id[2]")
    assert DOMAIN_B in (detail["text"] or "")
    assert not stored(engine, DOMAIN_A, a) and not stored(engine, DOMAIN_B, b)


# -- bad input (raw HTTP, independent of zeep) ------------------------------------------------


def test_schema_invalid_add_is_ae_syn_and_stores_nothing(pix_url: str, engine: Engine) -> None:
    value = new_value()
    request = feed_message(ADD, [(DOMAIN_A, value)])
    patient = request.find(h("controlActProcess/subject/registrationEvent/subject1/patient"))
    assert patient is not None
    status = patient.find(h("statusCode"))
    assert status is not None
    patient.remove(status)  # required by PRPA_MT201301UV02

    response, body = soapclient.post(pix_url, "urn:hl7-org:v3:" + ADD, request)

    assert response.status_code == 200
    assert soapclient.header(soapclient.parse_envelope(response.content), "Action") == \
        "urn:hl7-org:v3:MCCI_IN000002UV01"
    assert_valid(body)
    assert ack_code(body) == "AE"
    first = details(body)[0]
    assert (first["code"], first["codeSystem"]) == ("SYN", "2.16.840.1.113883.5.1100")
    assert first["location"] == ("/PRPA_IN201301UV02/controlActProcess/subject/registrationEvent/"
                                 "subject1/patient/patientPerson")
    assert "statusCode" in (first["text"] or "")
    assert not stored(engine, DOMAIN_A, value)


def test_ae_for_a_garbled_wrapper_is_still_schema_valid(pix_url: str) -> None:
    request = feed_message(ADD, [(DOMAIN_A, new_value())])
    request.find(h("id")).set("root", "not a uid!")  # type: ignore[union-attr]
    request.find(h("sender/device/id")).set("root", "1..2")  # type: ignore[union-attr]

    _, body = soapclient.post(pix_url, "urn:hl7-org:v3:" + ADD, request)

    assert_valid(body)
    assert ack_code(body) == "AE"
    assert body.find(h("acknowledgement/targetMessage/id")).get("nullFlavor") == "UNK"  # type: ignore[union-attr]


def test_message_of_another_interaction_is_ae(pix_url: str, engine: Engine) -> None:
    value = new_value()
    response, body = soapclient.post(pix_url, "urn:hl7-org:v3:" + MERGE,
                                     feed_message(ADD, [(DOMAIN_A, value)]))

    assert_valid(body)
    assert ack_code(body) == "AE"
    assert details(body)[0]["code"] == "SYN"
    assert not stored(engine, DOMAIN_A, value)


def test_id_without_extension_is_ae_101(pix_url: str) -> None:
    request = feed_message(ADD, [(DOMAIN_A, new_value())], other_ids=[(DOMAIN_B, "")])

    _, body = soapclient.post(pix_url, "urn:hl7-org:v3:" + ADD, request)

    assert_valid(body)
    [detail] = details(body)
    assert detail["code"] == "101"
    assert detail["location"] == ("/PRPA_IN201301UV02/controlActProcess/subject/registrationEvent/"
                                  "subject1/patient/patientPerson/asOtherIDs/id")


def test_not_xml_is_a_soap_fault(pix_url: str) -> None:
    response = soapclient.post_raw(pix_url, b"<Envelope><unclosed>")

    assert response.status_code == 400
    assert soapclient.body_of(soapclient.parse_envelope(response.content)).tag == \
        f"{{{soapclient.NS_SOAP}}}Fault"


def test_handler_crash_is_an_ae_ack_without_internals(pix_index: PatientIndex,
                                                      settings: Settings) -> None:
    operations = pix_operations(pix_index, settings)
    feed = operations["urn:hl7-org:v3:" + ADD]
    query = operations["urn:hl7-org:v3:PRPA_IN201309UV02"]

    ack = feed.on_error(RuntimeError("secret-internal-detail"))
    answer = query.on_error(RuntimeError("secret-internal-detail"))

    for message in (ack, answer):
        assert_valid(message)
        assert ack_code(message) == "AE"
        assert details(message)[0]["code"] == "INTERR"
        assert b"secret" not in etree.tostring(message)
    assert feed.response_action == "urn:hl7-org:v3:MCCI_IN000002UV01"
    assert query.response_action == "urn:hl7-org:v3:PRPA_IN201310UV02"
