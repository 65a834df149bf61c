"""ITI-45 PIXV3 Query over SOAP: found in all or in the requested domains, not found, and the
AE answers for an unknown id, source domain or target domain."""

from __future__ import annotations

import pytest
from lxml import etree

from tests import soapclient
from xds.config import Settings
from xds.mpi.index import PatientIndex
from xds.mpi.model import PatientIdentifier

from .conftest import (
    ADD,
    DOMAIN_A,
    DOMAIN_B,
    MERGE,
    PARAMETER_LIST,
    QUERY,
    Answer,
    PixClient,
    ack_code,
    assert_valid,
    details,
    feed_message,
    h,
    ids_in,
    new_value,
    query_message,
)

PATIENT = "controlActProcess/subject/registrationEvent/subject1/patient"


def response_code(answer: Answer) -> str:
    code = answer.raw.find(h("controlActProcess/queryAck/queryResponseCode"))
    assert code is not None
    assert answer.typed.controlActProcess.queryAck.queryResponseCode.code == code.get("code")
    return str(code.get("code"))


def returned_ids(message: etree._Element) -> set[tuple[str, str]]:
    return ids_in(message, PATIENT + "/id") | ids_in(message, PATIENT + "/patientPerson/asOtherIDs/id")


@pytest.fixture
def linked(pix: PixClient, pix_index: PatientIndex, settings: Settings
           ) -> dict[str, tuple[str, str]]:
    """A patient fed with ids in DOMAIN_A and DOMAIN_B (and an assigned affinity-domain id)."""
    a, b = (DOMAIN_A, new_value()), (DOMAIN_B, new_value())
    assert ack_code(pix.send(feed_message(ADD, [a], other_ids=[b])).raw) == "AA"
    person = pix_index.person(PatientIdentifier(*a))
    assert person is not None
    [affinity] = person.in_domain(settings.affinity_domain)
    return {"a": a, "b": b, "affinity": (affinity.domain, affinity.value)}


def test_all_domains_returns_every_linked_id_but_the_queried(
        pix: PixClient, linked: dict[str, tuple[str, str]], settings: Settings) -> None:
    request = query_message(*linked["a"])

    answer = pix.send(request)

    assert ack_code(answer.raw) == "AA" and response_code(answer) == "OK"
    assert returned_ids(answer.raw) == {linked["b"], linked["affinity"]}
    # the affinity-domain id is the patient's id, the others are asOtherIDs
    assert ids_in(answer.raw, PATIENT + "/id") == {linked["affinity"]}
    scoping = answer.raw.find(h(PATIENT + "/patientPerson/asOtherIDs/scopingOrganization/id"))
    assert scoping is not None and scoping.get("root") == DOMAIN_B
    echoed = answer.raw.find(h("controlActProcess/queryByParameter"))
    sent = request.find(h("controlActProcess/queryByParameter"))
    assert echoed is not None and sent is not None
    assert etree.tostring(echoed) == etree.tostring(sent)
    query_id = answer.raw.find(h("controlActProcess/queryAck/queryId"))
    assert query_id is not None and query_id.attrib == sent.find(h("queryId")).attrib  # type: ignore[union-attr]
    target = answer.raw.find(h("acknowledgement/targetMessage/id"))
    assert target is not None and target.attrib == request.find(h("id")).attrib  # type: ignore[union-attr]


def test_requested_domain_returns_only_its_ids(pix: PixClient,
                                               linked: dict[str, tuple[str, str]]) -> None:
    answer = pix.send(query_message(*linked["affinity"], [DOMAIN_B]))

    assert response_code(answer) == "OK"
    assert returned_ids(answer.raw) == {linked["b"]}


def test_two_requested_domains(pix: PixClient, linked: dict[str, tuple[str, str]],
                               settings: Settings) -> None:
    answer = pix.send(query_message(*linked["b"], [settings.affinity_domain, DOMAIN_A]))

    assert returned_ids(answer.raw) == {linked["a"], linked["affinity"]}


