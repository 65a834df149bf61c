"""MHD mappings of registry objects (digest §4.5): DocumentEntry -> DocumentReference,
SubmissionSet and Folder -> List, and the shared pieces (codings, DTM -> FHIR dateTime,
authors as contained resources, loading the stored XML of a page of hits).

Everything here is pure or reads what ITI-18 reads (``fetch_xml`` + ``render_stored``), so a
DocumentReference says what the LeafClass answer of the same object says.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select

from xds.ebrim.documententry import parse_document_entry
from xds.ebrim.folder import parse_folder
from xds.ebrim.response import render_stored
from xds.ebrim.rim import RIM, Element
from xds.ebrim.submissionset import parse_submission_set
from xds.ebrim.vocabulary import FD, AssociationType, Status
from xds.fhir.patient import patient_reference
from xds.model.metadata import Author, DocumentEntry, Folder, SubmissionSet
from xds.model.values import CX, Code, is_oid
from xds.mpi.model import PatientIdentifier
from xds.registry.querybase import QueryResult, chunks, fetch_xml
from xds.store.tables import association, document_entry

__all__ = [
    "UUID_URN", "LIST_TYPES", "DESIGNATION_TYPE", "SOURCE_ID", "resource_id", "entry_uuid",
    "coding", "concept", "fhir_datetime", "document_reference", "submission_set_list",
    "folder_list", "load_objects", "relations", "members",
]

UUID_URN = "urn:uuid:"
RFC3986 = "urn:ietf:rfc:3986"
LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
_SD = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/"
DESIGNATION_TYPE = _SD + "ihe-designationType"
SOURCE_ID = _SD + "ihe-sourceId"
_DOCREF_PROFILE = _SD + "IHE.MHD.{}.DocumentReference"
#: relatesTo.code of the document relationships (XFRM_RPLC reads as a transformation).
RELATES_TO = {AssociationType.RPLC: "replaces", AssociationType.APND: "appends",
              AssociationType.XFRM: "transforms", AssociationType.XFRM_RPLC: "transforms",
              AssociationType.signs: "signs"}


def resource_id(uuid_urn: str) -> str:
    """The FHIR id of an object: its entryUUID without ``urn:uuid:``."""
    return uuid_urn.removeprefix(UUID_URN)


def entry_uuid(resource: str) -> str:
    """The entryUUID a FHIR id names."""
    return UUID_URN + resource


def coding(code: Code) -> dict[str, Any]:
    """A Coding: system ``urn:oid:<scheme>`` for an OID scheme, else the scheme as given."""
    out: dict[str, Any] = {"system": f"urn:oid:{code.scheme}" if is_oid(code.scheme)
                           else code.scheme, "code": code.code}
    if code.display and code.display.value:
        out["display"] = code.display.value
    return out


def concept(codes: Iterable[Code]) -> dict[str, Any]:
    """A CodeableConcept holding ``codes``."""
    return {"coding": [coding(c) for c in codes]}


def fhir_datetime(dtm: str | None) -> str | None:
    """A DTM (UTC, any precision) as a FHIR dateTime (seconds and Z once a time is given)."""
    if not dtm or not dtm.isdigit() or len(dtm) < 4:
        return None
    out = dtm[:4]
    if len(dtm) >= 6:
        out += "-" + dtm[4:6]
    if len(dtm) >= 8:
        out += "-" + dtm[6:8]
    if len(dtm) >= 10:
        time = (dtm[8:14] + "0000")[:6]
        out += f"T{time[:2]}:{time[2:4]}:{time[4:6]}Z"
    return out


def _instant(dtm: str | None) -> str | None:
    """A DTM as a FHIR instant (needs at least the day; padded to seconds)."""
    if not dtm or len(dtm) < 8:
        return None
    return fhir_datetime((dtm + "000000")[:14])


def _patient(cx: str | None) -> dict[str, Any] | None:
    parsed = CX.parse(cx) if cx else None
    return patient_reference(PatientIdentifier(parsed.assigning_authority, parsed.id)) \
        if parsed else None


def _parts(text: str, n: int) -> list[str]:
    return (text.split("^") + [""] * n)[:n]


def _practitioner(author: Author, local: str) -> dict[str, Any] | None:
    """A contained Practitioner (XCN person, XTN telecom) or Organization (XON institution)."""
    if author.person:
        xcn = _parts(author.person, 7)
        name: dict[str, Any] = {}
        if xcn[1]:
            name["family"] = xcn[1]
        if given := [g for g in xcn[2:4] if g]:
            name["given"] = given
        if xcn[5]:
            name["prefix"] = [xcn[5]]
        if suffix := [s for s in (xcn[4], xcn[6]) if s]:
            name["suffix"] = suffix
        res: dict[str, Any] = {"resourceType": "Practitioner", "id": local}
        if name:
            res["name"] = [name]
        if not name and xcn[0]:
            res["identifier"] = [{"value": xcn[0]}]
        if telecom := [t for t in (_telecom(x) for x in author.telecommunications) if t]:
            res["telecom"] = telecom
        return res
    if author.institutions:
        return {"resourceType": "Organization", "id": local,
                "name": author.institutions[0].split("^")[0]}
    return None


def _telecom(xtn: str) -> dict[str, Any] | None:
    parts = _parts(xtn, 12)
    if parts[3]:
        return {"system": "email", "value": parts[3]}
    number = parts[11] or parts[0]
    return {"system": "phone", "value": number} if number else None


def _authors(authors: Sequence[Author]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(contained resources, author References) of ``authors``."""
    contained, refs = [], []
    for n, author in enumerate(authors, 1):
        res = _practitioner(author, f"author{n}")
        if res is not None:
            contained.append(res)
            refs.append({"reference": f"#author{n}"})
        elif author.roles or author.specialties:
            refs.append({"display": (author.roles or author.specialties)[0].split("^")[0]})
    return contained, refs


