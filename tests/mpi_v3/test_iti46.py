"""ITI-46 PIXV3 Update Notification: ``send_iti46`` against a small PIX Consumer on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.server import free_port, running_server
from xds.config import Settings
from xds.mpi.index import PatientIndex
from xds.mpi.iti46 import Iti46Error, send_iti46
from xds.mpi.model import Demographics, PatientIdentifier, Person

from .conftest import (
    DOMAIN_A,
    DOMAIN_B,
    HL7,
    INTERACTION_ROOT,
    SOAP,
    WSA,
    E,
    assert_valid,
    h,
    ids_in,
    new_value,
)

PATIENT = "controlActProcess/subject/registrationEvent/subject1/patient"
ACTION = "urn:hl7-org:v3:PRPA_IN201302UV02"
#: Every envelope the consumer received, in order.
received: list[etree._Element] = []


def _ack(code: str, target: etree._Element | None) -> etree._Element:
    """An MCCI_IN000002UV01 written from MCCI_MT000200UV01, independent of xds.hl7v3."""
    device = {"classCode": "DEV", "determinerCode": "INSTANCE"}
    target_id = ({str(k): str(v) for k, v in target.attrib.items()} if target is not None
                 else {"nullFlavor": "UNK"})
    ack = E("acknowledgement", None, E("typeCode", {"code": code}),
            E("targetMessage", None, E("id", target_id)))
    if code != "AA":
        ack.append(E("acknowledgementDetail", {"typeCode": "E"},
                     E("code", {"code": "204", "codeSystem": "2.16.840.1.113883.12.357"}),
                     E("text", text="consumer refuses")))
    return E("MCCI_IN000002UV01", {"ITSVersion": "XML_1.0"},
             E("id", {"root": "1.2.3.4.5", "extension": new_value()}),
             E("creationTime", {"value": "20250101120000"}),
             E("interactionId", {"root": INTERACTION_ROOT, "extension": "MCCI_IN000002UV01"}),
             E("processingCode", {"code": "P"}), E("processingModeCode", {"code": "T"}),
             E("acceptAckCode", {"code": "NE"}),
             E("receiver", {"typeCode": "RCV"}, E("device", device, E("id", {"root": "1.2.3"}))),
             E("sender", {"typeCode": "SND"}, E("device", device, E("id", {"root": "1.2.4"}))),
             ack)


async def _consumer(request: Request) -> Response:
    envelope = etree.fromstring(await request.body())
    received.append(envelope)
    mode = request.path_params["mode"]
    if mode == "fault":
        fault = (f'<env:Envelope xmlns:env="{SOAP}"><env:Body><env:Fault><env:Code><env:Value>'
                 'env:Receiver</env:Value></env:Code><env:Reason><env:Text xml:lang="en">'
                 'consumer down</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>')
        return Response(fault, 500, media_type="application/soap+xml")
    if mode == "html":
        return Response("<html>proxy error</html>", 502, media_type="text/html")
    target = envelope.find(f"{{{SOAP}}}Body/{{{HL7}}}PRPA_IN201302UV02/{{{HL7}}}id")
    reply = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"env": SOAP, "wsa": WSA})
    header = etree.SubElement(reply, f"{{{SOAP}}}Header")
    etree.SubElement(header, f"{{{WSA}}}Action").text = "urn:hl7-org:v3:MCCI_IN000002UV01"
    etree.SubElement(reply, f"{{{SOAP}}}Body").append(_ack("AA" if mode == "aa" else "AE", target))
    return Response(etree.tostring(reply), 200, media_type="application/soap+xml")


@pytest.fixture(scope="module")
def consumer_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/consumer/{mode}", _consumer, methods=["POST"])])
    with running_server(app) as base:
        yield base + "/consumer"


@pytest.fixture
def person(pix_index: PatientIndex) -> Person:
    """A link group of a DOMAIN_A id, a DOMAIN_B id and the affinity-domain id it was given."""
    return pix_index.feed([PatientIdentifier(DOMAIN_A, new_value()),
                           PatientIdentifier(DOMAIN_B, new_value())], Demographics(family="DOE"))


def test_notification_is_schema_valid_and_names_every_linked_id(
        consumer_url: str, person: Person, settings: Settings) -> None:
    url = consumer_url + "/aa"

    asyncio.run(send_iti46(url, person, settings))

    envelope = received[-1]
    header = envelope.find(f"{{{SOAP}}}Header")
    assert header is not None
    action = header.find(f"{{{WSA}}}Action")
    assert action is not None and action.text == ACTION
    assert action.get(f"{{{SOAP}}}mustUnderstand") in ("1", "true")
    assert header.findtext(f"{{{WSA}}}To") == url
    assert (header.findtext(f"{{{WSA}}}MessageID") or "").startswith("urn:uuid:")
    message = envelope.find(f"{{{SOAP}}}Body/{{{HL7}}}PRPA_IN201302UV02")
    assert message is not None
    assert_valid(message)
    ids = ids_in(message, PATIENT + "/id") | ids_in(message, PATIENT + "/patientPerson/asOtherIDs/id")
    assert ids == {(i.domain, i.value) for i in person.identifiers}
    assert ids_in(message, PATIENT + "/id") == {
        (i.domain, i.value) for i in person.in_domain(settings.affinity_domain)}
    code = message.find(h("controlActProcess/code"))
    assert code is not None and code.get("code") == "PRPA_TE201302UV02"


@pytest.mark.parametrize("mode", ["ae", "fault", "html"])
def test_anything_but_aa_raises(consumer_url: str, person: Person, settings: Settings,
                                mode: str) -> None:
    with pytest.raises(Iti46Error) as raised:
        asyncio.run(send_iti46(f"{consumer_url}/{mode}", person, settings))

    if mode == "ae":
        assert raised.value.code == "AE"
        assert "consumer refuses" in str(raised.value)
    if mode == "fault":
        assert "consumer down" in str(raised.value)


def test_unreachable_consumer_raises(person: Person, settings: Settings) -> None:
    with pytest.raises(Iti46Error):
        asyncio.run(send_iti46(f"http://127.0.0.1:{free_port()}/pix", person, settings,
                               timeout=5))
