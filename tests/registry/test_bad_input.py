"""Hostile and malformed requests at the registry endpoint: each is an answer, logged, and stores nothing.

The SOAP layer's own tests (tests/soap) cover each envelope rule with a toy service; these prove
the registry endpoint is wired through the same defences, on both databases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import httpx
import pytest
from lxml import etree
from sqlalchemy import Engine

from tests import samples, soapclient, xsd
from tests.registry.iti42_support import assert_nothing_stored, entries
from tests.server import running_server
from tests.soap.app import multipart
from xds.config import Settings

NS_SOAP = soapclient.NS_SOAP
FAULT = f"{{{NS_SOAP}}}Fault"


def _fault_subcodes(body: etree._Element) -> list[str]:
    return [v.text or "" for v in body.iter(f"{{{NS_SOAP}}}Value")]


def _unique_ids(request: etree._Element) -> list[str]:
    """uniqueIds of the request's DocumentEntries and SubmissionSet, in document order."""
    schemes = (samples.DE.uniqueId, samples.SS.uniqueId)
    return [ei.get("value") or "" for ei in request.iter(f"{{{samples.NS_RIM}}}ExternalIdentifier")
            if ei.get("identificationScheme") in schemes]


def _submission_bytes(pid: str) -> tuple[bytes, list[str]]:
    request = samples.single_document_submission(pid)
    return samples.to_bytes(request), _unique_ids(request)


def _envelope_around(body_xml: bytes, *, action: str | None = soapclient.ITI42,
                     prolog: bytes = b"") -> bytes:
    headers = b""
    if action is not None:
        headers += (f'<wsa:Action env:mustUnderstand="1">{action}</wsa:Action>'.encode())
    headers += b"<wsa:MessageID>urn:uuid:6f7b8c55-2b5d-4a54-9a54-2c0b4b3b5a11</wsa:MessageID>"
    body_xml = body_xml.split(b"?>", 1)[-1] if body_xml.startswith(b"<?xml") else body_xml
    return (prolog + b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
            b'xmlns:wsa="http://www.w3.org/2005/08/addressing"><env:Header>' + headers +
            b"</env:Header><env:Body>" + body_xml + b"</env:Body></env:Envelope>")


def _post(url: str, data: bytes, content_type: str = soapclient.CONTENT_TYPE) -> tuple[
        httpx.Response, etree._Element]:
    resp = soapclient.post_raw(url, data, content_type=content_type)
    assert resp.status_code != 500, resp.text
    assert b"Traceback" not in resp.content
    return resp, soapclient.body_of(soapclient.parse_envelope(resp.content))


def _with_entity(body_xml: bytes, doctype: bytes, reference: bytes) -> bytes:
    # The entity is used inside the document title, so a parser that expanded it would store it.
    marked = body_xml.replace(b'value="Discharge summary"', b'value="' + reference + b'"', 1)
    assert marked != body_xml
    return _envelope_around(marked, prolog=b'<?xml version="1.0"?>' + doctype)


XXE = b'<!DOCTYPE env:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
BOMB = (b'<!DOCTYPE env:Envelope [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(b'<!ENTITY %s "&%s;&%s;&%s;&%s;&%s;&%s;&%s;&%s;&%s;&%s;">'
                   % ((chr(98 + i).encode(),) + (chr(97 + i).encode(),) * 10) for i in range(8))
        + b"]>")


@pytest.mark.parametrize(("doctype", "reference"), [(XXE, b"&xxe;"), (BOMB, b"&i;")],
                         ids=["XXE file:///etc/passwd", "entity expansion bomb"])
def test_entities_are_refused_with_a_sender_fault_and_nothing_stored(
    registry_url: str, new_patient: Callable[[], str], engine: Engine,
    caplog: pytest.LogCaptureFixture, doctype: bytes, reference: bytes,
) -> None:
    pid = new_patient()
    body, uids = _submission_bytes(pid)
    with caplog.at_level(logging.INFO, logger="xds"):
        resp, fault = _post(registry_url, _with_entity(body, doctype, reference))
    assert resp.status_code == 400
    assert fault.tag == FAULT
    assert "Sender" in " ".join(_fault_subcodes(fault))
    assert b"root:" not in resp.content
    xsd.assert_valid(soapclient.parse_envelope(resp.content))
    assert_nothing_stored(engine, pid, uids)
    assert any(r.name.startswith("xds") and r.levelno >= logging.INFO for r in caplog.records)


