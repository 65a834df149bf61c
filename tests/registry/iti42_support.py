"""Helpers of the ITI-42 tests: send a SubmitObjectsRequest, check the answer, read the store.

The store's truth is read with SQLAlchemy Core on ``xds.store.tables`` through the ``engine``
fixture; "nothing stored" is checked by counting every table's rows for a patient and uniqueIds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from lxml import etree
from sqlalchemy import Engine, Row, Table, func, select

from tests import samples, soapclient, xsd
from tests.samples import NS_RIM
from xds.store import tables

__all__ = [
    "R", "UUID_URN", "register", "assert_success", "assert_failure", "snapshot",
    "assert_nothing_stored", "rows", "entry", "entries", "associations", "folder_row",
    "registered_document", "registered_folder", "relationship_submission", "unique_id_of",
    "remove_slot", "remove_classifications", "remove_external_identifier", "objects_of",
]

R = f"{{{NS_RIM}}}"
#: What the registry assigns: ``urn:uuid:`` + lowercase RFC 4122 hex (ITI TF-3 §4.2.3.1.5).
UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Every table that carries patient_id: a failed submission leaves no row in any of them.
_PATIENT_TABLES: list[Table] = [
    tables.document_entry, tables.document_code, tables.document_author,
    tables.document_reference_id, tables.submission_set, tables.submission_set_author,
    tables.folder, tables.folder_code, tables.association,
]


def register(url: str, request: etree._Element | bytes) -> etree._Element:
    """POST ``request`` as ITI-42; the schema-valid ``rs:RegistryResponse`` of the reply."""
    resp, body = soapclient.post(url, soapclient.ITI42, request)
    assert resp.status_code == 200, resp.text
    assert etree.QName(body).localname == "RegistryResponse", etree.tostring(body)
    xsd.assert_valid(body)
    return body


def assert_success(body: etree._Element) -> list[soapclient.RegistryError]:
    """Status Success and no Error (warnings allowed); returns the warnings."""
    errors = soapclient.registry_response_errors(body)
    assert soapclient.status(body) == soapclient.SUCCESS, errors
    assert all(e.severity == soapclient.WARNING for e in errors), errors
    return errors


def assert_failure(body: etree._Element, code: str) -> list[soapclient.RegistryError]:
    """Status Failure, every RegistryError an Error of ``code``; returns them."""
    errors = soapclient.registry_response_errors(body)
    assert soapclient.status(body) == soapclient.FAILURE, errors
    assert errors, "Failure without a RegistryError"
    assert {e.errorCode for e in errors} == {code}, errors
    assert all(e.severity == soapclient.ERROR for e in errors), errors
    return errors


def snapshot(engine: Engine, patient_id: str, unique_ids: Iterable[str] = ()) -> dict[str, int]:
    """Row counts of every registry table for ``patient_id``, and of rows using ``unique_ids``."""
    uids = sorted(set(unique_ids))
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for table in _PATIENT_TABLES:
            counts[table.name] = conn.execute(
                select(func.count()).select_from(table)
                .where(table.c.patient_id == patient_id)).scalar_one()
        if uids:
            counts["unique_id_claim"] = conn.execute(
                select(func.count()).select_from(tables.unique_id_claim)
                .where(tables.unique_id_claim.c.unique_id.in_(uids))).scalar_one()
            for table in (tables.document_entry, tables.submission_set, tables.folder):
                counts[f"{table.name} by uniqueId"] = conn.execute(
                    select(func.count()).select_from(table)
                    .where(table.c.unique_id.in_(uids))).scalar_one()
    return counts


def assert_nothing_stored(engine: Engine, patient_id: str, unique_ids: Iterable[str] = ()) -> None:
    """No row for ``patient_id`` in any table, and no row using one of ``unique_ids``."""
    counts = snapshot(engine, patient_id, unique_ids)
    assert not any(counts.values()), counts


def rows(engine: Engine, table: Table, **where: str) -> list[Row[Any]]:
    """Rows of ``table`` whose columns equal ``where``."""
    with engine.connect() as conn:
        query = select(table).where(*(table.c[k] == v for k, v in where.items()))
        return list(conn.execute(query))


def entries(engine: Engine, patient_id: str) -> list[Row[Any]]:
    """document_entry rows of ``patient_id``."""
    return rows(engine, tables.document_entry, patient_id=patient_id)


def entry(engine: Engine, entry_id: str) -> Row[Any]:
    """The document_entry row ``entry_id``."""
    (found,) = rows(engine, tables.document_entry, id=entry_id)
    return found


def associations(engine: Engine, patient_id: str) -> list[Row[Any]]:
    """association rows of ``patient_id``."""
    return rows(engine, tables.association, patient_id=patient_id)


def folder_row(engine: Engine, folder_id: str) -> Row[Any]:
    """The folder row ``folder_id``."""
    (found,) = rows(engine, tables.folder, id=folder_id)
    return found


def unique_id_of(obj: etree._Element) -> str:
    """The uniqueId ExternalIdentifier value of a sample DocumentEntry/SubmissionSet/Folder."""
    names = ("XDSDocumentEntry.uniqueId", "XDSSubmissionSet.uniqueId", "XDSFolder.uniqueId")
    for ei in obj.iterchildren(R + "ExternalIdentifier"):
        label = ei.find(f"{R}Name/{R}LocalizedString")
        if label is not None and label.get("value") in names:
            return ei.get("value") or ""
    raise AssertionError("no uniqueId ExternalIdentifier")


def objects_of(request: etree._Element) -> list[etree._Element]:
    """The children of the request's RegistryObjectList."""
    object_list = request.find(R + "RegistryObjectList")
    assert object_list is not None
    return list(object_list)