_GENDER = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown"}


def _source_patient(de: DocumentEntry) -> dict[str, Any] | None:
    """The contained Patient of sourcePatientId + sourcePatientInfo (PID-5/7/8), if any."""
    cx = CX.parse(de.source_patient_id) if de.source_patient_id else None
    if cx is None:
        return None
    pid = {k: v for k, _, v in (f.partition("|") for f in de.source_patient_info)}
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "sourcePatient", "identifier": [
        {"system": f"urn:oid:{cx.assigning_authority}", "value": cx.id}]}
    xpn = _parts(pid.get("PID-5", ""), 3)
    name = _drop_empty({"family": xpn[0], "given": [g for g in xpn[1:] if g]})
    if name:
        patient["name"] = [name]
    if (birth := pid.get("PID-7", "")[:8]).isdigit() and len(birth) == 8:
        patient["birthDate"] = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
    if gender := _GENDER.get(pid.get("PID-8", "")):
        patient["gender"] = gender
    return patient


def _hash(hex_sha1: str | None) -> str | None:
    try:
        return base64.b64encode(bytes.fromhex(hex_sha1)).decode() if hex_sha1 else None
    except ValueError:
        return None


def _related(cxi: str) -> dict[str, Any]:
    """A context.related Reference for one referenceIdList value (CXi)."""
    parts = _parts(cxi, 5)
    authority = _parts(parts[3].replace("&", "^"), 3)[1]
    identifier: dict[str, Any] = {"value": parts[0] or cxi}
    if authority:
        identifier["system"] = f"urn:oid:{authority}" if is_oid(authority) else authority
    if parts[4]:
        identifier["type"] = {"text": parts[4]}
    return {"identifier": identifier}


def _unique_id(value: str) -> str:
    return f"urn:oid:{value}" if is_oid(value) else value


def _drop_empty(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if v not in (None, [], {}, "")}