def test_truncated_xml_is_a_sender_fault_and_nothing_stored(
    registry_url: str, new_patient: Callable[[], str], engine: Engine,
) -> None:
    pid = new_patient()
    body, uids = _submission_bytes(pid)
    whole = _envelope_around(body)
    resp, fault = _post(registry_url, whole[: len(whole) // 2])
    assert resp.status_code == 400 and fault.tag == FAULT
    assert_nothing_stored(engine, pid, uids)


def test_missing_action_is_a_fault_naming_the_header_and_nothing_stored(
    registry_url: str, new_patient: Callable[[], str], engine: Engine,
) -> None:
    pid = new_patient()
    body, uids = _submission_bytes(pid)
    resp, fault = _post(registry_url, _envelope_around(body, action=None))
    assert resp.status_code == 400 and fault.tag == FAULT
    assert any(v.endswith("MessageAddressingHeaderRequired") for v in _fault_subcodes(fault))
    assert_nothing_stored(engine, pid, uids)


def test_unknown_action_is_action_not_supported_and_nothing_stored(
    registry_url: str, new_patient: Callable[[], str], engine: Engine,
) -> None:
    pid = new_patient()
    body, uids = _submission_bytes(pid)
    resp, fault = _post(registry_url, _envelope_around(body, action="urn:ihe:iti:2007:Nonsense"))
    assert resp.status_code == 400 and fault.tag == FAULT
    assert any(v.endswith("ActionNotSupported") for v in _fault_subcodes(fault))
    assert_nothing_stored(engine, pid, uids)


def test_submission_in_a_foreign_namespace_is_a_metadata_error(
    registry_url: str, new_patient: Callable[[], str], engine: Engine,
) -> None:
    pid = new_patient()
    body, uids = _submission_bytes(pid)
    foreign = body.replace(b"urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0", b"urn:example:lcm")
    resp, answer = _post(registry_url, _envelope_around(foreign))
    assert resp.status_code == 200
    xsd.assert_valid(answer)
    assert soapclient.status(answer) == soapclient.FAILURE
    assert soapclient.error_codes(answer) == ["XDSRegistryMetadataError"]
    assert_nothing_stored(engine, pid, uids)


@pytest.fixture(scope="module")
def small_registry(settings: Settings, server: str) -> Iterator[str]:
    """A second server on the same database whose in-memory cap is 32 KiB."""
    from xds.app import build_app

    capped = Settings(data_dir=settings.data_dir, database_url=settings.database_url,
                      max_envelope_bytes=32 * 1024, mllp_port=0)
    with running_server(build_app(capped)) as base:
        yield base + "/xds/registry"


def test_oversized_body_is_refused_before_it_is_parsed(
    small_registry: str, new_patient: Callable[[], str], engine: Engine,
) -> None:
    pid = new_patient()
    request = samples.single_document_submission(
        pid, extra_slots={"urn:example:padding": ["x" * 200] * 400})
    data = _envelope_around(samples.to_bytes(request))
    assert len(data) > 64 * 1024
    resp, fault = _post(small_registry, data)
    assert resp.status_code == 413 and fault.tag == FAULT
    assert_nothing_stored(engine, pid, _unique_ids(request))


def test_registration_packaged_as_mtom_is_accepted_and_answered_as_mtom(
    registry_url: str, new_patient: Callable[[], str], engine: Engine,
) -> None:
    pid = new_patient()
    request = samples.single_document_submission(pid)
    root = soapclient.envelope(soapclient.ITI42, request)
    body = multipart([({"Content-Type": 'application/xop+xml; charset=UTF-8; type="application/soap+xml"',
                        "Content-Transfer-Encoding": "binary", "Content-ID": "<root.xds@test>"}, root)])
    content_type = ('multipart/related; boundary=MIMEBoundary_test; type="application/xop+xml"; '
                    'start="<root.xds@test>"; start-info="application/soap+xml"')
    resp = httpx.post(registry_url, content=body, headers={"Content-Type": content_type}, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("multipart/related")
    assert b"ResponseStatusType:Success" in resp.content
    (stored,) = entries(engine, pid)
    assert stored.unique_id in _unique_ids(request)
