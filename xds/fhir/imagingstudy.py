"""ImagingStudy (read, search): id = Study Instance UID, from the instance index and from KOS
manifests in the registry (``kosstudy``); a study the index holds is answered from the index.

Search runs one grouped query on the instance index (study UID, date, time of every matching
study), sorts and pages those with the KOS studies, then one query loads the instances of the
page. Without ``patient``/``subject``/``patient.identifier`` or a study ``identifier`` only the
index answers (every study it holds); KOS manifests are looked up by patient or by
referenceIdList (study UID / accession), never scanned registry-wide.

``started``: DICOM Study Date/Time carry no zone here, so they are read as UTC (``Z``), as the
registry compares its DTMs; a date without a time stays a FHIR date.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, func, or_, select, true

from xds.fhir.context import FhirContext
from xds.fhir.endpoint import own_endpoint_id, read_endpoint
from xds.fhir.errors import FhirError, invalid, not_found
from xds.fhir.identity import Identity, patient_identities
from xds.fhir.ids import domain_of_system
from xds.fhir.kosstudy import (
    DCM, DICOM_UID_SYSTEM, KosStudy, accession_identifier, accession_ref_values, kos_resource,
    kos_studies, kos_study, modality_coding, resource_dtm, resource_matches, sop_class_coding, started,
    study_identifier, study_ref_value, uid_of,
)
from xds.fhir.interactions import ResourceType
from xds.fhir.patient import patient_reference, read_patient
from xds.fhir.search import (
    ParamType, SearchParam, SearchRequest, SearchResult, SearchSpec, Token, reference_id,
)
from xds.mpi.model import PatientIdentifier
from xds.store.db import read_connection
from xds.store.tables import dicom_instance

__all__ = ["IMAGING_STUDY", "read_imaging_study", "search_imaging_studies"]

_T, _R, _D = ParamType.token, ParamType.reference, ParamType.date
SPEC = SearchSpec("ImagingStudy", (
    SearchParam("patient", _R, "the Patient (any identifier the MPI links to it)"),
    SearchParam("subject", _R, "the Patient, as patient"),
    SearchParam("patient.identifier", _T, "the patient's identifier: urn:oid:<authority>|<id>"),
    SearchParam("identifier", _T, "Study Instance UID (urn:dicom:uid|urn:oid:<uid>, or the bare "
                "uid) or accession number (urn:oid:<issuer>|<acc>, or <acc>)"),
    SearchParam("started", _D, "study date/time (read as UTC), with eq/ne/lt/le/gt/ge"),
    SearchParam("modality", _T, "a series modality (DCM code)"),
    SearchParam("series", _T, "a Series Instance UID"),
    SearchParam("instance", _T, "a SOP Instance UID"),
    SearchParam("dicom-class", _T, "a SOP Class UID (urn:oid:<uid> or bare)"),
    SearchParam("status", _T, "available (every study served is)"),
    SearchParam("endpoint", _R, "an Endpoint of the study or of one of its series"),
), includes=("ImagingStudy:patient", "ImagingStudy:endpoint"), sorts=("started", "-started"))
_FILTERS = ("modality", "series", "instance", "dicom-class", "status")
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_LATERALITY = {"R": ("24028007", "Right"), "L": ("7771000", "Left"),
               "B": ("51440002", "Right and left")}
_SNOMED = "http://snomed.info/sct"


@dataclass(frozen=True, slots=True)
class _Hit:
    """A study that matched: its UID, sort key and, for a KOS study, what builds it."""

    uid: str
    dtm: str | None
    kos: dict[str, Any] | None = None


# --- the study identifier parameter --------------------------------------------------------

@dataclass(slots=True)
class _Ids:
    """One ``identifier`` group: study UIDs and (accession, issuer or None) pairs, ORed."""

    uids: list[str]
    accessions: list[tuple[str, str | None]]


def _identifier_group(tokens: list[Token]) -> _Ids:
    found = _Ids([], [])
    for t in tokens:
        if t.system == DICOM_UID_SYSTEM:
            found.uids.append(uid_of(t.code))
        elif t.system is None:
            found.uids.append(uid_of(t.code))
            if not t.code.startswith("urn:oid:"):
                found.accessions.append((t.code, None))
        elif t.system in ("", _V2_0203):
            found.accessions.append((t.code, None))
        else:
            issuer = domain_of_system(t.system)
            if issuer is None:
                raise invalid(f"identifier system {t.system!r}: use urn:dicom:uid or "
                              "urn:oid:<issuer>", expression="identifier")
            found.accessions.append((t.code, issuer))
    return found


def _identifier_sql(group: _Ids, c: Any) -> ColumnElement[bool]:
    alternatives: list[ColumnElement[bool]] = [c.study_instance_uid.in_(group.uids)]
    for acc, issuer in group.accessions:
        cond = c.accession_number == acc
        alternatives.append(and_(cond, c.accession_issuer == issuer) if issuer else cond)
    return or_(false(), *alternatives)


# --- the instance index ---------------------------------------------------------------------

def _patient_sql(identities: list[Identity]) -> ColumnElement[bool]:
    di = dicom_instance.c
    pairs = {(i.domain, i.value) for ident in identities for i in ident.linked}
    return or_(false(), *(and_(di.patient_issuer == d, di.patient_id == v)
                          for d, v in sorted(pairs)))


def _study_having(cond: Callable[[Any], ColumnElement[bool]]) -> ColumnElement[bool]:
    """Studies with an instance for which ``cond`` (of the instance's columns) holds."""
    inner = dicom_instance.alias()
    return dicom_instance.c.study_instance_uid.in_(
        select(inner.c.study_instance_uid).where(cond(inner.c)))


def _filter_sql(name: str, tokens: list[Token], c: Any) -> ColumnElement[bool]:
    codes = [t.code for t in tokens]
    if name == "modality":
        return c.modality.in_([t.code for t in tokens if t.system in (None, DCM)])  # type: ignore[no-any-return]
    if name == "series":
        return c.series_instance_uid.in_(codes)  # type: ignore[no-any-return]
    if name == "instance":
        return c.sop_instance_uid.in_(codes)  # type: ignore[no-any-return]
    if name == "dicom-class":
        return c.sop_class_uid.in_([uid_of(code) for code in codes])  # type: ignore[no-any-return]
    return true() if "available" in codes else false()


def _endpoint_groups(search: SearchRequest) -> list[list[str]]:
    return [[reference_id(v, "Endpoint", "endpoint") for v in group]
            for group in search.groups("endpoint")]


def _local_where(search: SearchRequest, identities: list[Identity] | None,
                 ids: list[_Ids], own: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if identities is not None:
        where.append(_patient_sql(identities))
    for group in ids:
        where.append(_study_having(partial(_identifier_sql, group)))
    for name in _FILTERS:
        for tokens in search.tokens(name):
            where.append(_study_having(partial(_filter_sql, name, tokens)))
    if any(own not in group for group in _endpoint_groups(search)):
        where.append(false())
    return where


def _local_hits(conn: Connection, search: SearchRequest, where: list[ColumnElement[bool]]
                ) -> list[_Hit]:
    di = dicom_instance.c
    rows = conn.execute(select(di.study_instance_uid, func.min(di.study_date),
                               func.min(di.study_time)).where(*where)
                        .group_by(di.study_instance_uid))
    dates = search.dates("started")
    hits = []
    for uid, date, time in rows:
        _, dtm = started(date, time)
        if all(d.matches(dtm) for d in dates):
            hits.append(_Hit(uid, dtm))
    return hits


def _coding_or_display(value: str | None, table: dict[str, tuple[str, str]]) -> dict[str, Any]:
    key = (value or "").strip().upper()
    if key in table:
        return {"system": _SNOMED, "code": table[key][0], "display": table[key][1]}
    return {"display": (value or "").strip()}


def _series_item(rows: list[Any]) -> dict[str, Any]:
    first = rows[0]
    item: dict[str, Any] = {"uid": first.series_instance_uid}
    if first.series_number is not None:
        item["number"] = first.series_number
    item["modality"] = modality_coding((first.modality or "OT").strip() or "OT")
    if first.series_description:
        item["description"] = first.series_description
    item["numberOfInstances"] = len(rows)
    if first.body_part:
        item["bodySite"] = {"display": first.body_part}
    if first.laterality and first.laterality.strip():
        item["laterality"] = _coding_or_display(first.laterality, _LATERALITY)
    item["instance"] = [{"uid": r.sop_instance_uid, "sopClass": sop_class_coding(r.sop_class_uid),
                         **({"number": r.instance_number} if r.instance_number is not None
                            else {})} for r in rows]
    return item


def local_resource(ctx: FhirContext, rows: list[Any]) -> dict[str, Any]:
    """The ImagingStudy of one study's instance rows (ordered by series, instance)."""
    first = rows[0]
    series: dict[str, list[Any]] = {}
    for r in rows:
        series.setdefault(r.series_instance_uid, []).append(r)
    resource: dict[str, Any] = {"resourceType": "ImagingStudy", "id": first.study_instance_uid,
                                "identifier": [study_identifier(first.study_instance_uid)]}
    if acc := next((r.accession_number for r in rows if r.accession_number), None):
        issuer = next((r.accession_issuer for r in rows if r.accession_issuer), None)
        resource["identifier"].append(accession_identifier(acc, issuer))
    resource["status"] = "available"
    modalities = list(dict.fromkeys(m for r in rows if (m := (r.modality or "").strip())))
    resource["modality"] = [modality_coding(m) for m in modalities]
    resource["subject"] = patient_reference(PatientIdentifier(first.patient_issuer,
                                                              first.patient_id))
    when, _ = started(first.study_date, first.study_time)
    if when:
        resource["started"] = when
    if (own := own_endpoint_id(ctx)) is not None:
        resource["endpoint"] = [{"reference": f"Endpoint/{own}"}]
    resource["numberOfSeries"] = len(series)
    resource["numberOfInstances"] = len(rows)
    if first.study_description:
        resource["description"] = first.study_description
    resource["series"] = [_series_item(group) for group in series.values()]
    return {k: v for k, v in resource.items() if v != []}


def _local_resources(ctx: FhirContext, conn: Connection, uids: Sequence[str]
                     ) -> dict[str, dict[str, Any]]:
    if not uids:
        return {}
    di = dicom_instance.c
    rows = conn.execute(select(dicom_instance).where(di.study_instance_uid.in_(list(uids)))
                        .order_by(di.study_instance_uid, di.series_number,
                                  di.series_instance_uid, di.instance_number,
                                  di.sop_instance_uid))
    by_study: dict[str, list[Any]] = {}
    for r in rows:
        by_study.setdefault(r.study_instance_uid, []).append(r)
    return {uid: local_resource(ctx, group) for uid, group in by_study.items()}


# --- KOS studies ----------------------------------------------------------------------------

def _kos_hits(ctx: FhirContext, conn: Connection, search: SearchRequest,
              identities: list[Identity] | None, ids: list[_Ids]) -> list[_Hit]:
    patients = None
    if identities is not None:
        affinity = ctx.settings.affinity_domain
        patients = sorted({cx for ident in identities for cx in ident.affinity_ids(affinity)})
    refs = None
    if ids:
        group = ids[0]
        refs = [study_ref_value(u) for u in group.uids]
        refs += [v for acc, issuer in group.accessions for v in accession_ref_values(acc, issuer)]
    studies: list[KosStudy] = kos_studies(ctx, conn, patients, None, refs)
    filters = {name: search.tokens(name) for name in _FILTERS if search.has(name)}
    dates, endpoints = search.dates("started"), _endpoint_groups(search)
    hits = []
    for study in studies:
        resource = kos_resource(ctx, study)
        if resource_matches(resource, filters, dates, endpoints) and _ids_match(resource, ids):
            hits.append(_Hit(study.uid, resource_dtm(resource), resource))
    return hits


def _ids_match(resource: dict[str, Any], ids: list[_Ids]) -> bool:
    idents = resource["identifier"]
    uid = resource["id"]
    accs = [(i["value"], (i.get("system") or "").removeprefix("urn:oid:") or None)
            for i in idents[1:]]
    for group in ids:
        if uid in group.uids:
            continue
        if not any(a == acc and (iss is None or iss == issuer)
                   for acc, iss in group.accessions for a, issuer in accs):
            return False
    return True


# --- search and read --------------------------------------------------------------------------

def _ordered(hits: list[_Hit], sort: list[str]) -> list[_Hit]:
    """By UID; with ``_sort`` by started (either way), ties by UID, undated last."""
    if not sort:
        return sorted(hits, key=lambda h: h.uid)
    descending = sort[0] == "-started"
    dated = sorted((h for h in hits if h.dtm), key=lambda h: (
        _invert(h.dtm or "") if descending else h.dtm or "", h.uid))
    return dated + sorted((h for h in hits if not h.dtm), key=lambda h: h.uid)


def _invert(dtm: str) -> str:
    """A digit string that sorts the other way round."""
    return "".join(chr(ord("9") - ord(ch) + ord("0")) for ch in dtm)


def _included(ctx: FhirContext, search: SearchRequest, resources: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
    included: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(kind: str, resource_id: str) -> None:
        if f"{kind}/{resource_id}" in seen:
            return
        seen.add(f"{kind}/{resource_id}")
        try:
            read = read_patient if kind == "Patient" else read_endpoint
            included.append(read(ctx, resource_id))
        except FhirError:
            pass

    for resource in resources:
        ref = resource.get("subject", {}).get("reference", "")
        if "ImagingStudy:patient" in search.includes and ref.startswith("Patient/"):
            add("Patient", ref.split("/", 1)[1])
        if "ImagingStudy:endpoint" in search.includes:
            refs = [*resource.get("endpoint", []),
                    *(e for s in resource.get("series", []) for e in s.get("endpoint", []))]
            for e in refs:
                add("Endpoint", e["reference"].split("/", 1)[1])
    return included


def search_imaging_studies(ctx: FhirContext, search: SearchRequest) -> SearchResult:
    """The studies matching ``search`` (ordered by UID, or by ``started`` then UID)."""
    identities = patient_identities(ctx, search)
    ids = [_identifier_group(g) for g in search.tokens("identifier")]
    own = own_endpoint_id(ctx)
    if identities == []:
        return SearchResult(0, [])
    with read_connection(ctx.engine) as conn:
        hits = _local_hits(conn, search, _local_where(search, identities, ids, own))
        if identities is not None or ids:
            hits += _kos_hits(ctx, conn, search, identities, ids)
        ordered = _ordered(hits, search.sort)
        if search.summary_count:
            return SearchResult(len(ordered), [])
        page = list(search.page(ordered))
        local = _local_resources(ctx, conn, [h.uid for h in page if h.kos is None])
    resources = [h.kos if h.kos is not None else local[h.uid] for h in page
                 if h.kos is not None or h.uid in local]
    return SearchResult(len(ordered), resources, _included(ctx, search, resources))


def read_imaging_study(ctx: FhirContext, resource_id: str) -> dict[str, Any]:
    """The ImagingStudy ``resource_id`` (a Study Instance UID): from the index, else from its
    current KOS manifest; 404 when neither knows it."""
    with read_connection(ctx.engine) as conn:
        local = _local_resources(ctx, conn, [resource_id])
        if resource_id in local:
            return local[resource_id]
        study = kos_study(ctx, conn, resource_id)
        if study is not None:
            return kos_resource(ctx, study)
    raise not_found(f"ImagingStudy/{resource_id} is not known")


IMAGING_STUDY = ResourceType(
    spec=SPEC, read=read_imaging_study, search=search_imaging_studies,
    documentation="One ImagingStudy per Study Instance UID, from the instance index and from "
                  "the current KOS manifests in the registry. Without a patient or a study "
                  "identifier only the instance index is searched. started is read as UTC.")
