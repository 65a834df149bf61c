"""ImagingStudy from KOS manifests in the registry (XDS-I.b, any Imaging Document Source).

A manifest counts when its DocumentEntry is Approved (after an RPLC only the current one),
has formatCode 88.59 / DCMUID and mimeType application/dicom, and its bytes are in this
server's repository (``repository_document`` -> blob store); parsed manifests are cached by
SHA-256 (they are immutable). Series and instances come from the evidence sequence, counts are
computed, the series endpoint is the WADO-RS base of the Retrieve URL (else the configured
address of the RetrieveLocationUID), the modality falls back to the SOP Class, then to the
entry's eventCodeList.

Also here: the small codings and the started value both builders (index and KOS) share, and
the resource-level filters the KOS studies are searched with.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from sqlalchemy import Connection, and_, select

from xds.dicom.uids import DCMUID_SCHEME, DICOM_MIME, KOS_SOP_CLASS
from xds.ebrim.vocabulary import Status
from xds.fhir.context import FhirContext
from xds.fhir.endpoint import configured, endpoint_id, wado_base
from xds.fhir.patient import patient_reference
from xds.fhir.search import DateParam, Token
from xds.imaging.kos import Manifest, Reference, parse_manifest
from xds.imaging.rad68 import ACCESSION_TYPE, STUDY_UID_TYPE
from xds.model.values import normalize_dtm
from xds.mpi.model import PatientIdentifier
from xds.store.tables import (
    dicom_instance, document_code, document_entry, document_reference_id, repository_document,
)

__all__ = ["DCM", "KosStudy", "kos_studies", "kos_study", "modality_coding", "sop_class_coding",
           "started", "study_identifier", "accession_identifier", "uid_of", "study_ref_value",
           "accession_ref_values", "resource_dtm", "resource_matches",
           "kos_resource", "KosContent"]

DCM = "http://dicom.nema.org/resources/ontology/DCM"
DICOM_UID_SYSTEM = "urn:dicom:uid"
_KOS_FORMAT = f"{KOS_SOP_CLASS}^^{DCMUID_SCHEME}"
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
#: Image Storage SOP Classes -> modality (the fallback when a KOS says nothing else).
_SOP_MODALITY = {
    "1.2.840.10008.5.1.4.1.1.1": "CR", "1.2.840.10008.5.1.4.1.1.1.1": "DX",
    "1.2.840.10008.5.1.4.1.1.1.2": "MG", "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.2.1": "CT", "1.2.840.10008.5.1.4.1.1.4": "MR",
    "1.2.840.10008.5.1.4.1.1.4.1": "MR", "1.2.840.10008.5.1.4.1.1.6.1": "US",
    "1.2.840.10008.5.1.4.1.1.12.1": "XA", "1.2.840.10008.5.1.4.1.1.20": "NM",
    "1.2.840.10008.5.1.4.1.1.128": "PT", "1.2.840.10008.5.1.4.1.1.88.59": "KO",
}
_CACHE_SIZE = 2048


def uid_of(value: str) -> str:
    """A UID given bare or as ``urn:oid:<uid>``."""
    return value[len("urn:oid:"):] if value.startswith("urn:oid:") else value


def modality_coding(code: str) -> dict[str, Any]:
    """A DCM modality Coding."""
    return {"system": DCM, "code": code}


def sop_class_coding(uid: str) -> dict[str, Any]:
    """An instance's sopClass Coding."""
    return {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{uid}"}


def study_identifier(uid: str) -> dict[str, Any]:
    """The Study Instance UID identifier."""
    return {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{uid}"}


def accession_identifier(accession: str, issuer: str | None) -> dict[str, Any]:
    """The accession identifier (type ACSN, system ``urn:oid:<issuer>`` when known)."""
    ident: dict[str, Any] = {"type": {"coding": [{"system": _V2_0203, "code": "ACSN"}]},
                             "value": accession}
    if issuer:
        ident["system"] = f"urn:oid:{issuer}"
    return ident


def started(date: str | None, time: str | None) -> tuple[str | None, str | None]:
    """(FHIR dateTime, 14-digit DTM) of a DICOM Study Date/Time.

    DICOM gives no zone unless (0008,0201) is present, which is not indexed; like the rest of
    this server (the registry compares DTMs as UTC), the time is read as UTC and sent with
    ``Z``. A date without a time is a FHIR date (no zone needed)."""
    day = (date or "").strip()
    if len(day) != 8 or not day.isdigit():
        return None, None
    clock = (time or "").split(".")[0].strip().replace(":", "")
    clock = clock[: len(clock) - len(clock) % 2][:6] if clock.isdigit() else ""
    dtm = normalize_dtm(day + clock) if clock else None
    if dtm is None:
        return f"{day[:4]}-{day[4:6]}-{day[6:]}", normalize_dtm(day)
    fhir = f"{dtm[:4]}-{dtm[4:6]}-{dtm[6:8]}T{dtm[8:10]}:{dtm[10:12]}:{dtm[12:14]}Z"
    return fhir, dtm


def study_ref_value(uid: str) -> str:
    """The referenceIdList value of a Study Instance UID."""
    return f"{uid}^^^^{STUDY_UID_TYPE}"


def accession_ref_values(accession: str, issuer: str | None) -> list[str]:
    """The referenceIdList values an accession (with its issuer, or any) may be stored as."""
    if issuer:
        return [f"{accession}^^^&{issuer}&ISO^{ACCESSION_TYPE}"]
    return [f"{accession}^^^^{ACCESSION_TYPE}"]


@dataclass(frozen=True, slots=True)
class KosContent:
    """What a KOS says, parsed once per SHA-256."""

    manifest: Manifest
    study_date: str | None
    study_time: str | None
    description: str | None
    accession: str | None
    accession_issuer: str | None


@dataclass(slots=True)
class KosStudy:
    """One study a current manifest describes, with its entry's modality codes."""

    uid: str
    patient: PatientIdentifier | None
    content: KosContent
    references: list[Reference]
    event_modalities: list[str] = field(default_factory=list)
    service_start: str | None = None


_cache: OrderedDict[str, KosContent] = OrderedDict()
_lock = threading.Lock()


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword, None)
    return str(value).strip() or None if value not in (None, "") else None


def _accession(ds: Dataset) -> tuple[str | None, str | None]:
    items = [ds, *(ds.get("ReferencedRequestSequence", None) or [])]
    for item in items:
        if acc := _text(item, "AccessionNumber"):
            issuer_seq = item.get("IssuerOfAccessionNumberSequence", None) or []
            issuer = _text(issuer_seq[0], "UniversalEntityID") if len(issuer_seq) else None
            return acc, issuer
    return None, None


def _parse(data: bytes) -> KosContent:
    try:
        ds = pydicom.dcmread(BytesIO(data))
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a DICOM file: {exc}") from exc
    accession, issuer = _accession(ds)
    return KosContent(parse_manifest(ds), _text(ds, "StudyDate"), _text(ds, "StudyTime"),
                      _text(ds, "StudyDescription"), accession, issuer)


def _content(ctx: FhirContext, sha256: str) -> KosContent | None:
    with _lock:
        if (hit := _cache.get(sha256)) is not None:
            _cache.move_to_end(sha256)
            return hit
    try:
        data = b"".join(ctx.blob_store().open(sha256))
        content = _parse(data)
    except (OSError, ValueError):
        return None
    with _lock:
        _cache[sha256] = content
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return content


def _patient(cx: str) -> PatientIdentifier | None:
    value, sep, rest = cx.partition("^^^&")
    domain = rest.split("&")[0] if sep else ""
    return PatientIdentifier(domain, value) if value and domain else None


def _entries(conn: Connection, where: list[Any]) -> list[Any]:
    de, rd = document_entry.c, repository_document.c
    return list(conn.execute(
        select(de.id, de.patient_id, de.service_start_time, rd.sha256)
        .select_from(document_entry.join(repository_document, and_(
            rd.repository_unique_id == de.repository_unique_id,
            rd.document_unique_id == de.unique_id)))
        .where(de.format_code == _KOS_FORMAT, de.mime_type == DICOM_MIME,
               de.status == Status.Approved.value, *where)
        .order_by(de.creation_time.desc(), de.id)))


def _studies(ctx: FhirContext, conn: Connection, rows: list[Any]) -> list[KosStudy]:
    """The studies of the manifests ``rows``, one per study UID (the newest manifest wins),
    leaving out those the instance index holds."""
    events: dict[str, list[str]] = {}
    if rows:
        dc = document_code.c
        for entry_id, code in conn.execute(select(dc.entry_id, dc.code).where(
                dc.attribute == "eventCodeList", dc.entry_id.in_([r.id for r in rows]))):
            events.setdefault(entry_id, []).append(code.split("^^")[0])
    found: dict[str, KosStudy] = {}
    for row in rows:
        content = _content(ctx, row.sha256)
        if content is None:
            continue
        by_study: dict[str, list[Reference]] = {}
        for ref in content.manifest.references:
            by_study.setdefault(ref.study_instance_uid or content.manifest.study_instance_uid,
                                []).append(ref)
        for uid, refs in by_study.items():
            if uid and uid not in found:
                found[uid] = KosStudy(uid, _patient(row.patient_id), content, refs,
                                      sorted(events.get(row.id, [])), row.service_start_time)
    if found:
        held = {r[0] for r in conn.execute(select(dicom_instance.c.study_instance_uid).where(
            dicom_instance.c.study_instance_uid.in_(list(found))).distinct())}
        for uid in held:
            found.pop(uid)
    return list(found.values())


def kos_studies(ctx: FhirContext, conn: Connection, patients: list[str] | None,
                study_uids: list[str] | None, ref_values: list[str] | None) -> list[KosStudy]:
    """Studies of current manifests of ``patients`` (affinity-domain CX ids, None: any) whose
    referenceIdList holds one of ``ref_values`` (None: any) or whose study is in ``study_uids``
    (then the KOS study UID must match). Nothing when neither a patient nor a reference is
    given: a registry-wide scan of manifests is not offered."""
    if patients is None and ref_values is None:
        return []
    de, ref = document_entry.c, document_reference_id.c
    where: list[Any] = []
    if patients is not None:
        where.append(de.patient_id.in_(patients))
    if ref_values is not None:
        where.append(de.id.in_(select(ref.entry_id).where(ref.value.in_(ref_values))))
    studies = _studies(ctx, conn, _entries(conn, where))
    return [s for s in studies if study_uids is None or s.uid in study_uids]


def kos_study(ctx: FhirContext, conn: Connection, uid: str) -> KosStudy | None:
    """The study ``uid`` from its current manifest, None when no manifest here describes it."""
    found = kos_studies(ctx, conn, None, [uid], [study_ref_value(uid)])
    return found[0] if found else None


def _series_endpoint(ctx: FhirContext, ref: Reference) -> str | None:
    if ref.retrieve_url:
        return endpoint_id(ctx, wado_base(ref.retrieve_url))
    location = ref.retrieve_location_uid
    if location and ctx.imaging is not None and location == ctx.imaging.unique_id:
        return location
    if location and location in configured(ctx):
        return endpoint_id(ctx, configured(ctx)[location])
    return None


def _modality(refs: Iterable[Reference], events: list[str]) -> str:
    for ref in refs:
        if (code := _SOP_MODALITY.get(ref.sop_class_uid)) is not None:
            return code
    return events[0] if len(events) == 1 else "OT"


def kos_resource(ctx: FhirContext, study: KosStudy) -> dict[str, Any]:
    """The ImagingStudy of a KOS study."""
    content = study.content
    series: dict[str, list[Reference]] = {}
    for ref in study.references:
        series.setdefault(ref.series_instance_uid, []).append(ref)
    resource: dict[str, Any] = {"resourceType": "ImagingStudy", "id": study.uid,
                                "identifier": [study_identifier(study.uid)],
                                "status": "available"}
    if content.accession:
        resource["identifier"].append(accession_identifier(content.accession,
                                                           content.accession_issuer))
    modalities: list[str] = []
    endpoints: list[str] = []
    items: list[dict[str, Any]] = []
    for series_uid, refs in series.items():
        modality = _modality(refs, study.event_modalities)
        modalities += [modality] if modality not in modalities else []
        item: dict[str, Any] = {"uid": series_uid, "modality": modality_coding(modality),
                                "numberOfInstances": len(refs)}
        if (eid := _series_endpoint(ctx, refs[0])) is not None:
            item["endpoint"] = [{"reference": f"Endpoint/{eid}"}]
            endpoints += [eid] if eid not in endpoints else []
        item["instance"] = [{"uid": r.sop_instance_uid,
                             "sopClass": sop_class_coding(r.sop_class_uid)} for r in refs]
        items.append(item)
    resource["modality"] = [modality_coding(m) for m in modalities]
    resource["subject"] = (patient_reference(study.patient) if study.patient
                           else {"display": content.manifest.patient_id or "unknown"})
    when, _ = started(content.study_date, content.study_time)
    if when is None and study.service_start:
        when, _ = started(study.service_start[:8], study.service_start[8:])
    if when:
        resource["started"] = when
    if endpoints:
        resource["endpoint"] = [{"reference": f"Endpoint/{e}"} for e in endpoints]
    resource["numberOfSeries"] = len(items)
    resource["numberOfInstances"] = len(study.references)
    if content.description:
        resource["description"] = content.description
    resource["series"] = items
    return resource


def _token_in(tokens: list[Token], values: set[str], *, uid: bool = False) -> bool:
    return any((uid_of(t.code) if uid else t.code) in values for t in tokens)


def resource_matches(resource: dict[str, Any], filters: dict[str, list[list[Token]]],
                     dates: list[DateParam], endpoint_ids: list[list[str]]) -> bool:
    """Whether a built ImagingStudy passes the modality/series/instance/dicom-class/status,
    started and endpoint filters (each group ORed, groups ANDed)."""
    series = resource.get("series", [])
    seen = {
        "modality": {m["code"] for m in resource.get("modality", [])},
        "series": {s["uid"] for s in series},
        "instance": {i["uid"] for s in series for i in s.get("instance", [])},
        "dicom-class": {uid_of(i["sopClass"]["code"]) for s in series
                        for i in s.get("instance", [])},
        "status": {resource["status"]},
    }
    for name, groups in filters.items():
        if not all(_token_in(g, seen[name], uid=name == "dicom-class") for g in groups):
            return False
    refs = {r["reference"].split("/")[-1] for r in resource.get("endpoint", [])}
    if not all(refs & set(g) for g in endpoint_ids):
        return False
    dtm = resource_dtm(resource)
    return all(d.matches(dtm) for d in dates)


def resource_dtm(resource: dict[str, Any]) -> str | None:
    """The 14-digit UTC DTM of an ImagingStudy's ``started`` (as ``started()`` writes it)."""
    when = resource.get("started")
    if not when:
        return None
    return normalize_dtm(when.replace("-", "").replace("T", "").replace(":", "").rstrip("Z"))
