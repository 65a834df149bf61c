"""What a SOAP handler sees of the caller (``xds.audit.events.REQUEST``, in its worker thread),
XUA "off", and the assertion checks that need no server (holder-of-key, algorithms, skew)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests import soapclient
from tests.security.xua_support import (
    AUDIENCE, DS, PURPOSE, ROLE, WSSE, Idp, new_idp, request, security, subcode,
)
from tests.server import running_server
from xds.audit.events import REQUEST, Requestor
from xds.config import Settings
from xds.security.replay import ReplayCache
from xds.security.saml import CM_HOLDER_OF_KEY, CM_SENDER_VOUCHES
from xds.security.xua import XuaPolicy, check_assertion
from xds.soap import Operation, SoapEndpoint, SoapFault, SoapRequest, SoapResponse
from xds.store import tables
from xds.store.db import migrate, open_engine

ECHO = "urn:xds:test:echo"
_S = f"{{{soapclient.NS_SOAP}}}"


def _echo(_request: SoapRequest) -> SoapResponse:
    """Answers with the REQUEST context as the handler thread sees it."""
    info = REQUEST.get()
    answer = etree.Element("{urn:xds:test}Seen", present=str(info is not None))
    if info is not None:
        answer.set("client", info.client)
        answer.set("endpoint", info.endpoint)
        answer.set("client_endpoint", info.client_endpoint)
        if info.requestor is not None:
            who = info.requestor
            answer.set("user_id", who.user_id)
            answer.set("user_name", who.user_name)
            answer.set("organization", f"{who.organization}|{who.organization_id}")
            answer.set("roles", ";".join(f"{c.code}^{c.system}^{c.display}" for c in who.roles))
            answer.set("purposes", ";".join(f"{c.code}^{c.system}^{c.display}"
                                            for c in who.purpose_of_use))
    return SoapResponse(body=answer)


def _endpoint(tmp: Path, xua: XuaPolicy | None) -> SoapEndpoint:
    operation = Operation(handler=_echo, response_action=ECHO + "Response",
                          on_error=lambda exc: etree.Element("failed"))
    return SoapEndpoint({ECHO: operation}, wsdl=None, service_path="/echo",
                        max_envelope_bytes=1 << 20, spool_dir=tmp, xua=xua)


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Idp:
    return new_idp(tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="module")
def policy(idp: Idp) -> XuaPolicy:
    return XuaPolicy(mode="required", certs=(idp.issued.cert,), audience=AUDIENCE, skew=60)


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory, policy: XuaPolicy) -> Iterator[str]:
    with running_server(_endpoint(tmp_path_factory.mktemp("spool"), policy)) as base:
        yield base + "/echo"


@pytest.fixture(scope="module")
def echo_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(_endpoint(tmp_path_factory.mktemp("spool"),
                                  XuaPolicy(mode="off"))) as base:
        yield base + "/echo"


def test_handler_thread_sees_the_request_and_the_requestor(echo: str, idp: Idp) -> None:
    resp, seen = request(echo, ECHO, etree.Element("{urn:xds:test}Ping"),
                         security(idp.assertion()))
    assert resp.status_code == 200, resp.text
    assert seen.get("present") == "True"
    assert seen.get("client") == "127.0.0.1"
    assert seen.get("endpoint") == echo
    assert seen.get("client_endpoint") == ""  # anonymous ReplyTo is no endpoint
    # IPF's ATNA UserID: <SPProvidedID><NameID@Issuer>, here without SPProvidedID.
    assert seen.get("user_id") == "<alice@urn:xds:xua:test-idp>"
    assert seen.get("user_name") == "Alice Smith"
    assert seen.get("organization") == "Clinic|urn:oid:1.2.3.4"
    assert seen.get("roles") == f"{ROLE.code}^{ROLE.system}^{ROLE.display}"
    assert seen.get("purposes") == f"{PURPOSE.code}^{PURPOSE.system}^{PURPOSE.display}"


def test_reply_to_address_is_the_client_endpoint(echo_off: str) -> None:
    env = etree.fromstring(soapclient.envelope(ECHO, etree.Element("{urn:xds:test}Ping")))
    address = env.find(f"{_S}Header/{{{soapclient.NS_WSA}}}ReplyTo/{{{soapclient.NS_WSA}}}Address")
    assert address is not None
    address.text = "http://consumer.example/callback"
    resp = soapclient.post_raw(echo_off, etree.tostring(env))
    seen = soapclient.body_of(soapclient.parse_envelope(resp.content))
    assert seen.get("client_endpoint") == "http://consumer.example/callback", resp.text
    assert seen.get("user_id") is None


def test_off_understands_security_and_ignores_it(echo_off: str) -> None:
    garbage = security(etree.Element("{urn:example}NotAnAssertion"), must_understand=True)
    resp, seen = request(echo_off, ECHO, etree.Element("{urn:xds:test}Ping"), garbage)
    assert resp.status_code == 200, resp.text
    assert seen.get("present") == "True" and seen.get("user_id") is None


def test_without_xua_security_must_understand_faults(tmp_path: Path) -> None:
    with running_server(_endpoint(tmp_path, None)) as base:
        resp, body = request(base + "/echo", ECHO, etree.Element("{urn:xds:test}Ping"),
                             security(must_understand=True))
    assert resp.status_code == 400
    assert body.findtext(f"{_S}Code/{_S}Value") == "env:MustUnderstand"


def test_refused_request_never_reaches_the_handler(echo: str) -> None:
    resp, body = request(echo, ECHO, etree.Element("{urn:xds:test}Ping"))
    assert subcode(resp, body) == f"{{{WSSE}}}InvalidSecurity"
    assert "required" in (body.findtext(f"{_S}Reason/{_S}Text") or "")


def _check(policy: XuaPolicy, assertion: bytes | etree._Element,
           now: float | None = None) -> Requestor | None:
    return check_assertion([security(assertion)], policy, now=now)


def _fault(policy: XuaPolicy, assertion: bytes | etree._Element,
           now: float | None = None) -> SoapFault:
    with pytest.raises(SoapFault) as caught:
        _check(policy, assertion, now)
    assert caught.value.code == "Sender"
    return caught.value


def test_sender_vouches_is_accepted(policy: XuaPolicy, idp: Idp) -> None:
    requestor = _check(policy, idp.assertion(confirmation=CM_SENDER_VOUCHES))
    assert requestor is not None and requestor.user_id == "<alice@urn:xds:xua:test-idp>"


def test_holder_of_key_is_refused_clearly(policy: XuaPolicy, idp: Idp) -> None:
    fault = _fault(policy, idp.assertion(confirmation=CM_HOLDER_OF_KEY))
    assert fault.subcode == f"{{{WSSE}}}UnsupportedSecurityToken"
    assert "holder-of-key" in fault.reason


def test_other_signature_algorithm_is_unsupported(policy: XuaPolicy, idp: Idp) -> None:
    root = etree.fromstring(idp.assertion())
    method = root.find(f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
    assert method is not None
    method.set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    assert _fault(policy, root).subcode == f"{{{WSSE}}}UnsupportedAlgorithm"


def test_validity_window_honours_the_skew(policy: XuaPolicy, idp: Idp) -> None:
    start = time.time()
    assertion = idp.assertion(not_before=start, not_on_or_after=start + 300)
    assert _check(policy, assertion, now=start - 59) is not None
    assert _check(policy, assertion, now=start + 359) is not None
    assert "not valid before" in _fault(policy, assertion, now=start - 61).reason
    assert "expired" in _fault(policy, assertion, now=start + 360).reason


def test_optional_without_assertion_is_anonymous(idp: Idp) -> None:
    optional = XuaPolicy(mode="optional", certs=(idp.issued.cert,))
    assert check_assertion([], optional) is None
    assert check_assertion([security()], optional) is None


def test_schema_invalid_signature_is_a_refusal_not_a_crash(policy: XuaPolicy, idp: Idp) -> None:
    root = etree.fromstring(idp.assertion())
    signature = root.find(f"{{{DS}}}Signature")
    assert signature is not None
    etree.SubElement(signature, f"{{{DS}}}Bogus")
    fault = _fault(policy, root)
    assert fault.subcode == f"{{{WSSE}}}FailedAuthentication"
    assert "Bogus" in fault.reason


def test_replay_cache_remembers_ids_and_purges_expired_ones(tmp_path: Path) -> None:
    engine = open_engine(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/r.db"))
    try:
        migrate(engine)
        now = time.time()
        with engine.begin() as conn:
            conn.execute(tables.xua_assertion.insert().values(id="_old", expires=now - 1))
        cache = ReplayCache(engine)
        assert cache.first_use("_a", now + 300)
        assert not cache.first_use("_a", now + 300)
        assert not ReplayCache(engine).first_use("_a", now + 300)  # another worker
        with engine.connect() as conn:
            ids = set(conn.execute(tables.xua_assertion.select()).scalars())
        assert ids == {"_a"}
    finally:
        engine.dispose()


def test_policy_from_settings(tmp_path: Path, idp: Idp) -> None:
    engine = open_engine(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/p.db"))
    try:
        def make(**options: str) -> XuaPolicy:
            settings = Settings(data_dir=tmp_path, database_url="sqlite://", **options)  # type: ignore[arg-type]
            return XuaPolicy.from_settings(settings, engine)

        policy = make(xua="required", xua_idp_certs=f" {idp.cert_path} ,", xua_audience=AUDIENCE)
        assert policy.mode == "required" and policy.certs == (idp.issued.cert,)
        assert policy.audience == AUDIENCE and policy.replay is not None
        assert make().mode == "off"
        with pytest.raises(ValueError, match="xua_idp_certs"):
            make(xua="optional")
        with pytest.raises(ValueError, match="required, optional or off"):
            make(xua="sometimes")
    finally:
        engine.dispose()
