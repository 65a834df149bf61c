"""Endpoint (read): the WADO-RS bases ImagingStudy resources point at.

Every Endpoint id resolves without a lookup table:

- this server's Imaging Document Source: its unique id (an OID), address ``<base>/dicomweb``;
- a configured source (``imaging_endpoints``, ``RetrieveLocationUID=URL``): that UID;
- a WADO-RS base taken from a KOS Retrieve URL: ``h``/``s`` (``http://``/``https://``) or
  ``w`` (any other text) followed by the rest in base64 over the FHIR id alphabet (``-`` and
  ``.`` for ``+`` and ``/``, no padding). At most 47 octets fit in a 64-character id; a longer
  address gets no Endpoint (the series then has no ``endpoint``).

OIDs are digits and dots only, so the encoded forms (starting with a letter) never clash.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from xds.fhir.context import FhirContext
from xds.fhir.errors import not_found
from xds.fhir.interactions import ResourceType
from xds.fhir.search import SearchSpec

__all__ = ["ENDPOINT", "endpoint_resource", "endpoint_id", "address_of", "configured",
           "own_endpoint_id", "wado_base"]

_STD = "+/"
_FHIR = "-."
_SCHEMES = {"h": "http://", "s": "https://"}
_FHIR_ID = re.compile(r"[A-Za-z0-9.\-]{1,64}")
_B64 = re.compile(r"[A-Za-z0-9.\-]*")


def wado_base(retrieve_url: str) -> str:
    """The WADO-RS base of a KOS Retrieve URL: the part before ``/studies/`` (all of it when
    it has none), without a trailing ``/``."""
    head, sep, _ = retrieve_url.partition("/studies/")
    return (head if sep else retrieve_url).rstrip("/")


def configured(ctx: FhirContext) -> dict[str, str]:
    """RetrieveLocationUID -> WADO-RS base from ``imaging_endpoints``."""
    found: dict[str, str] = {}
    for item in ctx.settings.imaging_endpoints.split(","):
        uid, sep, url = item.strip().partition("=")
        if sep and uid.strip() and url.strip():
            found[uid.strip()] = url.strip().rstrip("/")
    return found


def own_endpoint_id(ctx: FhirContext) -> str | None:
    """The Endpoint id of this server's WADO-RS (None without the imaging actor)."""
    return ctx.imaging.unique_id if ctx.imaging is not None else None


def _encode(address: str) -> str | None:
    flag, rest = "w", address
    for key, prefix in _SCHEMES.items():
        if address.startswith(prefix):
            flag, rest = key, address[len(prefix):]
    text = base64.b64encode(rest.encode()).decode().rstrip("=")
    packed = flag + text.translate(str.maketrans(_STD, _FHIR))
    return packed if len(packed) <= 64 else None


def _decode(resource_id: str) -> str | None:
    flag, text = resource_id[:1], resource_id[1:]
    if flag not in ("h", "s", "w") or not _B64.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        raw = base64.b64decode(text.translate(str.maketrans(_FHIR, _STD)) + "=" * (-len(text) % 4),
                               validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    address = _SCHEMES.get(flag, "") + raw
    if _encode(address) != resource_id or not re.fullmatch(r"https?://[^\s/]+\S*", address):
        return None
    return address


def endpoint_id(ctx: FhirContext, address: str) -> str | None:
    """The Endpoint id of a WADO-RS base (our own, a configured one, else its encoding)."""
    address = address.rstrip("/")
    if ctx.imaging is not None and address == ctx.imaging.dicomweb_url.rstrip("/"):
        return ctx.imaging.unique_id
    for uid, url in configured(ctx).items():
        if url == address and _FHIR_ID.fullmatch(uid):
            return uid
    return _encode(address)


def address_of(ctx: FhirContext, resource_id: str) -> str | None:
    """The WADO-RS base the Endpoint ``resource_id`` stands for, None when it names none."""
    if not _FHIR_ID.fullmatch(resource_id):
        return None
    if ctx.imaging is not None and resource_id == ctx.imaging.unique_id:
        return ctx.imaging.dicomweb_url
    if (url := configured(ctx).get(resource_id)) is not None:
        return url
    return _decode(resource_id)


def endpoint_resource(resource_id: str, address: str) -> dict[str, Any]:
    """The Endpoint resource of a WADO-RS base."""
    return {
        "resourceType": "Endpoint", "id": resource_id, "status": "active",
        "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/"
                           "endpoint-connection-type", "code": "dicom-wado-rs"},
        "name": "DICOM WADO-RS",
        "payloadType": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                     "endpoint-payload-type", "code": "none"}],
                         "text": "DICOM WADO-RS"}],
        "payloadMimeType": ["application/dicom"],
        "address": address,
    }


def read_endpoint(ctx: FhirContext, resource_id: str) -> dict[str, Any]:
    """The Endpoint ``resource_id`` (404 when it names no WADO-RS base)."""
    address = address_of(ctx, resource_id)
    if address is None:
        raise not_found(f"Endpoint/{resource_id} is not known")
    return endpoint_resource(resource_id, address)


ENDPOINT = ResourceType(
    spec=SearchSpec("Endpoint", ()), read=read_endpoint,
    documentation="The WADO-RS bases of ImagingStudy series: this server's (id = the Imaging "
                  "Document Source unique id), configured ones (id = RetrieveLocationUID) and "
                  "those of KOS Retrieve URLs (id = a reversible encoding of the address).")