def test_no_id_in_the_requested_domain_is_nf(pix: PixClient) -> None:
    pix.send(feed_message(ADD, [(DOMAIN_B, new_value())]))  # DOMAIN_B is known to the index
    a = (DOMAIN_A, new_value())
    pix.send(feed_message(ADD, [a]))

    answer = pix.send(query_message(*a, [DOMAIN_B]))

    assert ack_code(answer.raw) == "AA" and response_code(answer) == "NF"
    assert answer.raw.find(h("controlActProcess/subject")) is None
    assert details(answer.raw) == []


def test_unknown_id_is_ae_204_at_patient_identifier(pix: PixClient) -> None:
    pix.send(feed_message(ADD, [(DOMAIN_A, new_value())]))

    answer = pix.send(query_message(DOMAIN_A, new_value("NOBODY")))

    assert ack_code(answer.raw) == "AE" and response_code(answer) == "AE"
    assert details(answer.raw) == [{
        "typeCode": "E", "code": "204", "codeSystem": "2.16.840.1.113883.12.357",
        "text": details(answer.raw)[0]["text"],
        "location": PARAMETER_LIST + "/patientIdentifier/value"}]
    assert answer.raw.find(h("controlActProcess/subject")) is None


def test_merged_away_id_is_ae_204(pix: PixClient) -> None:
    old, new = (DOMAIN_A, new_value("OLD")), (DOMAIN_A, new_value("NEW"))
    pix.send(feed_message(ADD, [old], other_ids=[(DOMAIN_B, new_value())]))
    pix.send(feed_message(ADD, [new]))
    assert response_code(pix.send(query_message(*old))) == "OK"
    assert ack_code(pix.send(feed_message(MERGE, [new], subsumed=old)).raw) == "AA"

    answer = pix.send(query_message(*old))

    assert response_code(answer) == "AE"
    assert [(d["code"], d["location"]) for d in details(answer.raw)] == [
        ("204", PARAMETER_LIST + "/patientIdentifier/value")]


def test_unknown_source_domain_is_ae_204_at_patient_identifier(
        restricted_pix: PixClient) -> None:
    answer = restricted_pix.send(query_message(DOMAIN_B, new_value()))

    assert ack_code(answer.raw) == "AE" and response_code(answer) == "AE"
    [detail] = details(answer.raw)
    assert (detail["code"], detail["codeSystem"]) == ("204", "2.16.840.1.113883.12.357")
    assert detail["location"] == PARAMETER_LIST + "/patientIdentifier/value"
    assert DOMAIN_B in (detail["text"] or "")


def test_unknown_target_domain_is_ae_204_at_its_data_source(
        pix: PixClient, linked: dict[str, tuple[str, str]]) -> None:
    unknown = "1.2.999." + str(int(new_value("")[:8], 16))

    answer = pix.send(query_message(*linked["a"], [DOMAIN_B, unknown]))

    assert ack_code(answer.raw) == "AE" and response_code(answer) == "AE"
    [detail] = details(answer.raw)
    assert (detail["code"], detail["codeSystem"]) == ("204", "2.16.840.1.113883.12.357")
    assert detail["location"] == PARAMETER_LIST + "/dataSource[2]/value"
    assert answer.raw.find(h("controlActProcess/subject")) is None


def test_schema_invalid_query_is_ae_qe(pix_url: str) -> None:
    request = query_message(DOMAIN_A, new_value())
    query = request.find(h("controlActProcess/queryByParameter"))
    assert query is not None
    status = query.find(h("statusCode"))
    assert status is not None
    query.remove(status)

    response, body = soapclient.post(pix_url, "urn:hl7-org:v3:" + QUERY, request)

    assert response.status_code == 200
    assert etree.QName(body).localname == "PRPA_IN201310UV02"
    assert_valid(body)
    assert ack_code(body) == "AE"
    code = body.find(h("controlActProcess/queryAck/queryResponseCode"))
    assert code is not None and code.get("code") == "QE"
    first = details(body)[0]
    assert (first["code"], first["location"]) == (
        "SYN", "/PRPA_IN201309UV02/controlActProcess/queryByParameter/responsePriorityCode")
