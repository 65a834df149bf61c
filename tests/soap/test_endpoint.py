"""The SOAP endpoint over real HTTP: dispatch, addressing, faults, limits, error boundary."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from xds.soap import SOAP_CONTENT_TYPE, parse_xml
from xds.soap.ns import SOAP12_ENV, WSA, WSA_FAULT_ACTION, WSA_SOAP_FAULT_ACTION

from .app import MAX_ENVELOPE, T, envelope
from .test_xmlparse import BILLION_LAUGHS

NS = {"env": SOAP12_ENV, "wsa": WSA, "t": T, "rs": "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"}
REQUEST_ID = "urn:uuid:11111111-2222-3333-4444-555555555555"
PATH = "/xds/registry"


def _post(
    client: httpx.Client, data: bytes, content_type: str = SOAP_CONTENT_TYPE
) -> httpx.Response:
    return client.post(PATH, content=data, headers={"Content-Type": content_type})


def _reply(response: httpx.Response, schema: etree.XMLSchema) -> etree._Element:
    assert response.headers["content-type"] == SOAP_CONTENT_TYPE
    root = parse_xml(response.content, max_bytes=1 << 24)
    schema.assertValid(root)
    return root


def _fault(response: httpx.Response, schema: etree.XMLSchema, status: int = 400) -> etree._Element:
    assert response.status_code == status
    root = _reply(response, schema)
    fault = root.find("env:Body/env:Fault", NS)
    assert fault is not None
    assert "Traceback" not in response.text
    return fault


def _subcode(fault: etree._Element) -> str:
    value = fault.find("env:Code/env:Subcode/env:Value", NS)
    assert value is not None and value.text
    prefix, _, local = value.text.partition(":")
    return f"{{{value.nsmap[prefix]}}}{local}"


def test_echo_reply_is_addressed_with_fresh_message_id(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    first = _reply(_post(client, envelope("<t:Ping>hi</t:Ping>")), envelope_schema)
    second = _reply(_post(client, envelope("<t:Ping>hi</t:Ping>")), envelope_schema)
    action = first.find("env:Header/wsa:Action", NS)
    assert action is not None and action.text == T + ":EchoResponse"
    assert action.get(f"{{{SOAP12_ENV}}}mustUnderstand") in ("1", "true")
    assert first.findtext("env:Header/wsa:RelatesTo", namespaces=NS) == REQUEST_ID
    ids = {r.findtext("env:Header/wsa:MessageID", namespaces=NS) for r in (first, second)}
    assert len(ids) == 2 and REQUEST_ID not in ids
    assert all(i and i.startswith("urn:uuid:") for i in ids)
    assert first.findtext("env:Body/t:Ping", namespaces=NS) == "hi"


def test_action_media_type_parameter_is_ignored(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    content_type = SOAP_CONTENT_TYPE + '; action="urn:ihe:iti:2007:Elsewhere"'
    root = _reply(_post(client, envelope("<t:Ping/>"), content_type), envelope_schema)
    assert root.findtext("env:Header/wsa:Action", namespaces=NS) == T + ":EchoResponse"


def test_soap11_envelope_is_version_mismatch(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    fault = _fault(_post(client, envelope("<t:Ping/>", soap11=True)), envelope_schema)
    assert fault.findtext("env:Code/env:Value", namespaces=NS) == "env:VersionMismatch"
    root = fault.getroottree().getroot()
    assert root.find("env:Header/env:Upgrade/env:SupportedEnvelope", NS) is not None


def test_text_xml_content_type_is_version_mismatch(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    fault = _fault(_post(client, envelope("<t:Ping/>"), "text/xml; charset=utf-8"), envelope_schema)
    assert fault.findtext("env:Code/env:Value", namespaces=NS) == "env:VersionMismatch"


def test_other_content_type_is_415_with_fault(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    _fault(_post(client, b"{}", "application/json"), envelope_schema, status=415)


@pytest.mark.parametrize(
    "data",
    [
        b"<env:Envelope xmlns:env='http://www.w3.org/2003/05/soap-envelope'><env:Body>",
        b"\xff\xfe garbage",
        b"",
    ],
    ids=["truncated", "garbage", "empty"],
)
def test_malformed_xml_is_sender_fault(
    client: httpx.Client, envelope_schema: etree.XMLSchema, data: bytes
) -> None:
    fault = _fault(_post(client, data), envelope_schema)
    assert fault.findtext("env:Code/env:Value", namespaces=NS) == "env:Sender"


def test_xxe_is_refused_and_file_content_never_sent(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    secret = Path("/etc/passwd").read_text().splitlines()[0]
    body = (
        b'<?xml version="1.0"?><!DOCTYPE env:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        + envelope("<t:Ping>&xxe;</t:Ping>").split(b"?>", 1)[1]
    )
    response = _post(client, body)
    _fault(response, envelope_schema)
    assert secret not in response.text and "root:" not in response.text


def test_billion_laughs_is_refused(client: httpx.Client, envelope_schema: etree.XMLSchema) -> None:
    _fault(_post(client, BILLION_LAUGHS), envelope_schema)


def test_doctype_is_refused(client: httpx.Client, envelope_schema: etree.XMLSchema) -> None:
    body = b"<!DOCTYPE env:Envelope>" + envelope("<t:Ping/>").split(b"?>", 1)[1]
    fault = _fault(_post(client, body), envelope_schema)
    assert "DOCTYPE" in (fault.findtext("env:Reason/env:Text", namespaces=NS) or "")


def test_oversized_body_is_413_fault(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    padding = "<t:Pad>" + "x" * (2 * MAX_ENVELOPE) + "</t:Pad>"
    _fault(_post(client, envelope(padding)), envelope_schema, status=413)


def test_oversized_chunked_body_is_413_fault(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    def chunks() -> Iterator[bytes]:
        yield envelope("<t:Pad>").split(b"</env:Body>")[0]
        for _ in range(2 * MAX_ENVELOPE // 1024):
            yield b"x" * 1024

    response = client.post(PATH, content=chunks(), headers={"Content-Type": SOAP_CONTENT_TYPE})
    _fault(response, envelope_schema, status=413)


def test_missing_action_is_message_addressing_header_required(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    fault = _fault(_post(client, envelope("<t:Ping/>", action=None)), envelope_schema)
    assert _subcode(fault) == f"{{{WSA}}}MessageAddressingHeaderRequired"
    root = fault.getroottree().getroot()
    assert root.findtext("env:Header/wsa:Action", namespaces=NS) == WSA_FAULT_ACTION


def test_unknown_action_is_action_not_supported(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    fault = _fault(_post(client, envelope("<t:Ping/>", action="urn:nope")), envelope_schema)
    assert _subcode(fault) == f"{{{WSA}}}ActionNotSupported"
    assert "urn:nope" in (fault.findtext("env:Reason/env:Text", namespaces=NS) or "")
    root = fault.getroottree().getroot()
    assert root.findtext("env:Header/wsa:Action", namespaces=NS) == WSA_FAULT_ACTION
    assert root.findtext("env:Header/wsa:RelatesTo", namespaces=NS) == REQUEST_ID


def test_unknown_must_understand_header_is_must_understand_fault(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    extra = '<x:Secret xmlns:x="urn:x" env:mustUnderstand="1"/>'
    fault = _fault(_post(client, envelope("<t:Ping/>", extra_headers=extra)), envelope_schema)
    assert fault.findtext("env:Code/env:Value", namespaces=NS) == "env:MustUnderstand"
    root = fault.getroottree().getroot()
    assert root.findtext("env:Header/wsa:Action", namespaces=NS) == WSA_SOAP_FAULT_ACTION
    (block,) = root.findall("env:Header/env:NotUnderstood", NS)
    assert block.get("qname", "").endswith(":Secret")


def test_must_understand_on_reply_to_is_accepted(
    client: httpx.Client, envelope_schema: etree.XMLSchema
) -> None:
    response = _post(client, envelope("<t:Ping/>", reply_to_must_understand=True))
    assert response.status_code == 200
    _reply(response, envelope_schema)


def test_handler_crash_is_business_error_without_traceback(
    client: httpx.Client, envelope_schema: etree.XMLSchema, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="xds.soap"):
        response = _post(client, envelope("<t:Ping/>", action=T + ":Crash"))
    assert response.status_code == 200
    root = _reply(response, envelope_schema)
    error = root.find("env:Body/rs:RegistryResponse/rs:RegistryErrorList/rs:RegistryError", NS)
    assert error is not None and error.get("errorCode") == "XDSRegistryError"
    assert root.findtext("env:Header/wsa:Action", namespaces=NS) == T + ":CrashResponse"
    assert "secret-internal-detail" not in response.text and "Traceback" not in response.text
    logged = [r for r in caplog.records if r.name == "xds.soap" and r.exc_info]
    assert logged and "secret-internal-detail" in str(logged[0].exc_info[1])  # type: ignore[index]


def test_get_without_wsdl_query_and_other_methods_are_405(client: httpx.Client) -> None:
    assert client.get(PATH).status_code == 405
    assert client.put(PATH, content=b"x").status_code == 405
