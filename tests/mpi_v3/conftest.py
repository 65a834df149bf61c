"""Fixtures of the PIX v3 tests: the PIX Manager endpoint on the session database (and one that
accepts only ``DOMAIN_A``), a zeep client over the official PIXManager WSDL, HL7 v3 request
builders written from the NE2008 schemas, and a schema check independent of ``xds.hl7v3``.

    def test_add(pix):
        ack = pix.send(feed_message(ADD, [(DOMAIN_A, new_value())]))
        assert ack_code(ack.raw) == "AA"
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

import pytest
import zeep
from lxml import etree
from sqlalchemy import Engine, and_, select
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from zeep import xsd
from zeep.plugins import Plugin

from tests.server import running_server
from xds.config import WSDL_DIR, Settings
from xds.mpi.index import PatientIndex
from xds.mpi.service import pix_operations
from xds.soap import SoapEndpoint, wsdl_files_app
from xds.store.tables import mpi_identifier

HL7 = "urn:hl7-org:v3"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
PIX_WSDL = WSDL_DIR / "iti" / "wsdl" / "PIXManager.wsdl"
SCHEMAS = WSDL_DIR / "iti" / "schema" / "HL7V3" / "NE2008" / "multicacheschemas"
BINDING = "{urn:ihe:iti:pixv3:2007}PIXManager_Binding_Soap12"

ADD = "PRPA_IN201301UV02"
REVISE = "PRPA_IN201302UV02"
MERGE = "PRPA_IN201304UV02"
QUERY = "PRPA_IN201309UV02"
#: Patient id domains of the IHE test tools (IHEGREEN, IHEBLUE); the affinity domain is IHERED.
DOMAIN_A = "1.3.6.1.4.1.21367.13.20.2000"
DOMAIN_B = "1.3.6.1.4.1.21367.13.20.3000"
#: The Patient Identity Source / PIX Consumer device of the requests.
SOURCE_DEVICE = "1.3.6.1.4.1.21367.13.70.99"
INTERACTION_ROOT = "2.16.840.1.113883.1.6"
PARAMETER_LIST = "/PRPA_IN201309UV02/controlActProcess/queryByParameter/parameterList"


# -- schema check ---------------------------------------------------------------------------


@cache
def _schema(interaction: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / f"{interaction}.xsd")))


def assert_valid(message: etree._Element) -> None:
    """Fail unless ``message`` is valid against the official schema named by its root."""
    name = etree.QName(message).localname
    schema = _schema(name)
    if not schema.validate(etree.ElementTree(copy.deepcopy(message))):
        log = "\n".join(f"{e.path}: {e.message}" for e in schema.error_log)  # type: ignore[attr-defined]
        raise AssertionError(f"{name} is not schema-valid:\n{log}")


# -- reading answers ------------------------------------------------------------------------


def h(path: str) -> str:
    """``a/b`` as an ElementPath in the v3 namespace."""
    return "/".join(f"{{{HL7}}}{step}" if step not in (".", "..") else step
                    for step in path.split("/"))


def ack_code(message: etree._Element) -> str | None:
    return message.findtext(h("acknowledgement/typeCode")) or message.find(
        h("acknowledgement/typeCode")).get("code")  # type: ignore[union-attr]


def details(message: etree._Element) -> list[dict[str, str | None]]:
    """Every acknowledgementDetail as {typeCode, code, codeSystem, text, location}."""
    found = []
    for d in message.iterfind(h("acknowledgement/acknowledgementDetail")):
        code = d.find(h("code"))
        found.append({
            "typeCode": d.get("typeCode"),
            "code": code.get("code") if code is not None else None,
            "codeSystem": code.get("codeSystem") if code is not None else None,
            "text": d.findtext(h("text")),
            "location": d.findtext(h("location")),
        })
    return found


def ids_in(element: etree._Element, path: str) -> set[tuple[str, str]]:
    return {(i.get("root", ""), i.get("extension", "")) for i in element.iterfind(h(path))}


def stored(engine: Engine, domain: str, value: str) -> bool:
    """Whether ``mpi_identifier`` holds (domain, value)."""
    with engine.connect() as conn:
        return conn.execute(select(mpi_identifier.c.value).where(and_(
            mpi_identifier.c.domain == domain, mpi_identifier.c.value == value))).first() is not None


def new_value(prefix: str = "T") -> str:
    """A patient id value no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:12].upper()}"


# -- building requests ----------------------------------------------------------------------


def E(tag: str, attrib: dict[str, str] | None = None, *children: etree._Element,
      text: str | None = None) -> etree._Element:
    el = etree.Element(f"{{{HL7}}}{tag}", attrib or {}, nsmap={None: HL7})  # type: ignore[dict-item]
    el.extend(children)
    el.text = text
    return el


