"""Envelope checks, WS-Addressing headers, reply and fault envelopes (valid per the W3C XSD)."""

from __future__ import annotations

import pytest
from lxml import etree

from xds.soap import (
    ACTION_NOT_SUPPORTED,
    MESSAGE_ADDRESSING_HEADER_REQUIRED,
    SoapFault,
    build_envelope,
    build_fault,
    parse_addressing,
    parse_envelope,
    parse_xml,
)
from xds.soap.ns import SOAP12_ENV, WSA, WSA_ANONYMOUS, WSA_FAULT_ACTION, WSA_SOAP_FAULT_ACTION
from xds.soap.wsa import INVALID_ADDRESSING_HEADER, action_not_supported

from .app import T, envelope

NS = {"env": SOAP12_ENV, "wsa": WSA}


def _parse(data: bytes) -> etree._Element:
    return parse_xml(data, max_bytes=1 << 20)


def test_envelope_gives_headers_and_single_body_child() -> None:
    env = parse_envelope(_parse(envelope("<t:Ping/>")))
    assert env.body.tag == f"{{{T}}}Ping"
    addressing = parse_addressing(env.headers)
    assert addressing.action == T + ":Echo"
    assert addressing.message_id == "urn:uuid:11111111-2222-3333-4444-555555555555"
    assert addressing.reply_to == WSA_ANONYMOUS
    assert addressing.to == "http://127.0.0.1/xds/registry"


def test_soap11_envelope_is_version_mismatch() -> None:
    with pytest.raises(SoapFault) as info:
        parse_envelope(_parse(envelope("<t:Ping/>", soap11=True)))
    assert info.value.code == "VersionMismatch"


def test_other_root_is_sender_fault() -> None:
    with pytest.raises(SoapFault) as info:
        parse_envelope(_parse(b"<t:Ping xmlns:t='urn:x'/>"))
    assert info.value.code == "Sender"


@pytest.mark.parametrize(
    "body", ["", "<t:A/><t:B/>", "text"], ids=["empty", "two-children", "text"]
)
def test_body_must_hold_exactly_one_element(body: str) -> None:
    with pytest.raises(SoapFault) as info:
        parse_envelope(_parse(envelope(body)))
    assert info.value.code == "Sender"


def test_unknown_must_understand_header_is_must_understand_fault() -> None:
    extra = '<x:Secret xmlns:x="urn:x" env:mustUnderstand="true"/>'
    with pytest.raises(SoapFault) as info:
        parse_envelope(_parse(envelope("<t:Ping/>", extra_headers=extra)))
    assert info.value.code == "MustUnderstand"
    assert info.value.not_understood == ("{urn:x}Secret",)


def test_unknown_optional_header_or_other_role_is_ignored() -> None:
    extra = (
        '<x:Opt xmlns:x="urn:x"/><x:Zero xmlns:x="urn:x" env:mustUnderstand="0"/>'
        '<x:Far xmlns:x="urn:x" env:mustUnderstand="1" env:role="urn:someone-else"/>'
    )
    parse_envelope(_parse(envelope("<t:Ping/>", extra_headers=extra)))


def test_registered_header_is_understood() -> None:
    extra = '<x:Security xmlns:x="urn:x" env:mustUnderstand="1"/>'
    understood = frozenset({"{urn:x}Security", f"{{{WSA}}}Action", f"{{{WSA}}}ReplyTo"})
    parse_envelope(_parse(envelope("<t:Ping/>", extra_headers=extra)), understood=understood)


def test_missing_action_is_message_addressing_header_required() -> None:
    env = parse_envelope(_parse(envelope("<t:Ping/>", action=None)))
    with pytest.raises(SoapFault) as info:
        parse_addressing(env.headers)
    assert info.value.subcode == MESSAGE_ADDRESSING_HEADER_REQUIRED


def test_duplicate_action_is_invalid_addressing_header() -> None:
    extra = f"<wsa:Action>{T}:Echo</wsa:Action>"
    env = parse_envelope(_parse(envelope("<t:Ping/>", extra_headers=extra)))
    with pytest.raises(SoapFault) as info:
        parse_addressing(env.headers)
    assert info.value.subcode == INVALID_ADDRESSING_HEADER


def test_reply_envelope_is_valid_and_addressed(envelope_schema: etree.XMLSchema) -> None:
    body = etree.Element(f"{{{T}}}Pong")
    reply = _parse(build_envelope(body, action=T + ":R", relates_to="urn:uuid:req"))
    envelope_schema.assertValid(reply)
    action = reply.find("env:Header/wsa:Action", NS)
    assert action is not None and action.text == T + ":R"
    assert action.get(f"{{{SOAP12_ENV}}}mustUnderstand") == "1"
    assert reply.findtext("env:Header/wsa:RelatesTo", namespaces=NS) == "urn:uuid:req"
    assert (reply.findtext("env:Header/wsa:MessageID", namespaces=NS) or "").startswith("urn:uuid:")


def test_fault_envelopes_are_valid(envelope_schema: etree.XMLSchema) -> None:
    faults = [
        SoapFault("Sender", "bad"),
        SoapFault("VersionMismatch", "1.1"),
        SoapFault("MustUnderstand", "mu", not_understood=["{urn:x}A", "{urn:y}B"]),
        action_not_supported("urn:nope"),
        SoapFault("Receiver", "internal", subcode="{urn:custom}Code"),
    ]
    for fault in faults:
        root = _parse(build_fault(fault, relates_to="urn:uuid:req"))
        envelope_schema.assertValid(root)
        value = root.findtext("env:Body/env:Fault/env:Code/env:Value", namespaces=NS)
        assert value == "env:" + fault.code


def test_ws_addressing_fault_has_fault_action_and_subcode() -> None:
    root = _parse(build_fault(action_not_supported("urn:nope")))
    assert root.findtext("env:Header/wsa:Action", namespaces=NS) == WSA_FAULT_ACTION
    value = root.find("env:Body/env:Fault/env:Code/env:Subcode/env:Value", NS)
    assert value is not None and value.text is not None
    prefix, _, local = value.text.partition(":")
    assert f"{{{value.nsmap[prefix]}}}{local}" == ACTION_NOT_SUPPORTED
    assert root.findtext(".//wsa:ProblemAction/wsa:Action", namespaces=NS) == "urn:nope"


def test_plain_fault_has_soap_fault_action() -> None:
    root = _parse(build_fault(SoapFault("Sender", "bad")))
    assert root.findtext("env:Header/wsa:Action", namespaces=NS) == WSA_SOAP_FAULT_ACTION


def test_must_understand_fault_lists_not_understood_blocks() -> None:
    root = _parse(build_fault(SoapFault("MustUnderstand", "mu", not_understood=["{urn:x}A"])))
    (block,) = root.findall("env:Header/env:NotUnderstood", NS)
    prefix, _, local = block.get("qname", "").partition(":")
    assert (block.nsmap[prefix], local) == ("urn:x", "A")


@pytest.mark.parametrize(
    ("code", "status"),
    [("Sender", 400), ("VersionMismatch", 400), ("MustUnderstand", 400), ("Receiver", 500)],
)
def test_fault_http_status(code: str, status: int) -> None:
    assert SoapFault(code, "x").http_status == status  # type: ignore[arg-type]
