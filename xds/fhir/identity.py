"""Which patient a FHIR request means: a Patient id or an identifier, resolved to the source
identity and every identifier the MPI links to it (the registry indexes the affinity-domain
id, the instance index the departmental one; a search by either finds both)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from xds.fhir.context import FhirContext
from xds.fhir.errors import invalid, not_found
from xds.fhir.ids import domain_of_system, parse_patient_id
from xds.fhir.search import SearchRequest, reference_id
from xds.mpi.model import PatientIdentifier
from xds.store import patients
from xds.store.db import read_connection
from xds.store.tables import dicom_instance

__all__ = ["Identity", "identity_of", "patient_identities", "PATIENT_PARAMS"]

#: Search parameters naming the patient: references and the chained identifier.
PATIENT_PARAMS = ("patient", "subject", "patient.identifier")


@dataclass(frozen=True, slots=True)
class Identity:
    """A source identity and the identifiers linked to it (itself included)."""

    identifier: PatientIdentifier
    linked: tuple[PatientIdentifier, ...]

    def in_domain(self, domain: str) -> list[PatientIdentifier]:
        """The linked identifiers issued by ``domain``."""
        return [i for i in self.linked if i.domain == domain]

    def affinity_ids(self, affinity_domain: str) -> list[str]:
        """The affinity-domain ids (CX) the registry knows this patient by."""
        return [i.cx for i in self.in_domain(affinity_domain)]


def identity_of(ctx: FhirContext, pid: PatientIdentifier) -> Identity | None:
    """``pid`` with its linked identifiers, or None when nothing here knows it (not the MPI,
    the registry nor the instance index)."""
    if ctx.index is not None:
        person = ctx.index.person(pid)
        if person is not None:
            return Identity(pid, tuple(person.identifiers))
    with read_connection(ctx.engine) as conn:
        if pid.domain == ctx.settings.affinity_domain and patients.is_known(conn, pid.cx):
            return Identity(pid, (pid,))
        held = conn.execute(select(dicom_instance.c.sop_instance_uid).where(
            dicom_instance.c.patient_issuer == pid.domain,
            dicom_instance.c.patient_id == pid.value).limit(1)).first()
    return Identity(pid, (pid,)) if held is not None else None


def patient_identities(ctx: FhirContext, search: SearchRequest) -> list[Identity] | None:
    """The patients ``patient``/``subject``/``patient.identifier`` name (ORed within a
    parameter); None when none of them is given.

    Raises FhirError 400 for a malformed value, 404 for a Patient reference nothing here knows.
    An unknown identifier names nobody (an empty list): a chained search that matches nothing.
    """
    given = [name for name in PATIENT_PARAMS if search.has(name)]
    if not given:
        return None
    if len(given) > 1 or len(search.groups(given[0])) > 1:
        raise invalid(f"give the patient once, by one of {', '.join(PATIENT_PARAMS)}",
                      expression=given[0])
    name = given[0]
    found: list[Identity] = []
    for value in search.one(name):
        if name == "patient.identifier":
            system, sep, code = value.partition("|")
            domain = domain_of_system(system) if sep else None
            if not sep or not code or domain is None:
                raise invalid(f"{name}={value!r}: give urn:oid:<assigning authority>|<id>",
                              expression=name)
            ident = identity_of(ctx, PatientIdentifier(domain, code))
            if ident is not None:
                found.append(ident)
            continue
        resource_id = reference_id(value, "Patient", name)
        pid = parse_patient_id(resource_id)
        ident = identity_of(ctx, pid) if pid is not None else None
        if ident is None:
            raise not_found(f"Patient/{resource_id} is not known")
        found.append(ident)
    return found
