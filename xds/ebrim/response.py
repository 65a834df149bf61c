"""Build RegistryResponse / AdhocQueryResponse (ITI TF-3 §4.2.4); render stored objects."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lxml import etree

from xds.ebrim.rim import RIM, Element, element, write_slot
from xds.ebrim.vocabulary import DE, FD, NS_QUERY, NS_RIM, NS_RS, SS, ResponseStatus
from xds.model.errors import RegistryError, Severity

__all__ = [
    "registry_response", "adhoc_query_response", "response_status", "render_stored",
    "object_ref",
]

_RS = f"{{{NS_RS}}}"
_QUERY = f"{{{NS_QUERY}}}"
_NSMAP = {"rs": NS_RS, "rim": NS_RIM, "query": NS_QUERY}
# Stored XML is our own output; parsing it needs no defences but must not resolve anything.
_STORED_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
_PATIENT_ID_SCHEMES = frozenset({DE.patientId, SS.patientId, FD.patientId})


def response_status(errors: Sequence[RegistryError], *, partial: bool = False) -> ResponseStatus:
    """Success with warnings only; Failure (or PartialSuccess when ``partial``) with any Error."""
    if any(e.severity == Severity.Error for e in errors):
        return ResponseStatus.PartialSuccess if partial else ResponseStatus.Failure
    return ResponseStatus.Success


def _error_list(parent: Element, errors: Sequence[RegistryError]) -> None:
    if not errors:
        return
    highest = Severity.Error if any(e.severity == Severity.Error for e in errors) else Severity.Warning
    error_list = etree.SubElement(parent, _RS + "RegistryErrorList", highestSeverity=highest)
    for err in errors:
        etree.SubElement(
            error_list, _RS + "RegistryError", errorCode=err.code, codeContext=err.context,
            location=err.location, severity=err.severity,
        )


def registry_response(
    errors: Sequence[RegistryError] = (), status: ResponseStatus | None = None
) -> Element:
    """``rs:RegistryResponse`` with ``errors``; status derived from them unless given."""
    root = etree.Element(
        _RS + "RegistryResponse", status=status or response_status(errors), nsmap=_NSMAP
    )
    _error_list(root, errors)
    return root


def adhoc_query_response(
    objects: Iterable[Element],
    errors: Sequence[RegistryError] = (),
    status: ResponseStatus | None = None,
) -> Element:
    """``query:AdhocQueryResponse``: errors first, then the (required) RegistryObjectList."""
    root = etree.Element(
        _QUERY + "AdhocQueryResponse", status=status or response_status(errors), nsmap=_NSMAP
    )
    _error_list(root, errors)
    object_list = etree.SubElement(root, RIM + "RegistryObjectList")
    object_list.extend(objects)
    return root


def object_ref(entry_uuid: str, home: str | None = None) -> Element:
    """``rim:ObjectRef`` for an ObjectRef query result."""
    return element("ObjectRef", id=entry_uuid, home=home)


def render_stored(
    xml: bytes, status: str, *, last_update_time: str | None = None, home: str | None = None,
    patient_id: str | None = None,
) -> Element:
    """A stored object's element with its current status (and Folder lastUpdateTime).

    ``patient_id`` relabels the patientId ExternalIdentifier of a DocumentEntry, SubmissionSet
    or Folder (the surviving id after a merge, ITI TF-2 §3.18.4.1.2.3.9); sourcePatientId and
    sourcePatientInfo stay as registered.
    """
    el = etree.fromstring(xml, _STORED_PARSER)
    el.set("status", status)
    if patient_id is not None:
        for ei in el.iterchildren(RIM + "ExternalIdentifier"):
            if ei.get("identificationScheme") in _PATIENT_ID_SCHEMES:
                ei.set("value", patient_id)
    if home and el.get("home") is None:
        el.set("home", home)
    if last_update_time is not None:
        holder = etree.Element("holder")
        write_slot(holder, "lastUpdateTime", [last_update_time])
        el.insert(0, holder[0])
    return el