def _ii(tag: str, root: str, extension: str | None = None) -> etree._Element:
    return E(tag, {"root": root, **({"extension": extension} if extension else {})})


def _wrapper(interaction: str, message_id: str) -> etree._Element:
    def device(tag: str, type_code: str, root: str) -> etree._Element:
        return E(tag, {"typeCode": type_code},
                 E("device", {"classCode": "DEV", "determinerCode": "INSTANCE"}, _ii("id", root)))

    return E(interaction, {"ITSVersion": "XML_1.0"},
             _ii("id", SOURCE_DEVICE, message_id),
             E("creationTime", {"value": "20250101120000"}),
             _ii("interactionId", INTERACTION_ROOT, interaction),
             E("processingCode", {"code": "P"}), E("processingModeCode", {"code": "T"}),
             E("acceptAckCode", {"code": "AL"}),
             device("receiver", "RCV", "1.3.6.1.4.1.21367.13.70.1"),
             device("sender", "SND", SOURCE_DEVICE))


def _control_act(message: etree._Element, interaction: str) -> etree._Element:
    control = E("controlActProcess", {"classCode": "CACT", "moodCode": "EVN"},
                E("code", {"code": interaction.replace("_IN", "_TE"), "codeSystem": INTERACTION_ROOT}))
    message.append(control)
    return control


def feed_message(interaction: str, ids: Sequence[tuple[str, str]], *,
                 other_ids: Sequence[tuple[str, str]] = (), family: str = "DOE",
                 given: str = "JANE", sex: str = "F", birth: str = "19800101",
                 street: str = "1 Main St", city: str = "Springfield",
                 subsumed: tuple[str, str] | None = None,
                 message_id: str | None = None) -> etree._Element:
    """An ITI-44 message (PRPA_IN201301/201302/201304UV02) for a patient with ``ids`` in
    patient/id and ``other_ids`` in patientPerson/asOtherIDs; ``subsumed`` for a merge."""
    message = _wrapper(interaction, message_id or new_value("M"))
    control = _control_act(message, interaction)
    person = E("patientPerson", {"classCode": "PSN", "determinerCode": "INSTANCE"},
               E("name", None, E("given", text=given), E("family", text=family)),
               E("telecom", {"value": "tel:+1-555-0100", "use": "HP"}),
               E("administrativeGenderCode", {"code": sex}),
               E("birthTime", {"value": birth}),
               E("addr", None, E("streetAddressLine", text=street), E("city", text=city),
                 E("postalCode", text="12345"), E("country", text="USA")))
    for root, extension in other_ids:
        person.append(E("asOtherIDs", {"classCode": "PAT"}, _ii("id", root, extension),
                        E("scopingOrganization", {"classCode": "ORG", "determinerCode": "INSTANCE"},
                          _ii("id", root))))
    patient = E("patient", {"classCode": "PAT"}, *[_ii("id", r, x) for r, x in ids],
                E("statusCode", {"code": "active"}), person)
    if interaction == ADD:  # PRPA_MT201301UV02 requires the provider organization
        patient.append(E("providerOrganization", {"classCode": "ORG", "determinerCode": "INSTANCE"},
                         _ii("id", SOURCE_DEVICE), E("contactParty", {"classCode": "CON"})))
    event = E("registrationEvent", {"classCode": "REG", "moodCode": "EVN"},
              E("statusCode", {"code": "active"}),
              E("subject1", {"typeCode": "SBJ"}, patient),
              E("custodian", {"typeCode": "CST"},
                E("assignedEntity", {"classCode": "ASSIGNED"}, _ii("id", SOURCE_DEVICE))))
    if subsumed is not None:
        event.append(E("replacementOf", {"typeCode": "RPLC"},
                       E("priorRegistration", {"classCode": "REG", "moodCode": "EVN"},
                         E("statusCode", {"code": "obsolete"}),
                         E("subject1", {"typeCode": "SBJ"},
                           E("priorRegisteredRole", {"classCode": "PAT"},
                             _ii("id", subsumed[0], subsumed[1]))))))
    control.append(E("subject", {"typeCode": "SUBJ"}, event))
    return message


def query_message(root: str, extension: str, data_sources: Sequence[str] = (), *,
                  message_id: str | None = None) -> etree._Element:
    """A PRPA_IN201309UV02 for (root, extension), asking for ``data_sources`` (all if empty)."""
    message = _wrapper(QUERY, message_id or new_value("Q"))
    control = _control_act(message, QUERY)
    params = E("parameterList")
    for domain in data_sources:
        params.append(E("dataSource", None, _ii("value", domain),
                        E("semanticsText", text="DataSource.id")))
    params.append(E("patientIdentifier", None, _ii("value", root, extension),
                    E("semanticsText", text="Patient.Id")))
    control.append(E("queryByParameter", None, _ii("queryId", SOURCE_DEVICE, new_value("QID")),
                     E("statusCode", {"code": "new"}), E("responsePriorityCode", {"code": "I"}),
                     params))
    return message


