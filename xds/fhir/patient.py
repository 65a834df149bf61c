"""Patient (read, search) from the MPI: one Patient per source identity (assigning authority +
id), carrying every identifier the MPI links to it and that identity's own demographics.

An identity merged away (A40, ITI-44 merge) reads as ``active: false`` with a ``replaced-by``
link to the survivor (as ITI-104 models a merge) and is not found by searches.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, func, or_, select

from xds.fhir.context import FhirContext
from xds.fhir.errors import invalid, not_found
from xds.fhir.identity import identity_of
from xds.fhir.ids import domain_of_system, identifier_system, parse_patient_id, patient_resource_id
from xds.fhir.interactions import ResourceType
from xds.fhir.pixm import PIX_OPERATION
from xds.fhir.search import ParamType, SearchParam, SearchRequest, SearchResult, SearchSpec
from xds.mpi.model import PatientIdentifier
from xds.store.db import read_connection
from xds.store.tables import dicom_instance, mpi_identifier

__all__ = ["PATIENT", "patient_reference", "read_patient", "patient_resource"]

_T, _S, _D = ParamType.token, ParamType.string, ParamType.date
_STRING_MODIFIERS = frozenset({"exact", "contains"})
SPEC = SearchSpec("Patient", (
    SearchParam("_id", _T, "the Patient id"),
    SearchParam("identifier", _T, "any linked identifier: urn:oid:<assigning authority>|<id>"),
    SearchParam("family", _S, "family name (starts with, case-insensitive; :exact, :contains)",
                _STRING_MODIFIERS),
    SearchParam("given", _S, "given name (starts with, case-insensitive; :exact, :contains)",
                _STRING_MODIFIERS),
    SearchParam("birthdate", _D, "birth date, with eq/ne/lt/le/gt/ge"),
    SearchParam("gender", _T, "male | female | other | unknown"),
))
_GENDER = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown",
           "N": "unknown"}
_SEX = {"male": ("M",), "female": ("F",), "other": ("O", "A"), "unknown": ("U", "N")}


def patient_reference(pid: PatientIdentifier) -> dict[str, Any]:
    """A Reference to the Patient of ``pid`` (with the identifier, which always resolves)."""
    ref: dict[str, Any] = {"identifier": {"system": identifier_system(pid.domain),
                                          "value": pid.value}}
    resource_id = patient_resource_id(pid)
    if resource_id:
        ref["reference"] = f"Patient/{resource_id}"
    return ref


def _date(value: str | None) -> str | None:
    if not value or len(value) < 4 or not value[:8].isdigit():
        return None
    text = value[:8]
    return "-".join(p for p in (text[:4], text[4:6], text[6:8]) if p)


def _address(text: str) -> dict[str, Any]:
    parts = (text.split("^") + [""] * 6)[:6]
    address: dict[str, Any] = {}
    if lines := [p for p in parts[:2] if p]:
        address["line"] = lines
    for key, part in zip(("city", "state", "postalCode", "country"), parts[2:], strict=True):
        if part:
            address[key] = part
    return address


def patient_resource(pid: PatientIdentifier, linked: list[PatientIdentifier],
                     row: Any | None) -> dict[str, Any]:
    """The Patient of source identity ``pid``: its identifiers (its own first, ``official``),
    the identity's own demographics from ``row`` (an mpi_identifier or dicom_instance row),
    and ``seealso`` links to the Patients of the other linked identities."""
    resource: dict[str, Any] = {
        "resourceType": "Patient", "id": patient_resource_id(pid),
        "identifier": [{"use": "official", "system": identifier_system(pid.domain),
                        "value": pid.value}]
        + [{"system": identifier_system(i.domain), "value": i.value} for i in linked if i != pid],
        "active": True,
    }
    if row is not None:
        family, given = getattr(row, "family", None), getattr(row, "given", None)
        if family is None and getattr(row, "patient_name", None):  # DICOM PN family^given^...
            family, _, rest = str(row.patient_name).partition("^")
            given = rest.split("^")[0] or None
        name: dict[str, Any] = {}
        if family:
            name["family"] = family
        if given:
            name["given"] = [given]
        if name:
            resource["name"] = [name]
        sex = getattr(row, "sex", None) or getattr(row, "patient_sex", None)
        if sex and str(sex)[:1].upper() in _GENDER:
            resource["gender"] = _GENDER[str(sex)[:1].upper()]
        if birth := _date(getattr(row, "birth_date", None) or getattr(row, "patient_birth_date", None)):
            resource["birthDate"] = birth
        if phone := getattr(row, "phone", None):
            resource["telecom"] = [{"system": "phone", "value": phone}]
        if address := getattr(row, "address", None):
            resource["address"] = [_address(str(address))]
    links = [{"other": {"reference": f"Patient/{other_id}"}, "type": "seealso"}
             for other in linked if other != pid
             if (other_id := patient_resource_id(other)) is not None]
    if links:
        resource["link"] = links
    return resource


def _mpi_row(conn: Connection, pid: PatientIdentifier) -> Any | None:
    return conn.execute(select(mpi_identifier).where(
        mpi_identifier.c.domain == pid.domain, mpi_identifier.c.value == pid.value)).first()


def read_patient(ctx: FhirContext, resource_id: str) -> dict[str, Any]:
    """The Patient ``resource_id`` (404 when it names no identity known here)."""
    pid = parse_patient_id(resource_id)
    if pid is None:
        raise not_found(f"Patient/{resource_id} is not known")
    with read_connection(ctx.engine) as conn:
        row = _mpi_row(conn, pid)
        if row is not None and row.person_id is None and row.merged_into:
            survivor = PatientIdentifier(pid.domain, row.merged_into)
            merged = patient_resource(pid, [pid], row)
            merged["active"] = False
            merged["link"] = [{"other": patient_reference(survivor), "type": "replaced-by"}]
            return merged
        if row is None:
            row = conn.execute(select(dicom_instance).where(
                dicom_instance.c.patient_issuer == pid.domain,
                dicom_instance.c.patient_id == pid.value).limit(1)).first()
    identity = identity_of(ctx, pid)
    if identity is None:
        raise not_found(f"Patient/{resource_id} is not known")
    return patient_resource(pid, list(identity.linked), row)


def _string(column: Any, value: str, modifier: str | None) -> ColumnElement[bool]:
    text = value.lower()
    if modifier == "exact":
        return column == value  # type: ignore[no-any-return]
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    pattern = f"%{escaped}%" if modifier == "contains" else f"{escaped}%"
    return func.lower(column).like(pattern, escape="!")


def _conditions(search: SearchRequest) -> list[ColumnElement[bool]]:
    mi = mpi_identifier.c
    where: list[ColumnElement[bool]] = [mi.person_id.is_not(None)]
    for group in search.groups("_id"):
        ids = [parse_patient_id(v) for v in group]
        where.append(or_(false(), *(and_(mi.domain == p.domain, mi.value == p.value)
                                    for p in ids if p)))
    for tokens in search.tokens("identifier"):
        alternatives = []
        for token in tokens:
            other = mpi_identifier.alias()
            cond: list[ColumnElement[bool]] = [other.c.person_id == mi.person_id]
            if token.system:
                domain = domain_of_system(token.system)
                if domain is None:
                    raise invalid(f"identifier system {token.system!r} is not urn:oid:<OID>",
                                  expression="identifier")
                cond.append(other.c.domain == domain)
            if token.code:
                cond.append(other.c.value == token.code)
            alternatives.append(select(other.c.value).where(*cond).exists())
        where.append(or_(*alternatives))
    for name, column in (("family", mi.family), ("given", mi.given)):
        for group in search.groups(name):
            where.append(or_(*(_string(column, v, search.modifiers.get(name)) for v in group)))
    for date in search.dates("birthdate"):
        day = func.substr(mi.birth_date, 1, 8)
        low, high = date.bounds()
        if date.prefix == "ne":
            where.append(or_(day < date.low[:8], day >= date.high[:8]))
        if low:
            where.append(day >= low[:8])
        if high:
            where.append(day < high[:8])
    for tokens in search.tokens("gender"):
        codes: list[str] = []
        for token in tokens:
            if token.code not in _SEX:
                raise invalid(f"gender={token.code!r}: use male, female, other or unknown",
                              expression="gender")
            codes += _SEX[token.code]
        where.append(func.upper(func.substr(mi.sex, 1, 1)).in_(codes))
    return where


def search_patients(ctx: FhirContext, search: SearchRequest) -> SearchResult:
    """Patients of the MPI matching ``search``, ordered by (assigning authority, id)."""
    mi = mpi_identifier.c
    where = _conditions(search)
    with read_connection(ctx.engine) as conn:
        total = int(conn.execute(select(func.count()).select_from(mpi_identifier)
                                 .where(*where)).scalar_one())
        if search.summary_count or search.count == 0:
            return SearchResult(total, [])
        rows = conn.execute(select(mpi_identifier).where(*where).order_by(mi.domain, mi.value)
                            .limit(search.count).offset(search.offset)).all()
        linked: dict[str, list[PatientIdentifier]] = {}
        for person in {r.person_id for r in rows}:
            linked[person] = [PatientIdentifier(r.domain, r.value) for r in conn.execute(
                select(mi.domain, mi.value).where(mi.person_id == person)
                .order_by(mi.domain, mi.value))]
    resources = [patient_resource(PatientIdentifier(r.domain, r.value), linked[r.person_id], r)
                 for r in rows if patient_resource_id(PatientIdentifier(r.domain, r.value))]
    return SearchResult(total, resources)


PATIENT = ResourceType(
    spec=SPEC, read=read_patient, search=search_patients, operations=(PIX_OPERATION,),
    documentation="One Patient per source identity of the MPI (id <value>-<assigning authority "
                  "OID>), with every linked identifier; $ihe-pix is PIXm (ITI-83).",
)
