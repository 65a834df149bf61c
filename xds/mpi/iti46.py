"""ITI-46 PIXV3 Update Notification, PIX Manager side: a link group as PRPA_IN201302UV02, sent to
a PIX Consumer over SOAP 1.2 and answered by MCCI_IN000002UV01 (ITI TF-2b §3.46)."""

from __future__ import annotations

import httpx
from lxml import etree

from xds.config import Settings
from xds.hl7v3 import (
    II,
    INTERACTION_ID_ROOT,
    AckDetail,
    AcknowledgementType,
    Interaction,
    device_id,
    read_acknowledgement,
    sub,
    transmission,
    v3,
)
from xds.mpi.iti45 import add_registration_event
from xds.mpi.model import Person
from xds.security.credentials import Credentials
from xds.soap import build_envelope
from xds.soap.ns import SOAP12_ENV, WSA, WSA_ANONYMOUS, qname
from xds.soap.xmlparse import XmlError, parse_xml

__all__ = ["Iti46Error", "update_notification", "send_iti46"]

_MAX_ANSWER = 1024 * 1024
_ACTION = Interaction.PRPA_IN201302UV02.action


class Iti46Error(Exception):
    """The PIX Consumer did not accept a notification: it could not be reached, answered with
    a fault or something else than an MCCI_IN000002UV01, or with an ack other than AA.
    ``code`` and ``details`` are those of the acknowledgement, when there was one."""

    def __init__(self, text: str, code: str | None = None,
                 details: tuple[AckDetail, ...] = ()) -> None:
        super().__init__(text)
        self.code = code
        self.details = details


def update_notification(person: Person, *, affinity_domain: str, device_id: str,
                        receiver: II | None = None) -> etree._Element:
    """The PRPA_IN201302UV02 telling a consumer the ids of ``person``'s link group: the
    affinity-domain ids in ``patient/id``, the others in ``asOtherIDs`` (no demographics).
    Raises ValueError for a person without identifiers."""
    if not person.identifiers:
        raise ValueError(f"{person.person_id} has no identifiers to notify")
    message = transmission(Interaction.PRPA_IN201302UV02, sender=device_id, receiver=receiver,
                           accept_ack="AL")
    control = sub(message, "controlActProcess", {"classCode": "CACT", "moodCode": "EVN"})
    sub(control, "code", {"code": Interaction.PRPA_IN201302UV02.trigger_event,
                          "codeSystem": INTERACTION_ID_ROOT})
    add_registration_event(control, person.identifiers, affinity_domain=affinity_domain,
                           custodian=device_id)
    return message


async def send_iti46(url: str, person: Person, settings: Settings, *, timeout: float = 30.0
                     ) -> None:
    """POST the update notification of ``person`` to the PIX Consumer at ``url`` (SOAP 1.2,
    WS-Addressing action ``urn:hl7-org:v3:PRPA_IN201302UV02``). Returns once it answered AA;
    raises Iti46Error otherwise (transport error, fault, other answer, AE/AR). An https URL
    is called with this node's client certificate (``settings.client_*``).

    >>> await send_iti46("http://consumer.example/pix", index.person(pid), settings)
    """
    message = update_notification(person, affinity_domain=settings.affinity_domain,
                                  device_id=device_id(settings))
    envelope = build_envelope(message, action=_ACTION, headers=_addressing(url))
    headers = {"Content-Type": f'application/soap+xml; charset=UTF-8; action="{_ACTION}"'}
    try:
        async with httpx.AsyncClient(
                timeout=timeout, verify=Credentials.of_settings(settings).verify()) as client:
            response = await client.post(url, content=envelope, headers=headers)
    except httpx.HTTPError as exc:
        raise Iti46Error(f"ITI-46 to {url} failed: {exc!r}") from exc
    answer = _answer(url, response)
    code, details = read_acknowledgement(answer)
    if code != AcknowledgementType.AA:
        texts = "; ".join(d.text for d in details) or "no details"
        raise Iti46Error(f"ITI-46 to {url} answered {code}: {texts}", code, tuple(details))


def _addressing(url: str) -> list[etree._Element]:
    # IHE_WSA102: ReplyTo anonymous for a synchronous exchange; To names the endpoint.
    to = etree.Element(qname(WSA, "To"), nsmap={"wsa": WSA})
    to.text = url
    reply_to = etree.Element(qname(WSA, "ReplyTo"), nsmap={"wsa": WSA})
    etree.SubElement(reply_to, qname(WSA, "Address")).text = WSA_ANONYMOUS
    return [to, reply_to]


def _answer(url: str, response: httpx.Response) -> etree._Element:
    try:
        envelope = parse_xml(response.content, max_bytes=_MAX_ANSWER)
    except XmlError as exc:
        raise Iti46Error(f"ITI-46 to {url}: HTTP {response.status_code}, no SOAP answer "
                         f"({exc})") from None
    body = envelope.find(qname(SOAP12_ENV, "Body"))
    child = body[0] if body is not None and len(body) else None
    if child is not None and child.tag == qname(SOAP12_ENV, "Fault"):
        reason = child.findtext(f".//{qname(SOAP12_ENV, 'Text')}") or "SOAP Fault"
        raise Iti46Error(f"ITI-46 to {url} answered a fault: {reason}")
    if child is None or child.tag != v3(Interaction.MCCI_IN000002UV01):
        raise Iti46Error(f"ITI-46 to {url}: HTTP {response.status_code}, "
                         "the answer is no MCCI_IN000002UV01")
    return child
