"""FHIR ids of the facade's resources, derived from what the store already keys by.

A Patient is one source identity (assigning authority + id), so its FHIR id is built from
both and parsed back without a lookup table:

- ``<value>-<oid>`` when the value is made of ``[A-Za-z0-9.-]`` (the readable form: the OID
  holds no ``-``, so the last ``-`` separates them), e.g. ``IHERED-994-1.3.6.1.4.1.21367.13.20.1000``;
- otherwise ``<base32 of value|oid>`` (lower case, no padding, so no ``-``).

Ids are at most 64 characters (FHIR ``id``); an identity too long for both forms has none.
"""

from __future__ import annotations

import base64
import binascii
import re

from xds.model.values import is_oid
from xds.mpi.model import PatientIdentifier

__all__ = ["patient_resource_id", "parse_patient_id", "identifier_system", "domain_of_system",
           "OID_URN"]

OID_URN = "urn:oid:"
_READABLE = re.compile(r"[A-Za-z0-9.\-]+")
_FHIR_ID = re.compile(r"[A-Za-z0-9.\-]{1,64}")


def patient_resource_id(pid: PatientIdentifier) -> str | None:
    """The Patient id of ``pid`` (None when no form fits in 64 characters)."""
    if _READABLE.fullmatch(pid.value):
        readable = f"{pid.value}-{pid.domain}"
        if len(readable) <= 64:
            return readable
    packed = base64.b32encode(f"{pid.value}|{pid.domain}".encode()).decode().rstrip("=").lower()
    return packed if len(packed) <= 64 else None


def parse_patient_id(resource_id: str) -> PatientIdentifier | None:
    """The identity a Patient id names, or None when it names none."""
    if not _FHIR_ID.fullmatch(resource_id):
        return None
    if "-" in resource_id:
        value, _, domain = resource_id.rpartition("-")
        return PatientIdentifier(domain, value) if value and is_oid(domain) else None
    try:
        text = base64.b32decode(resource_id.upper() + "=" * (-len(resource_id) % 8)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    value, sep, domain = text.rpartition("|")
    return PatientIdentifier(domain, value) if sep and value and is_oid(domain) else None


def identifier_system(domain: str) -> str:
    """The Identifier.system of an assigning authority OID."""
    return OID_URN + domain


def domain_of_system(system: str) -> str | None:
    """The OID of an Identifier.system ``urn:oid:<oid>`` (a bare OID is taken too)."""
    oid = system[len(OID_URN):] if system.startswith(OID_URN) else system
    return oid if is_oid(oid) else None
