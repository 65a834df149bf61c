"""XUA (ITI-40) X-Service Provider: the SAML 2.0 assertion in wsse:Security, checked before any
SOAP handler runs (digest §5.3; WS-Security 1.1 SOAP Message Security §12 for the fault codes).

Signature wrapping is closed three ways: the header may hold exactly one saml2:Assertion, a
direct child of wsse:Security; its one Reference must name its own ID; and everything after the
signature check is read from the XML signxml returns as signed, not from the received tree.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from cryptography import x509
from lxml import etree
from signxml.verifier import SignatureConfiguration, XMLVerifier
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import SignXMLException

from xds.audit.events import Requestor
from xds.soap.faults import SoapFault
from xds.soap.ns import ROLE_NEXT, ROLE_ULTIMATE_RECEIVER, SOAP12_ENV

from .replay import ReplayCache, ReplayClaim
from .saml import (
    CM_BEARER, CM_HOLDER_OF_KEY, CM_SENDER_VOUCHES, DS, EXC_C14N, WSSE, parse_instant,
    requestor_of, saml,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from xds.config import Settings

__all__ = [
    "XuaMode", "XuaPolicy", "SECURITY", "INVALID_SECURITY", "INVALID_SECURITY_TOKEN",
    "FAILED_AUTHENTICATION", "UNSUPPORTED_SECURITY_TOKEN", "UNSUPPORTED_ALGORITHM",
    "check_assertion", "accept_assertion", "authenticate", "settle",
]

log = logging.getLogger("xds.security.xua")

XuaMode = Literal["required", "optional", "off"]

#: The header block XUA reads (and that the SOAP layer then understands).
SECURITY = f"{{{WSSE}}}Security"
#: WS-Security 1.1 §12 fault subcodes (env:Sender).
INVALID_SECURITY = f"{{{WSSE}}}InvalidSecurity"
INVALID_SECURITY_TOKEN = f"{{{WSSE}}}InvalidSecurityToken"
FAILED_AUTHENTICATION = f"{{{WSSE}}}FailedAuthentication"
UNSUPPORTED_SECURITY_TOKEN = f"{{{WSSE}}}UnsupportedSecurityToken"
UNSUPPORTED_ALGORITHM = f"{{{WSSE}}}UnsupportedAlgorithm"

_RSA_SHA256 = SignatureMethod.RSA_SHA256.value
_SHA256 = DigestAlgorithm.SHA256.value
_EXPECT = SignatureConfiguration(
    location="./", expect_references=1,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
)
_ROLE = f"{{{SOAP12_ENV}}}role"
_OUR_ROLES = (None, "", ROLE_NEXT, ROLE_ULTIMATE_RECEIVER)
#: The replay cache's key column length (xua_assertion.id).
_MAX_ID = 256


@dataclass(frozen=True, slots=True)
class XuaPolicy:
    """What the X-Service Provider accepts; built once per application."""

    mode: XuaMode
    certs: tuple[x509.Certificate, ...] = ()
    #: The Audience an assertion must name; empty accepts any.
    audience: str = ""
    skew: float = 60.0
    replay: ReplayCache | None = None
    #: For the Security Alert audit of refusals (None: log only).
    engine: Engine | None = None
    settings: Settings | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> XuaPolicy:
        """The policy of ``settings.xua*``; ValueError for an unknown mode or a checking mode
        without a trusted identity provider certificate."""
        mode = settings.xua.strip().lower() or "off"
        if mode not in ("required", "optional", "off"):
            raise ValueError(f"xua must be required, optional or off, not {settings.xua!r}")
        certs = tuple(c for p in settings.xua_idp_certs.split(",") if p.strip()
                      for c in x509.load_pem_x509_certificates(Path(p.strip()).read_bytes()))
        if mode != "off" and not certs:
            raise ValueError(f"xua={mode} needs xua_idp_certs (trusted IdP certificates)")
        return cls(mode=cast(XuaMode, mode), certs=certs, audience=settings.xua_audience.strip(),
                   skew=settings.xua_skew_seconds, replay=ReplayCache(engine), engine=engine,
                   settings=settings)

    def authenticate(self, headers: Sequence[etree._Element], *, peer: str, endpoint: str,
                     service: str = "") -> tuple[Requestor | None, ReplayClaim | None]:
        """``authenticate`` with this policy (what the SOAP endpoint calls)."""
        return authenticate(headers, self, peer=peer, endpoint=endpoint, service=service)

    def settle(self, claim: ReplayClaim, *, peer: str, endpoint: str) -> None:
        """``settle`` with this policy (what the SOAP endpoint calls after the request)."""
        settle(claim, self, peer=peer, endpoint=endpoint)


def authenticate(headers: Sequence[etree._Element], policy: XuaPolicy, *, peer: str,
                 endpoint: str, service: str = "") -> tuple[Requestor | None, ReplayClaim | None]:
    """``accept_assertion``, with a Security Alert audit event for every refusal."""
    try:
        return accept_assertion(headers, policy, service=service)
    except SoapFault as fault:
        _refused(policy, fault, peer=peer, endpoint=endpoint)
        raise


def settle(claim: ReplayClaim, policy: XuaPolicy, *, peer: str, endpoint: str) -> None:
    """After the request: raise the replay fault (and audit it) when a concurrent request
    used the assertion first (``ReplayClaim.settle``)."""
    if not claim.settle():
        fault = _replayed(claim.key)
        _refused(policy, fault, peer=peer, endpoint=endpoint)
        raise fault


def _refused(policy: XuaPolicy, fault: SoapFault, *, peer: str, endpoint: str) -> None:
    log.warning("XUA refused request from %s to %s: %s", peer, endpoint, fault.reason)
    _security_alert(policy, peer=peer, endpoint=endpoint, reason=fault.reason)


def check_assertion(headers: Sequence[etree._Element], policy: XuaPolicy,
                    now: float | None = None, service: str = "") -> Requestor | None:
    """``accept_assertion`` with the assertion ID recorded in the replay cache at once."""
    requestor, claim = accept_assertion(headers, policy, now, service)
    if claim is not None and not claim.settle():
        raise _replayed(claim.key)
    return requestor


def accept_assertion(headers: Sequence[etree._Element], policy: XuaPolicy,
                     now: float | None = None, service: str = ""
                     ) -> tuple[Requestor | None, ReplayClaim | None]:
    """The requestor named by the assertion among the SOAP header blocks ``headers``, and the
    claim that records its ID in the replay cache (``xds.security.replay``).

    (None, None) when there is none and ``policy.mode`` allows it (optional) or XUA is off.
    Raises ``SoapFault`` (env:Sender, a wsse subcode) when the assertion is missing although
    required, malformed, not signed by a trusted IdP, outside its validity, for another
    audience, or already used. Each X-Service Provider keeps its own replay memory: ``service``
    (the endpoint's path) scopes it, so an assertion the repository propagates on its ITI-42
    is not taken for a replay by a registry sharing the database.
    """
    if policy.mode == "off":
        return None, None
    assertion = _the_assertion(headers, required=policy.mode == "required")
    if assertion is None:
        return None, None
    signed = _verified(assertion, policy.certs)
    instant = time.time() if now is None else now
    expires = _check_conditions(signed, policy, instant)
    _check_confirmation(signed, policy, instant)
    if not _text(signed.find(f"{saml('Subject')}/{saml('NameID')}")):
        raise _invalid("the assertion has no Subject/NameID")
    requestor = requestor_of(signed)
    if policy.replay is None:
        return requestor, None
    key = f"{service} {signed.get('ID', '')}" if service else signed.get("ID", "")
    claim = ReplayClaim(policy.replay, key[:_MAX_ID], expires)
    if policy.replay.seen(claim.key):
        raise _replayed(claim.key)
    return requestor, claim


def _replayed(key: str) -> SoapFault:
    return _failed(f"assertion {key.rpartition(' ')[2]} was already used (replay)")


def propagated(headers: Sequence[etree._Element]) -> bytes:
    """The assertion of an accepted request, serialised for the services it calls (the
    repository's ITI-42); its enveloped signature survives serialisation (exclusive c14n)."""
    assertion = _the_assertion(headers, required=False)
    return etree.tostring(assertion) if assertion is not None else b""


def _the_assertion(headers: Sequence[etree._Element], *, required: bool) -> etree._Element | None:
    blocks = [h for h in headers if h.tag == SECURITY and h.get(_ROLE) in _OUR_ROLES]
    if len(blocks) > 1:
        raise SoapFault("Sender", "more than one wsse:Security header for this node",
                        subcode=INVALID_SECURITY)
    found = [a for h in headers for a in h.iter(saml("Assertion"))]
    if len(found) > 1:
        raise _invalid(f"{len(found)} saml2:Assertion elements in the SOAP header; exactly one "
                       "is allowed (signature wrapping refused)")
    if any(True for h in headers for _ in h.iter(saml("EncryptedAssertion"))):
        raise SoapFault("Sender", "encrypted assertions are not supported",
                        subcode=UNSUPPORTED_SECURITY_TOKEN)
    if not found or not blocks:
        if required:
            what = "no wsse:Security header" if not blocks else "no saml2:Assertion in it"
            raise SoapFault("Sender", f"an XUA identity assertion is required: {what}",
                            subcode=INVALID_SECURITY)
        return None
    (assertion,) = found
    if assertion.getparent() is not blocks[0]:
        raise _invalid("the saml2:Assertion must be a direct child of wsse:Security")
    return assertion


def _verified(assertion: etree._Element, certs: Sequence[x509.Certificate]) -> etree._Element:
    """The signed Assertion as signxml returns it, after checking the signature's form."""
    assertion_id = assertion.get("ID", "")
    if not assertion_id or len(assertion_id) > _MAX_ID:
        raise _invalid("the assertion has no ID (or one longer than 256 characters)")
    signatures = assertion.findall(f"{{{DS}}}Signature")
    if not signatures:
        raise _invalid("the assertion is not signed")
    if len(signatures) > 1:
        raise _invalid("the assertion carries more than one ds:Signature")
    references = signatures[0].findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    if len(references) != 1 or references[0].get("URI") != "#" + assertion_id:
        raise _invalid(f"the signature must have one Reference, to #{assertion_id}")
    _check_algorithms(signatures[0])
    errors: list[str] = []
    for cert in certs:
        try:
            result = XMLVerifier().verify(assertion, x509_cert=cert, id_attribute="ID",
                                          expect_config=_EXPECT, parser=_signxml_parser())
        except (SignXMLException, etree.LxmlError, ValueError) as exc:
            # DocumentInvalid (lxml) when the ds:Signature breaks the XML-DSig schema.
            errors.append(str(exc) or type(exc).__name__)
            continue
        signed = getattr(result, "signed_xml", None)
        if signed is None or signed.tag != saml("Assertion") or signed.get("ID") != assertion_id:
            raise _invalid("the signature does not cover the assertion itself")
        return cast(etree._Element, signed)
    raise _failed("the assertion signature does not verify with a trusted identity provider "
                  f"certificate ({errors[-1] if errors else 'none configured'})")


def _signxml_parser() -> etree.XMLParser:
    # signxml re-parses what it verifies; it gets the same hardening as xds.soap.xmlparse.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False)


def _check_algorithms(signature: etree._Element) -> None:
    signed_info = f"{{{DS}}}SignedInfo"
    c14n = signature.find(f"{signed_info}/{{{DS}}}CanonicalizationMethod")
    method = signature.find(f"{signed_info}/{{{DS}}}SignatureMethod")
    digest = signature.find(f"{signed_info}/{{{DS}}}Reference/{{{DS}}}DigestMethod")
    found = {"canonicalization": c14n.get("Algorithm") if c14n is not None else None,
             "signature": method.get("Algorithm") if method is not None else None,
             "digest": digest.get("Algorithm") if digest is not None else None}
    wanted = {"canonicalization": EXC_C14N, "signature": _RSA_SHA256, "digest": _SHA256}
    for what, algorithm in found.items():
        if algorithm != wanted[what]:
            raise SoapFault("Sender", f"{what} algorithm {algorithm} is not supported "
                            f"(XUA: {wanted[what]})", subcode=UNSUPPORTED_ALGORITHM)


def _check_conditions(signed: etree._Element, policy: XuaPolicy, now: float) -> float:
    """Version, Issuer, validity window and audience; returns the expiry for the replay cache."""
    if signed.get("Version") != "2.0":
        raise _invalid(f"assertion Version {signed.get('Version')!r}; SAML 2.0 is required")
    if not _text(signed.find(saml("Issuer"))):
        raise _invalid("the assertion has no Issuer")
    conditions = signed.find(saml("Conditions"))
    if conditions is None or not conditions.get("NotBefore") or not conditions.get("NotOnOrAfter"):
        raise _invalid("the assertion needs Conditions with NotBefore and NotOnOrAfter")
    try:
        not_before = parse_instant(conditions.get("NotBefore", ""))
        not_on_or_after = parse_instant(conditions.get("NotOnOrAfter", ""))
    except ValueError:
        raise _invalid("Conditions NotBefore/NotOnOrAfter is not an xs:dateTime") from None
    if now < not_before - policy.skew:
        raise _failed(f"the assertion is not valid before {conditions.get('NotBefore')}")
    if now >= not_on_or_after + policy.skew:
        raise _failed(f"the assertion expired at {conditions.get('NotOnOrAfter')}")
    if policy.audience:
        for restriction in conditions.iterfind(saml("AudienceRestriction")):
            # Each AudienceRestriction must hold; within one, any Audience matches.
            if policy.audience not in {_text(a) for a in restriction.iter(saml("Audience"))}:
                raise _failed(f"the assertion is not for audience {policy.audience}")
        if conditions.find(saml("AudienceRestriction")) is None:
            raise _failed(f"the assertion has no AudienceRestriction for {policy.audience}")
    return not_on_or_after + policy.skew


def _check_confirmation(signed: etree._Element, policy: XuaPolicy, now: float) -> None:
    confirmations = signed.findall(f"{saml('Subject')}/{saml('SubjectConfirmation')}")
    methods = {c.get("Method") for c in confirmations}
    usable = [c for c in confirmations if c.get("Method") in (CM_BEARER, CM_SENDER_VOUCHES)]
    if not usable:
        if CM_HOLDER_OF_KEY in methods:
            raise SoapFault("Sender", "holder-of-key subject confirmation is not supported here; "
                            "use bearer or sender-vouches", subcode=UNSUPPORTED_SECURITY_TOKEN)
        raise _invalid("the assertion has no bearer or sender-vouches SubjectConfirmation")
    for confirmation in usable:
        data = confirmation.find(saml("SubjectConfirmationData"))
        limit = data.get("NotOnOrAfter") if data is not None else None
        try:
            if limit is None or now < parse_instant(limit) + policy.skew:
                return
        except ValueError:
            raise _invalid("SubjectConfirmationData NotOnOrAfter is not an xs:dateTime") from None
    raise _failed("the subject confirmation has expired")


def _security_alert(policy: XuaPolicy, *, peer: str, endpoint: str, reason: str) -> None:
    # Auditing must never turn a refusal into a failure; the trail module may be absent.
    if policy.engine is None or policy.settings is None:
        return
    try:
        trail = importlib.import_module("xds.audit.trail")
        trail.security_alert(policy.engine, policy.settings, peer=peer, endpoint=endpoint,
                             reason=f"XUA assertion refused: {reason}", transaction=None,
                             alert_type=trail.AUTHENTICATION_DECISION)
    except (ImportError, AttributeError) as exc:
        log.warning("no Security Alert audit for the XUA refusal (%s)", exc)
    except Exception:
        log.exception("Security Alert audit of the XUA refusal failed")


def _invalid(reason: str) -> SoapFault:
    return SoapFault("Sender", reason, subcode=INVALID_SECURITY_TOKEN)


def _failed(reason: str) -> SoapFault:
    return SoapFault("Sender", reason, subcode=FAILED_AUTHENTICATION)


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""
