"""Helpers of the XUA tests: an IdP, SOAP requests carrying wsse:Security, fault subcodes, and
assertions tampered with the way attackers do (signature wrapping, edited values)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from lxml import etree
from sqlalchemy import Engine, func, select

from tests import soapclient
from tests.server import running_server
from xds.audit.events import CodedValue
from xds.config import Settings
from xds.security.certs import Issued, issue, make_ca
from xds.security.idp import issue_assertion
from xds.store import tables

__all__ = [
    "AUDIENCE", "WSSE", "SAML2", "DS", "ROLE", "PURPOSE", "Idp", "Server", "serve", "new_idp",
    "security", "request", "subcode", "entries", "alerts", "unsigned", "with_name_id",
]

AUDIENCE = "urn:xds:test:audience"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
ROLE = CodedValue("46255001", "2.16.840.1.113883.6.96", "Pharmacist")
PURPOSE = CodedValue("TREATMENT", "2.16.840.1.113883.3.18.7.1", "Treatment")
_S = f"{{{soapclient.NS_SOAP}}}"


@dataclass(frozen=True, slots=True)
class Idp:
    """An identity provider: its key pair, and the certificate file a server trusts."""

    issued: Issued
    cert_path: Path

    def assertion(self, **options: object) -> bytes:
        """A fresh signed assertion for alice (a new ID each time); ``options`` override."""
        kwargs: dict[str, object] = {"subject": "alice", "audience": AUDIENCE,
                                     "user_name": "Alice Smith", "roles": [ROLE],
                                     "purposes": [PURPOSE], "organization": "Clinic",
                                     "organization_id": "urn:oid:1.2.3.4"}
        kwargs.update(options)
        return issue_assertion(self.issued.key_pem, self.issued.cert_pem, **kwargs)  # type: ignore[arg-type]


def new_idp(directory: Path, name: str = "xua idp") -> Idp:
    """A new CA and an IdP signing certificate issued by it, written to ``directory``."""
    issued = issue(make_ca(f"{name} CA"), name, server=False)
    directory.mkdir(parents=True, exist_ok=True)
    issued.write(directory / "idp.pem", directory / "idp-key.pem")
    return Idp(issued, directory / "idp.pem")


@dataclass(frozen=True, slots=True)
class Server:
    """A running app: its base URL, registry URL, database and settings."""

    base: str
    engine: Engine
    settings: Settings

    @property
    def registry(self) -> str:
        return self.base + "/xds/registry"


@contextmanager
def serve(directory: Path, mode: str, idp: Idp) -> Iterator[Server]:
    """The whole app on SQLite with XUA ``mode`` trusting ``idp`` for ``AUDIENCE``."""
    from xds.app import build_app
    from xds.store.db import open_engine

    settings = Settings(data_dir=directory, database_url=f"sqlite:///{directory}/xds.sqlite",
                        xua=mode, xua_idp_certs=str(idp.cert_path), xua_audience=AUDIENCE,
                        mllp_port=0, dicom_port=0, actors="registry")
    with running_server(build_app(settings)) as base:
        engine = open_engine(settings)
        try:
            yield Server(base, engine, settings)
        finally:
            engine.dispose()


def security(*assertions: bytes | etree._Element, must_understand: bool = False) -> etree._Element:
    """A wsse:Security header block holding ``assertions`` as they are (bytes not re-indented)."""
    block = etree.Element(f"{{{WSSE}}}Security", nsmap={"wsse": WSSE})
    if must_understand:
        block.set(_S + "mustUnderstand", "1")
    for assertion in assertions:
        block.append(etree.fromstring(assertion) if isinstance(assertion, bytes) else assertion)
    return block


def request(url: str, action: str, body: bytes | etree._Element,
            *headers: etree._Element) -> tuple[httpx.Response, etree._Element]:
    """POST ``body`` in a SOAP envelope with extra header ``headers``; the response and the
    first child of its Body."""
    env = etree.fromstring(soapclient.envelope(action, body))
    header = env.find(_S + "Header")
    assert header is not None
    header.extend(headers)
    resp = soapclient.post_raw(url, etree.tostring(env))
    return resp, soapclient.body_of(soapclient.parse_envelope(resp.content))


def subcode(resp: httpx.Response, body: etree._Element) -> str:
    """The Clark name of an env:Sender fault's Subcode (asserting HTTP 400 and env:Sender)."""
    assert resp.status_code == 400, resp.text
    assert body.tag == _S + "Fault", etree.tostring(body)
    assert body.findtext(f"{_S}Code/{_S}Value") == "env:Sender", etree.tostring(body)
    value = body.find(f"{_S}Code/{_S}Subcode/{_S}Value")
    assert value is not None, etree.tostring(body)
    prefix, _, local = (value.text or "").partition(":")
    return f"{{{value.nsmap[prefix]}}}{local}"


def entries(engine: Engine, patient_id: str) -> int:
    """How many DocumentEntries the registry holds for ``patient_id``."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.document_entry).where(
            tables.document_entry.c.patient_id == patient_id)).scalar_one())


def alerts(engine: Engine) -> int:
    """How many Security Alert (110113) audit records of an Authentication Decision (110143),
    the XUA kind, are in the outbox."""
    outbox = tables.audit_outbox
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.event_id == "110113", outbox.c.event_type == "110143")).scalar_one())


def unsigned(assertion: bytes) -> etree._Element:
    """``assertion`` with its ds:Signature removed."""
    root = etree.fromstring(assertion)
    for signature in root.findall(f"{{{DS}}}Signature"):
        root.remove(signature)
    return root


def with_name_id(assertion: bytes | etree._Element, name: str) -> etree._Element:
    """A copy of ``assertion`` naming another user (its signature left as it was)."""
    root = copy.deepcopy(assertion) if isinstance(assertion, etree._Element) \
        else etree.fromstring(assertion)
    name_id = root.find(f"{{{SAML2}}}Subject/{{{SAML2}}}NameID")
    assert name_id is not None
    name_id.text = name
    return root
