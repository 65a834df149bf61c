"""The X-Service User's wsse:Security header (XUA, ITI-40): a timestamp and the signed assertion,
whose signature still verifies once it sits in an envelope built by each SOAP client."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from lxml import etree
from signxml.signer import XMLSigner
from signxml.verifier import XMLVerifier
from typer.testing import CliRunner

from xds.actions import Action
from xds.cli import app as cli
from xds.clients.imaging import retrieve_imaging_request
from xds.clients.retrieve import DocumentRequest, retrieve_request
from xds.clients.source import build_submission, provide_and_register_request
from xds.security.certs import Issued, issue, make_ca
from xds.security.credentials import Credentials
from xds.security.wsse import NS_SAML2, NS_WSSE, NS_WSU, security_header
from xds.soap.envelope import build_envelope
from xds.soap.ns import SOAP12_ENV
from xds.soap.xmlparse import parse_xml

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
URL = "https://127.0.0.1:8443/xds/repository"


@pytest.fixture(scope="module")
def idp() -> Issued:
    return issue(make_ca("idp CA"), "idp", server=False)


@pytest.fixture(scope="module")
def assertion(idp: Issued) -> bytes:
    """A signed assertion, indented: whitespace is part of what the signature covers."""
    unsigned = etree.fromstring(
        f'<saml2:Assertion xmlns:saml2="{NS_SAML2}" ID="_a1" Version="2.0" '
        'IssueInstant="2026-01-01T00:00:00Z">\n'
        '  <saml2:Issuer>urn:idp</saml2:Issuer>\n'
        '  <saml2:Subject>\n    <saml2:NameID>alice</saml2:NameID>\n  </saml2:Subject>\n'
        '</saml2:Assertion>')
    signed = XMLSigner(c14n_algorithm=EXC_C14N).sign(
        unsigned, key=idp.key_pem, cert=idp.cert_pem.decode(), reference_uri="_a1", id_attribute="ID")
    data: bytes = etree.tostring(signed)
    return data


def _security(envelope: bytes) -> etree._Element:
    root = parse_xml(envelope, max_bytes=10_000_000)
    found = root.find(f"{{{SOAP12_ENV}}}Header/{{{NS_WSSE}}}Security")
    assert found is not None, "no wsse:Security in the header"
    return found


def _assert_verifies(security: etree._Element, idp: Issued) -> None:
    found = security.find(f"{{{NS_SAML2}}}Assertion")
    assert found is not None
    XMLVerifier().verify(found, x509_cert=idp.cert_pem.decode(), id_attribute="ID")


def test_security_header_holds_a_timestamp_and_the_assertion(assertion: bytes,
                                                              idp: Issued) -> None:
    now = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
    body = etree.Element("{urn:test}Ping")
    envelope = build_envelope(body, action="urn:test:Ping",
                              headers=[security_header(assertion, now=now)])
    security = _security(envelope)
    assert [etree.QName(c).localname for c in security] == ["Timestamp", "Assertion"]
    timestamp = security[0]
    assert timestamp.findtext(f"{{{NS_WSU}}}Created") == "2026-03-04T05:06:07Z"
    assert timestamp.findtext(f"{{{NS_WSU}}}Expires") == "2026-03-04T05:11:07Z"
    assert timestamp.get(f"{{{NS_WSU}}}Id")
    _assert_verifies(security, idp)


def test_security_header_refuses_what_is_no_assertion() -> None:
    with pytest.raises(ValueError, match="saml2:Assertion"):
        security_header(b"<Assertion/>")
    with pytest.raises(ValueError, match="not a SAML assertion"):
        security_header(b"<!DOCTYPE x [<!ENTITY e 'boom'>]><x>&e;</x>")


def test_every_soap_client_sends_the_assertion(assertion: bytes, idp: Issued,
                                               tmp_path: Path) -> None:
    credentials = Credentials(saml=assertion)
    document = tmp_path / "note.txt"
    document.write_text("hello\n")
    iti41 = provide_and_register_request(
        URL, build_submission([document], "1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"), [document],
        credentials).root
    iti43 = retrieve_request(URL, [DocumentRequest("1.2.3", "1.2.3.4", None)], credentials)
    rad69 = retrieve_imaging_request(URL, "1.2.3", {"1.2": {"1.2.1": ["1.2.1.1"]}},
                                     credentials=credentials)
    for envelope in (iti41, iti43, rad69):
        _assert_verifies(_security(envelope), idp)
    assert b"Security" not in retrieve_request(URL, [DocumentRequest("1.2.3", "1.2.3.4", None)])
    assert Action.ProvideAndRegisterDocumentSet_b.encode() in iti41


def test_cli_refuses_a_saml_file_that_is_no_assertion(tmp_path: Path) -> None:
    bogus = tmp_path / "token.xml"
    bogus.write_text("<notSaml/>")
    result = CliRunner().invoke(cli, ["query", "get-documents", "urn:uuid:1", "--saml",
                                      str(bogus)])
    assert result.exit_code == 2
    assert "saml2:Assertion" in result.output