def document_reference(de: DocumentEntry, base_url: str,
                       relates: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The DocumentReference of ``de`` (MHD mapping); ``relates`` are (associationType,
    target entryUUID) of the relationships whose source is ``de``."""
    contained, authors = _authors(de.authors)
    authenticator = _practitioner(Author(person=de.legal_authenticator), "authenticator") \
        if de.legal_authenticator else None
    source_patient = _source_patient(de)
    contained += [r for r in (authenticator, source_patient) if r is not None]
    attachment = _drop_empty({
        "contentType": de.mime_type, "language": de.language_code,
        "url": f"{base_url}/Binary/{resource_id(de.entry_uuid)}",
        "size": int(de.size) if de.size and de.size.isdigit() else None,
        "hash": _hash(de.hash), "title": de.title.value if de.title else None,
        "creation": fhir_datetime(de.creation_time)})
    period = _drop_empty({"start": fhir_datetime(de.service_start_time),
                          "end": fhir_datetime(de.service_stop_time)})
    context = _drop_empty({
        "event": [concept([c]) for c in de.event_codes],
        "period": period or None,
        "facilityType": concept([de.healthcare_facility_type_code])
        if de.healthcare_facility_type_code else None,
        "practiceSetting": concept([de.practice_setting_code])
        if de.practice_setting_code else None,
        "sourcePatientInfo": {"reference": "#sourcePatient"} if source_patient else None,
        "related": [_related(r) for r in de.reference_id_list]})
    profile = "Minimal" if de.limited_metadata else "Comprehensive"
    return _drop_empty({
        "resourceType": "DocumentReference", "id": resource_id(de.entry_uuid),
        "meta": {"profile": [_DOCREF_PROFILE.format(profile)]},
        "contained": contained,
        "masterIdentifier": {"system": RFC3986, "value": _unique_id(de.unique_id)}
        if de.unique_id else None,
        "identifier": [{"use": "official", "system": RFC3986, "value": de.entry_uuid}],
        "status": "superseded" if de.availability_status == Status.Deprecated else "current",
        "type": concept([de.type_code]) if de.type_code else None,
        "category": [concept([de.class_code])] if de.class_code else [],
        "subject": _patient(de.patient_id),
        "author": authors,
        "authenticator": {"reference": "#authenticator"} if authenticator else None,
        "description": de.comments.value if de.comments else None,
        "securityLabel": [concept([c]) for c in de.confidentiality_codes],
        "relatesTo": [{"code": RELATES_TO[AssociationType(kind)],
                       "target": {"reference": f"DocumentReference/{resource_id(target)}"}}
                      for kind, target in relates if kind in RELATES_TO],
        "content": [_drop_empty({"attachment": attachment,
                                 "format": coding(de.format_code) if de.format_code else None})],
        "context": context or None,
    })


def _list(kind: str, entry: str, unique_id: str | None, status: str | None,
          patient: str | None, members_of: Sequence[str]) -> dict[str, Any]:
    identifiers = [{"use": "official", "system": RFC3986, "value": entry}]
    if unique_id:
        identifiers.append({"use": "usual", "system": RFC3986, "value": _unique_id(unique_id)})
    return {
        "resourceType": "List", "id": resource_id(entry), "identifier": identifiers,
        "status": "retired" if status == Status.Deprecated else "current", "mode": "working",
        "code": {"coding": [{"system": LIST_TYPES, "code": kind}]},
        "subject": _patient(patient),
        "entry": [{"item": {"reference": f"DocumentReference/{resource_id(m)}"}}
                  for m in members_of],
    }


def submission_set_list(ss: SubmissionSet, members_of: Sequence[str]) -> dict[str, Any]:
    """The SubmissionSet List of ``ss`` with its member DocumentReferences."""
    resource = _list("submissionset", ss.entry_uuid, ss.unique_id, ss.availability_status,
                     ss.patient_id, members_of)
    contained, authors = _authors(ss.authors)
    extension: list[dict[str, Any]] = []
    if ss.content_type_code:
        extension.append({"url": DESIGNATION_TYPE,
                          "valueCodeableConcept": concept([ss.content_type_code])})
    if ss.source_id:
        extension.append({"url": SOURCE_ID, "valueIdentifier": {
            "system": RFC3986, "value": _unique_id(ss.source_id)}})
    resource.update(contained=contained, extension=extension,
                    source=authors[0] if authors else None,
                    title=ss.title.value if ss.title else None,
                    date=_instant(ss.submission_time),
                    note=[{"text": ss.comments.value}] if ss.comments else None)
    return _drop_empty(resource)


def folder_list(fd: Folder, members_of: Sequence[str]) -> dict[str, Any]:
    """The Folder List of ``fd`` with its member DocumentReferences."""
    resource = _list("folder", fd.entry_uuid, fd.unique_id, fd.availability_status,
                     fd.patient_id, members_of)
    resource.update(
        extension=[{"url": DESIGNATION_TYPE, "valueCodeableConcept": concept([c])}
                   for c in fd.codes],
        title=fd.title.value if fd.title else None, date=_instant(fd.last_update_time),
        note=[{"text": fd.comments.value}] if fd.comments else None)
    return _drop_empty(resource)


RegistryObject = DocumentEntry | SubmissionSet | Folder


def _parse(el: Element) -> RegistryObject:
    if el.tag == RIM + "ExtrinsicObject":
        return parse_document_entry(el)
    nodes = {c.get("classificationNode") or "" for c in el.iterfind(RIM + "Classification")}
    return parse_folder(el, nodes) if FD.classificationNode in nodes \
        else parse_submission_set(el, nodes)


def load_objects(conn: Connection, result: QueryResult) -> list[RegistryObject]:
    """The objects of ``result`` (a page), parsed from their stored XML as ITI-18 renders it
    (current status, lastUpdateTime, surviving patient id)."""
    return [_parse(render_stored(r.xml, r.status, last_update_time=r.last_update_time,
                                 patient_id=r.patient_id)) for r in fetch_xml(conn, result)]


def relations(conn: Connection, ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """(associationType, target) of the document relationships whose source is in ``ids``."""
    a = association.c
    out: dict[str, list[tuple[str, str]]] = {}
    for part in chunks(list(ids)):
        rows = conn.execute(select(a.source_id, a.association_type, a.target_id).where(
            a.source_id.in_(part), a.association_type.in_([str(t) for t in RELATES_TO]))
            .order_by(a.source_id, a.id))
        for source, kind, target in rows:
            out.setdefault(source, []).append((kind, target))
    return out


def members(conn: Connection, ids: Sequence[str]) -> dict[str, list[str]]:
    """The DocumentEntries each SubmissionSet/Folder of ``ids`` holds (HasMember), by id."""
    a = association.c
    out: dict[str, list[str]] = {}
    for part in chunks(list(ids)):
        rows = conn.execute(select(a.source_id, a.target_id).join(
            document_entry, document_entry.c.id == a.target_id).where(
            a.source_id.in_(part), a.association_type == AssociationType.HasMember.value)
            .order_by(a.source_id, a.target_id))
        for source, target in rows:
            out.setdefault(source, []).append(target)
    return out
