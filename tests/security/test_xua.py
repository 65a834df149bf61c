"""XUA (ITI-40) X-Service Provider end to end: real servers, real SOAP requests, signed SAML
assertions from the test IdP, and the attacks an X-Service Provider must refuse."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import select
from typer.testing import CliRunner

from tests import samples, soapclient
from tests.samples import APPROVED, quoted, quoted_list
from tests.security.xua_support import (
    AUDIENCE, DS, SAML2, WSSE, Idp, Server, alerts, entries, new_idp, request, security, serve,
    subcode, unsigned, with_name_id,
)
from xds.cli import app as cli
from xds.store import tables
from xds.store.patients import add_patient

INVALID_SECURITY = f"{{{WSSE}}}InvalidSecurity"
INVALID_TOKEN = f"{{{WSSE}}}InvalidSecurityToken"
FAILED = f"{{{WSSE}}}FailedAuthentication"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Idp:
    return new_idp(tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> Idp:
    """An identity provider the servers do not trust."""
    return new_idp(tmp_path_factory.mktemp("rogue"), "rogue idp")


@pytest.fixture(scope="module")
def required(tmp_path_factory: pytest.TempPathFactory, idp: Idp) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("required"), "required", idp) as server:
        yield server


@pytest.fixture(scope="module")
def optional(tmp_path_factory: pytest.TempPathFactory, idp: Idp) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("optional"), "optional", idp) as server:
        yield server


@pytest.fixture
def patient(required: Server) -> str:
    pid = samples.new_patient_id(required.settings.affinity_domain)
    add_patient(required.engine, pid)
    return pid


def _query(pid: str) -> etree._Element:
    return samples.stored_query("FindDocuments", [
        ("$XDSDocumentEntryPatientId", quoted(pid)),
        ("$XDSDocumentEntryStatus", quoted_list([APPROVED]))])


def _submit(server: Server, pid: str,
            *headers: etree._Element) -> tuple[httpx.Response, etree._Element]:
    return request(server.registry, soapclient.ITI42, samples.single_document_submission(pid),
                   *headers)


def _refused(server: Server, pid: str, expected: str, *headers: etree._Element) -> None:
    """An ITI-42 with ``headers`` is refused with ``expected`` and stores nothing."""
    resp, body = request(server.registry, soapclient.ITI42,
                         samples.single_document_submission(pid), *headers)
    assert subcode(resp, body) == expected
    assert entries(server.engine, pid) == 0


def test_valid_assertion_is_answered_and_stored(required: Server, idp: Idp, patient: str) -> None:
    resp, body = _submit(required, patient, security(idp.assertion()))
    assert resp.status_code == 200, resp.text
    assert soapclient.status(body) == soapclient.SUCCESS, soapclient.registry_response_errors(body)
    assert entries(required.engine, patient) == 1
    resp2, answer = request(required.registry, soapclient.ITI18, _query(patient),
                            security(idp.assertion()))
    assert resp2.status_code == 200
    assert soapclient.status(answer) == soapclient.SUCCESS
    assert len(answer.findall(f".//{{{samples.NS_RIM}}}ExtrinsicObject")) == 1
    # Both audit records name the user: UserID <NameID@Issuer>, name and organisation, the
    # role as RoleIDCode, and the purpose of use.
    for event_type in ("ITI-42", "ITI-18"):
        message = _audit_message(required, event_type, patient)
        humans = [p for p in message.iter("ActiveParticipant")
                  if p.get("UserID", "").startswith("<alice@")]
        assert len(humans) == 1, etree.tostring(message)
        assert humans[0].get("UserIsRequestor") == "true"
        assert humans[0].get("UserName") == "Alice Smith (Clinic; urn:oid:1.2.3.4)"
        role = humans[0].find("RoleIDCode")
        assert role is not None and (role.get("csd-code"), role.get("codeSystemName")) == (
            "46255001", "2.16.840.1.113883.6.96")
        purpose = message.find("EventIdentification/PurposeOfUse")
        assert purpose is not None and purpose.get("csd-code") == "TREATMENT"


def _audit_message(server: Server, event_type: str, pid: str) -> etree._Element:
    outbox = tables.audit_outbox.c
    with server.engine.connect() as conn:
        xml = conn.execute(select(outbox.message).where(
            outbox.event_type == event_type, outbox.patient == pid)).scalar_one()
    return etree.fromstring(xml.encode())


def test_must_understand_security_is_accepted(required: Server, idp: Idp, patient: str) -> None:
    resp, body = _submit(required, patient, security(idp.assertion(), must_understand=True))
    assert soapclient.status(body) == soapclient.SUCCESS, resp.text
    assert entries(required.engine, patient) == 1


def test_missing_assertion_is_refused_when_required(required: Server, patient: str) -> None:
    _refused(required, patient, INVALID_SECURITY)
    _refused(required, patient, INVALID_SECURITY, security())


def test_missing_assertion_is_anonymous_when_optional(optional: Server) -> None:
    resp, answer = request(optional.registry, soapclient.ITI18,
                           _query(samples.new_patient_id()))
    assert resp.status_code == 200, resp.text
    assert soapclient.status(answer) == soapclient.SUCCESS


def test_bad_assertion_is_refused_even_when_optional(optional: Server, idp: Idp) -> None:
    resp, body = request(optional.registry, soapclient.ITI18, _query(samples.new_patient_id()),
                         security(unsigned(idp.assertion())))
    assert subcode(resp, body) == INVALID_TOKEN


def test_unsigned_assertion(required: Server, idp: Idp, patient: str) -> None:
    _refused(required, patient, INVALID_TOKEN, security(unsigned(idp.assertion())))


def test_untrusted_identity_provider(required: Server, rogue: Idp, patient: str) -> None:
    _refused(required, patient, FAILED, security(rogue.assertion()))


@pytest.mark.parametrize("edit", [
    lambda a: a.replace(b">alice</saml2:NameID>", b">alicf</saml2:NameID>"),
    lambda a: a.replace(b'code="46255001"', b'code="46255002"'),
    lambda a: a.replace(b">Clinic<", b">Clinix<"),
], ids=["name-id", "role-code", "organization"])
def test_one_changed_byte_breaks_the_signature(required: Server, idp: Idp, patient: str,
                                               edit: Callable[[bytes], bytes]) -> None:
    original = idp.assertion()
    tampered = edit(original)
    assert tampered != original and len(tampered) == len(original)
    _refused(required, patient, FAILED, security(tampered))


def test_expired_assertion(required: Server, idp: Idp, patient: str) -> None:
    now = time.time()
    old = idp.assertion(not_before=now - 3600, not_on_or_after=now - 120)
    _refused(required, patient, FAILED, security(old))


def test_expired_within_clock_skew_is_accepted(required: Server, idp: Idp, patient: str) -> None:
    now = time.time()
    late = idp.assertion(not_before=now - 600, not_on_or_after=now - 20)
    resp, body = _submit(required, patient, security(late))
    assert soapclient.status(body) == soapclient.SUCCESS, resp.text


def test_not_yet_valid_assertion(required: Server, idp: Idp, patient: str) -> None:
    soon = idp.assertion(not_before=time.time() + 600)
    _refused(required, patient, FAILED, security(soon))


def test_assertion_for_another_audience(required: Server, idp: Idp, patient: str) -> None:
    _refused(required, patient, FAILED, security(idp.assertion(audience="urn:other:service")))
    _refused(required, patient, FAILED, security(idp.assertion(audience="")))


def test_replayed_assertion(required: Server, idp: Idp, patient: str) -> None:
    assertion = idp.assertion()
    resp, body = request(required.registry, soapclient.ITI18, _query(patient),
                         security(assertion))
    assert soapclient.status(body) == soapclient.SUCCESS, resp.text
    _refused(required, patient, FAILED, security(assertion))


def test_second_assertion_beside_the_signed_one(required: Server, idp: Idp,
                                                patient: str) -> None:
    signed = idp.assertion()
    evil = with_name_id(unsigned(signed), "mallory")
    evil.set("ID", "_evil")
    _refused(required, patient, INVALID_TOKEN, security(signed, evil))
    _refused(required, patient, INVALID_TOKEN, security(evil, idp.assertion()))


def test_signed_assertion_moved_to_another_header(required: Server, idp: Idp,
                                                  patient: str) -> None:
    # Classic wrapping: the evil assertion takes the signed one's place (same ID) and the signed
    # one hides in an unknown header block, where a naive ID lookup would still find it.
    signed = etree.fromstring(idp.assertion())
    evil = with_name_id(unsigned(etree.tostring(signed)), "mallory")
    wrapper = etree.Element("{urn:example:attack}Wrapper")
    wrapper.append(signed)
    _refused(required, patient, INVALID_TOKEN, security(evil), wrapper)


def test_signed_assertion_moved_into_the_evil_signature(required: Server, idp: Idp,
                                                        patient: str) -> None:
    signed = etree.fromstring(idp.assertion())
    evil = with_name_id(signed, "mallory")
    evil_signature = evil.find(f"{{{DS}}}Signature")
    assert evil_signature is not None
    obj = etree.SubElement(evil_signature, f"{{{DS}}}Object")
    obj.append(signed)
    _refused(required, patient, INVALID_TOKEN, security(evil))


def test_signed_assertion_moved_into_the_body(required: Server, idp: Idp, patient: str) -> None:
    # Only one assertion is left in the header: the evil one, carrying the original signature
    # over its own ID; the signed original sits in the body, out of the header's reach.
    signed = etree.fromstring(idp.assertion())
    evil = with_name_id(signed, "mallory")
    submission = samples.single_document_submission(patient)
    submission.append(signed)
    resp, body = request(required.registry, soapclient.ITI42, submission, security(evil))
    assert subcode(resp, body) == FAILED
    assert entries(required.engine, patient) == 0


def test_reference_to_another_element_is_refused(required: Server, idp: Idp,
                                                 patient: str) -> None:
    signed = etree.fromstring(idp.assertion())
    signed.set("ID", "_renamed")
    _refused(required, patient, INVALID_TOKEN, security(signed))


def test_refusal_writes_a_security_alert(required: Server, patient: str) -> None:
    before = alerts(required.engine)
    _refused(required, patient, INVALID_SECURITY)
    deadline = time.monotonic() + 5
    while alerts(required.engine) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alerts(required.engine) == before + 1


def test_cli_issued_assertion_is_accepted(required: Server, idp: Idp, patient: str,
                                          tmp_path: Path) -> None:
    out = tmp_path / "assertion.xml"
    key = idp.cert_path.with_name("idp-key.pem")
    result = CliRunner().invoke(cli, [
        "xua", "issue", "--key", str(key), "--cert", str(idp.cert_path), "--subject", "bob",
        "--role", "46255001^2.16.840.1.113883.6.96^Pharmacist",
        "--purpose", "TREATMENT^2.16.840.1.113883.3.18.7.1^Treatment",
        "--audience", AUDIENCE, "--organization", "Clinic", "--minutes", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assertion = out.read_bytes()
    assert etree.fromstring(assertion).tag == f"{{{SAML2}}}Assertion"
    resp, body = _submit(required, patient, security(assertion))
    assert soapclient.status(body) == soapclient.SUCCESS, resp.text
    assert entries(required.engine, patient) == 1


def test_cli_refuses_a_malformed_code(idp: Idp, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [
        "xua", "issue", "--key", str(idp.cert_path.with_name("idp-key.pem")),
        "--cert", str(idp.cert_path), "--subject", "bob", "--role", "^system",
        "--audience", AUDIENCE, "--out", str(tmp_path / "a.xml")])
    assert result.exit_code == 1
    assert not (tmp_path / "a.xml").exists()
