"""A small test identity provider: signed SAML 2.0 assertions with the XSPA attributes XUA
(ITI-40) expects, for test days and the tests (``xds xua issue``).

The assertion is signed with an enveloped XML-DSig signature (RSA-SHA256, SHA-256, exclusive
c14n) whose one Reference is ``#ID``, placed right after Issuer as the SAML schema requires.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from lxml import etree
from signxml.signer import XMLSigner
from signxml.algorithms import CanonicalizationMethod, SignatureConstructionMethod

from xds.audit.events import CodedValue

from .saml import (
    ATTR_ORGANIZATION, ATTR_ORGANIZATION_ID, ATTR_PURPOSE_OF_USE, ATTR_RESOURCE_ID, ATTR_ROLE,
    ATTR_SUBJECT_ID, CM_BEARER, DS, HL7, SAML2, XSI, format_instant, saml,
)

__all__ = ["DEFAULT_ISSUER", "issue_assertion", "parse_code"]

DEFAULT_ISSUER = "urn:xds:xua:test-idp"
_NAME_ID_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
_AUTHN_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def parse_code(text: str) -> CodedValue:
    """``code^codeSystem^displayName`` (the last two optional) as a CodedValue."""
    code, _, rest = text.partition("^")
    system, _, display = rest.partition("^")
    if not code.strip():
        raise ValueError(f"a code is code^codeSystem^displayName, not {text!r}")
    return CodedValue(code.strip(), system.strip(), display.strip())


def issue_assertion(
    key_pem: bytes,
    cert_pem: bytes,
    *,
    subject: str,
    audience: str,
    issuer: str = DEFAULT_ISSUER,
    user_name: str = "",
    organization: str = "",
    organization_id: str = "",
    roles: Sequence[CodedValue] = (),
    purposes: Sequence[CodedValue] = (),
    patient: str = "",
    minutes: float = 5.0,
    not_before: float | None = None,
    not_on_or_after: float | None = None,
    assertion_id: str | None = None,
    confirmation: str = CM_BEARER,
) -> bytes:
    """A signed saml2:Assertion for ``subject`` (NameID; also subject-id unless ``user_name``),
    valid from ``not_before`` (default now) to ``not_on_or_after`` (default + ``minutes``).

    Times are seconds since the epoch; an empty ``audience`` leaves AudienceRestriction out;
    ``confirmation`` is the SubjectConfirmation method (bearer).
    """
    now = time.time()
    start = now if not_before is None else not_before
    end = start + minutes * 60 if not_on_or_after is None else not_on_or_after
    assertion_id = assertion_id or f"_{uuid.uuid4()}"
    root = etree.Element(saml("Assertion"), nsmap={"saml2": SAML2},
                         ID=assertion_id, IssueInstant=format_instant(now), Version="2.0")
    etree.SubElement(root, saml("Issuer")).text = issuer
    # signxml replaces this placeholder, so the signature sits where the schema wants it.
    etree.SubElement(root, f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS})
    subject_el = etree.SubElement(root, saml("Subject"))
    etree.SubElement(subject_el, saml("NameID"), Format=_NAME_ID_FORMAT).text = subject
    etree.SubElement(subject_el, saml("SubjectConfirmation"), Method=confirmation)
    conditions = etree.SubElement(root, saml("Conditions"), NotBefore=format_instant(start),
                                  NotOnOrAfter=format_instant(end))
    if audience:
        restriction = etree.SubElement(conditions, saml("AudienceRestriction"))
        etree.SubElement(restriction, saml("Audience")).text = audience
    authn = etree.SubElement(root, saml("AuthnStatement"), AuthnInstant=format_instant(now))
    context = etree.SubElement(authn, saml("AuthnContext"))
    etree.SubElement(context, saml("AuthnContextClassRef")).text = _AUTHN_CONTEXT
    _attributes(root, user_name or subject, organization, organization_id, roles, purposes,
                patient)
    signer = XMLSigner(method=SignatureConstructionMethod.enveloped,
                       signature_algorithm="rsa-sha256", digest_algorithm="sha256",
                       c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = signer.sign(root, key=key_pem, cert=cert_pem.decode("ascii"),
                         reference_uri="#" + assertion_id, id_attribute="ID")
    return etree.tostring(signed)


def _attributes(root: etree._Element, user_name: str, organization: str, organization_id: str,
                roles: Sequence[CodedValue], purposes: Sequence[CodedValue],
                patient: str) -> None:
    statement = etree.SubElement(root, saml("AttributeStatement"))
    for name, value in ((ATTR_SUBJECT_ID, user_name), (ATTR_ORGANIZATION, organization),
                        (ATTR_ORGANIZATION_ID, organization_id), (ATTR_RESOURCE_ID, patient)):
        if value:
            attribute = etree.SubElement(statement, saml("Attribute"), Name=name)
            etree.SubElement(attribute, saml("AttributeValue")).text = value
    for name, element, codes in ((ATTR_ROLE, "Role", roles),
                                 (ATTR_PURPOSE_OF_USE, "PurposeOfUse", purposes)):
        if codes:
            attribute = etree.SubElement(statement, saml("Attribute"), Name=name)
            for code in codes:
                _coded_value(etree.SubElement(attribute, saml("AttributeValue")), element, code)


def _coded_value(value: etree._Element, element: str, code: CodedValue) -> None:
    # XSPA: an HL7 v3 CE element (hl7:Role, hl7:PurposeOfUse) inside the AttributeValue.
    coded = etree.SubElement(value, f"{{{HL7}}}{element}", nsmap={"hl7": HL7, "xsi": XSI},
                             code=code.code)
    coded.set(f"{{{XSI}}}type", "hl7:CE")
    if code.system:
        coded.set("codeSystem", code.system)
    if code.display:
        coded.set("displayName", code.display)