def remove_slot(obj: etree._Element, name: str) -> None:
    """Drop Slot ``name`` of ``obj`` (which must have it)."""
    found = [s for s in obj.iterchildren(R + "Slot") if s.get("name") == name]
    assert found, name
    for s in found:
        obj.remove(s)


def remove_classifications(obj: etree._Element, scheme: str) -> None:
    """Drop every Classification of ``scheme`` from ``obj`` (which must have one)."""
    found = [c for c in obj.iterchildren(R + "Classification")
             if c.get("classificationScheme") == scheme]
    assert found, scheme
    for c in found:
        obj.remove(c)


def remove_external_identifier(obj: etree._Element, scheme: str) -> None:
    """Drop the ExternalIdentifier of ``scheme`` from ``obj``."""
    found = [e for e in obj.iterchildren(R + "ExternalIdentifier")
             if e.get("identificationScheme") == scheme]
    assert len(found) == 1, scheme
    obj.remove(found[0])


def registered_document(url: str, patient_id: str, **document_options: Any) -> tuple[str, str]:
    """Register one DocumentEntry with a pre-assigned UUID; its (entryUUID, uniqueId)."""
    entry_uuid = samples.new_uuid()
    unique_id = str(document_options.pop("unique_id", samples.new_oid()))
    request = samples.single_document_submission(
        patient_id, id=entry_uuid, unique_id=unique_id, **document_options)
    assert_success(register(url, request))
    return entry_uuid, unique_id


def registered_folder(url: str, patient_id: str, with_document: str | None = None) -> str:
    """Register a Folder (pre-assigned UUID), with a new DocumentEntry ``with_document`` (a
    pre-assigned UUID) in it when given; the Folder's entryUUID."""
    folder_uuid = samples.new_uuid()
    objects: list[etree._Element] = [
        samples.submission_set(patient_id=patient_id),
        samples.folder(folder_uuid, patient_id=patient_id),
        samples.has_member("ss-fd", "SubmissionSet01", folder_uuid),
    ]
    if with_document is not None:
        objects += [
            samples.document_entry(with_document, patient_id=patient_id),
            samples.has_member("ss-de", "SubmissionSet01", with_document, "Original"),
            samples.has_member("fd-de", folder_uuid, with_document),
            samples.has_member("ss-hm", "SubmissionSet01", "fd-de"),
        ]
    assert_success(register(url, samples.submit_objects_request(objects)))
    return folder_uuid


def relationship_submission(
    patient_id: str, association_type: str, target: str, *, source: str = "Document01",
    extra: Sequence[etree._Element] = (), **document_options: Any,
) -> etree._Element:
    """SubmissionSet + new Document01 (Original) + a ``association_type`` Association from
    ``source`` to ``target``."""
    return samples.submit_objects_request([
        samples.submission_set(patient_id=patient_id),
        samples.document_entry("Document01", patient_id=patient_id, **document_options),
        samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original"),
        samples.association("rel", association_type, source, target),
        *extra,
    ])