# -- the PIX Manager and its client ---------------------------------------------------------


def pix_app(index: PatientIndex, settings: Settings) -> Starlette:
    """The PIX Manager endpoint at /pix (as xds.app mounts it) and the WSDL tree at /wsdl."""
    endpoint = SoapEndpoint(pix_operations(index, settings), wsdl=PIX_WSDL, service_path="/pix",
                            max_envelope_bytes=settings.max_envelope_bytes,
                            spool_dir=settings.spool_dir)
    return Starlette(routes=[Route("/pix", endpoint, methods=["GET", "POST"]),
                             Mount("/wsdl", app=wsdl_files_app)])


@pytest.fixture(scope="session")
def pix_index(settings: Settings, engine: Engine) -> PatientIndex:
    """The index behind ``pix_url``, on the session database (any assigning authority)."""
    return PatientIndex(engine, settings)


@pytest.fixture(scope="session")
def pix_url(pix_index: PatientIndex, settings: Settings) -> Iterator[str]:
    """The PIX Manager endpoint (``http://127.0.0.1:<port>/pix``)."""
    with running_server(pix_app(pix_index, settings)) as base:
        yield base + "/pix"


@pytest.fixture(scope="session")
def restricted_url(settings: Settings, engine: Engine) -> Iterator[str]:
    """A PIX Manager on the same database that accepts only DOMAIN_A (and the affinity domain)."""
    only_a = dataclasses.replace(settings, pix_domains=DOMAIN_A)
    with running_server(pix_app(PatientIndex(engine, only_a), only_a)) as base:
        yield base + "/pix"


@dataclasses.dataclass
class Answer:
    """zeep's parse of the answer (``typed``) and the body element as received (``raw``)."""

    typed: Any
    raw: etree._Element


class _RawBody(Plugin):
    """Sends ``body`` as the env:Body child and keeps the received one.

    zeep's HL7 v3 types cannot carry the union-typed structural attributes (``classCode`` of a
    role, for one: zeep 4 fails on its list-of-union type), so the request bodies are built with
    lxml; zeep still does the rest from the WSDL: operation, wsa:Action, MessageID, To, the
    HTTP exchange and the typed parse of the answer. It also adds what IHE wants besides
    (mustUnderstand on Action, ReplyTo), as ``xds.clients.consumer`` does.
    """

    def __init__(self) -> None:
        self.body: etree._Element | None = None
        self.received: etree._Element | None = None

    def egress(self, envelope: Any, http_headers: Any, operation: Any, binding_options: Any
               ) -> tuple[Any, Any]:
        header = envelope.find(f"{{{SOAP}}}Header")
        header.find(f"{{{WSA}}}Action").set(f"{{{SOAP}}}mustUnderstand", "true")
        reply_to = etree.SubElement(header, f"{{{WSA}}}ReplyTo")
        etree.SubElement(reply_to, f"{{{WSA}}}Address").text = WSA + "/anonymous"
        body = envelope.find(f"{{{SOAP}}}Body")
        for child in list(body):
            body.remove(child)
        body.append(copy.deepcopy(self.body))
        return envelope, http_headers

    def ingress(self, envelope: Any, http_headers: Any, operation: Any) -> tuple[Any, Any]:
        self.received = copy.deepcopy(envelope.find(f"{{{SOAP}}}Body")[0])
        return envelope, http_headers


class PixClient:
    """A PIX Source / Consumer: zeep over the WSDL the PIX Manager publishes (``?wsdl``)."""

    def __init__(self, url: str) -> None:
        self._plugin = _RawBody()
        self.client = zeep.Client(url + "?wsdl", plugins=[self._plugin])  # type: ignore[no-untyped-call]
        self.service = self.client.create_service(BINDING, url)  # type: ignore[no-untyped-call]

    def send(self, message: etree._Element) -> Answer:
        """Send ``message`` with the WSDL operation of its interaction; the answer must be
        valid against its own schema."""
        name = f"PIXManager_{etree.QName(message).localname}"
        body_type = self.service._binding.get(name).input.body.type
        required = {n: xsd.SkipValue for n, el in body_type.elements if not el.is_optional}
        self._plugin.body = message
        typed = getattr(self.service, name)(ITSVersion="XML_1.0", **required)
        raw = self._plugin.received
        assert raw is not None
        assert_valid(raw)
        return Answer(typed=typed, raw=raw)


@pytest.fixture(scope="session")
def pix(pix_url: str) -> PixClient:
    return PixClient(pix_url)


@pytest.fixture(scope="session")
def restricted_pix(restricted_url: str) -> PixClient:
    return PixClient(restricted_url)
