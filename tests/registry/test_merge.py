"""Patient merges seen by the registry: ITI-18 answers the survivor with the subsumed id's objects,
relabelled; ITI-42 compares patients as merged (ITI TF-2 §3.18.4.1.2.3.9, §3.42.4.1.3.3.2/.5).

Merges go through ``PatientIndex.merge`` on the session database; everything else over HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from lxml import etree
from sqlalchemy import Engine

from tests import samples
from tests.registry.iti18_support import ITI51, Answer, assert_found, assert_query_fails, query
from tests.registry.iti42_support import (
    assert_failure, assert_success, entry, folder_row, register, relationship_submission, rows,
)
from tests.samples import APPROVED, DEPRECATED, code_list, quoted, quoted_list
from xds.config import Settings
from xds.mpi.index import PatientIndex
from xds.mpi.model import Demographics, PatientIdentifier
from xds.store import tables

R = f"{{{samples.NS_RIM}}}"
_PATIENT_ID_SCHEMES = {samples.DE.patientId, samples.SS.patientId, samples.FD.patientId}


@pytest.fixture
def mpi(engine: Engine, settings: Settings) -> PatientIndex:
    """The MPI on the server's database."""
    return PatientIndex(engine, settings)


@pytest.fixture
def fed(mpi: PatientIndex, settings: Settings) -> Callable[[], PatientIdentifier]:
    """A function feeding a fresh affinity-domain id to the MPI (so the registry knows it)."""
    def make() -> PatientIdentifier:
        pid = PatientIdentifier(settings.affinity_domain, f"M{uuid.uuid4().hex[:12].upper()}")
        mpi.feed([pid], Demographics(family="MERGE", given="TEST"))
        return pid
    return make


@dataclass(slots=True)
class Registered:
    """One submission of a patient: SubmissionSet, a loose entry, a Folder with an entry."""

    patient_id: str
    submission_set: str = field(default_factory=samples.new_uuid)
    loose: str = field(default_factory=samples.new_uuid)
    filed: str = field(default_factory=samples.new_uuid)
    folder: str = field(default_factory=samples.new_uuid)
    associations: list[str] = field(default_factory=list)

    @property
    def entries(self) -> set[str]:
        return {self.loose, self.filed}


def register_objects(url: str, pid: PatientIdentifier, **options: object) -> Registered:
    """Register a Registered set of objects for ``pid`` through ITI-42."""
    reg = Registered(pid.cx)
    ss, fd_de = reg.submission_set, samples.new_uuid()
    links = [samples.new_uuid() for _ in range(4)]
    reg.associations = [*links, fd_de]
    objects = [
        samples.submission_set(ss, patient_id=pid.cx),
        samples.document_entry(reg.loose, patient_id=pid.cx, **options),  # type: ignore[arg-type]
        samples.document_entry(reg.filed, patient_id=pid.cx, **options),  # type: ignore[arg-type]
        samples.folder(reg.folder, patient_id=pid.cx),
        samples.has_member(links[0], ss, reg.loose, "Original"),
        samples.has_member(links[1], ss, reg.filed, "Original"),
        samples.has_member(links[2], ss, reg.folder),
        samples.has_member(fd_de, reg.folder, reg.filed),
        samples.has_member(links[3], ss, fd_de),
    ]
    assert_success(register(url, samples.submit_objects_request(objects)))
    return reg


def shown_patient_ids(answer: Answer) -> dict[str, str]:
    """The patientId ExternalIdentifier value of each returned DE, SS and Folder."""
    shown = {}
    for obj_id, el in answer.elements.items():
        for ei in el.iterchildren(R + "ExternalIdentifier"):
            if ei.get("identificationScheme") in _PATIENT_ID_SCHEMES:
                shown[obj_id] = ei.get("value") or ""
    return shown


def find_documents(url: str, pid: str, *statuses: str, return_type: str = "LeafClass") -> Answer:
    return query(url, "FindDocuments", [
        ("$XDSDocumentEntryPatientId", quoted(pid)),
        ("$XDSDocumentEntryStatus", quoted_list(statuses or (APPROVED,)))], return_type)


def find_submission_sets(url: str, pid: str) -> Answer:
    return query(url, "FindSubmissionSets", [
        ("$XDSSubmissionSetPatientId", quoted(pid)),
        ("$XDSSubmissionSetStatus", quoted_list([APPROVED]))])


def find_folders(url: str, pid: str) -> Answer:
    return query(url, "FindFolders", [
        ("$XDSFolderPatientId", quoted(pid)), ("$XDSFolderStatus", quoted_list([APPROVED]))])


def get_all(url: str, pid: str) -> Answer:
    return query(url, "GetAll", [
        ("$patientId", quoted(pid)), ("$XDSDocumentEntryStatus", quoted_list([APPROVED])),
        ("$XDSSubmissionSetStatus", quoted_list([APPROVED])),
        ("$XDSFolderStatus", quoted_list([APPROVED]))])


def get_documents(url: str, *entry_uuids: str) -> Answer:
    return query(url, "GetDocuments", [("$XDSDocumentEntryEntryUUID", quoted_list(entry_uuids))])


def assert_empty(answer: Answer) -> None:
    assert_found(answer)


# -- queries by the survivor and by the subsumed id ------------------------------------------------


def test_find_queries_by_survivor_return_subsumed_objects_under_survivor(
    registry_url: str, mpi: PatientIndex, fed: Callable[[], PatientIdentifier]
) -> None:
    a, b = fed(), fed()
    ra, rb = register_objects(registry_url, a), register_objects(registry_url, b)
    assert find_documents(registry_url, a.cx).document_entries == ra.entries
    mpi.merge(a, b)

    docs = find_documents(registry_url, a.cx)
    assert_found(docs, document_entries=ra.entries | rb.entries)
    assert set(shown_patient_ids(docs).values()) == {a.cx}
    # sourcePatientId and sourcePatientInfo are never altered by a merge
    assert docs.slot(rb.loose, "sourcePatientId") == [b.cx]
    assert f"PID-3|{b.cx}" in docs.slot(rb.loose, "sourcePatientInfo")
    assert_found(find_documents(registry_url, a.cx, return_type="ObjectRef"),
                 object_refs=ra.entries | rb.entries)

    sets = find_submission_sets(registry_url, a.cx)
    assert_found(sets, submission_sets=[ra.submission_set, rb.submission_set])
    assert set(shown_patient_ids(sets).values()) == {a.cx}

    folders = find_folders(registry_url, a.cx)
    assert_found(folders, folders=[ra.folder, rb.folder])
    assert set(shown_patient_ids(folders).values()) == {a.cx}

    everything = get_all(registry_url, a.cx)
    assert_found(everything, document_entries=ra.entries | rb.entries,
                 submission_sets=[ra.submission_set, rb.submission_set],
                 folders=[ra.folder, rb.folder],
                 associations=ra.associations + rb.associations)
    assert shown_patient_ids(everything) == dict.fromkeys(
        [*ra.entries, *rb.entries, ra.submission_set, rb.submission_set, ra.folder, rb.folder],
        a.cx)


def test_queries_by_subsumed_id_find_nothing(
    registry_url: str, mpi: PatientIndex, fed: Callable[[], PatientIdentifier]
) -> None:
    a, b = fed(), fed()
    register_objects(registry_url, b)
    mpi.merge(a, b)
    for answer in (find_documents(registry_url, b.cx), find_submission_sets(registry_url, b.cx),
                   find_folders(registry_url, b.cx), get_all(registry_url, b.cx),
                   find_documents(registry_url, b.cx, return_type="ObjectRef")):
        assert_empty(answer)


def test_query_by_id_the_registry_never_heard_of_is_empty_success(registry_url: str) -> None:
    assert_empty(find_documents(registry_url, samples.new_patient_id()))


def test_multi_patient_queries_resolve_merges(
    registry_url: str, mpi: PatientIndex, fed: Callable[[], PatientIdentifier]
) -> None:
    cls = samples.Code(f"C{samples.new_uuid()[9:17]}", "1.3.6.1.4.1.21367.2017.3", "merge test")
    a, b = fed(), fed()
    ra = register_objects(registry_url, a, class_code=cls)
    rb = register_objects(registry_url, b, class_code=cls)
    mpi.merge(a, b)
    base = [("$XDSDocumentEntryStatus", quoted_list([APPROVED])),
            ("$XDSDocumentEntryClassCode", code_list([cls]))]

    def multi(*pids: str) -> Answer:
        extra = [("$XDSDocumentEntryPatientId", quoted_list(pids))] if pids else []
        return query(registry_url, "FindDocumentsForMultiplePatients", [*base, *extra],
                     action=ITI51)

    for answer in (multi(a.cx), multi(a.cx, b.cx), multi()):
        assert_found(answer, document_entries=ra.entries | rb.entries)
        assert set(shown_patient_ids(answer).values()) == {a.cx}
    assert_empty(multi(b.cx))
    folders = query(registry_url, "FindFoldersForMultiplePatients", [
        ("$XDSFolderStatus", quoted_list([APPROVED])),
        ("$XDSFolderPatientId", quoted_list([a.cx]))], action=ITI51)
    assert_found(folders, folders=[ra.folder, rb.folder])
    assert set(shown_patient_ids(folders).values()) == {a.cx}


def test_id_based_queries_answer_subsumed_objects_under_survivor(
    registry_url: str, mpi: PatientIndex, fed: Callable[[], PatientIdentifier]
) -> None:
    a, b = fed(), fed()
    ra, rb = register_objects(registry_url, a), register_objects(registry_url, b)
    assert_query_fails(get_documents(registry_url, ra.loose, rb.loose),
                       "XDSResultNotSinglePatient")
    mpi.merge(a, b)

    docs = get_documents(registry_url, rb.loose)
    assert_found(docs, document_entries=[rb.loose])
    assert shown_patient_ids(docs) == {rb.loose: a.cx}
    assert docs.slot(rb.loose, "sourcePatientId") == [b.cx]
    # the single-patient rule counts survivors
    both = get_documents(registry_url, ra.loose, rb.loose)
    assert_found(both, document_entries=[ra.loose, rb.loose])
    assert set(shown_patient_ids(both).values()) == {a.cx}

    contents = query(registry_url, "GetSubmissionSetAndContents", [
        ("$XDSSubmissionSetEntryUUID", quoted(rb.submission_set))])
    assert_found(contents, submission_sets=[rb.submission_set], document_entries=rb.entries,
                 folders=[rb.folder], associations=rb.associations)
    assert set(shown_patient_ids(contents).values()) == {a.cx}
    folder = query(registry_url, "GetFolderAndContents", [
        ("$XDSFolderEntryUUID", quoted(rb.folder))])
    assert shown_patient_ids(folder) == {rb.folder: a.cx, rb.filed: a.cx}


# -- ITI-42 after a merge ------------------------------------------------------------------------


def test_submission_for_subsumed_id_is_unknown_patient(
    registry_url: str, mpi: PatientIndex, fed: Callable[[], PatientIdentifier]
) -> None:
    a, b = fed(), fed()
    mpi.merge(a, b)
    body = register(registry_url, samples.single_document_submission(b.cx))
    (error,) = assert_failure(body, "XDSUnknownPatientId")
    assert b.cx in (error.codeContext or "")


def test_replacement_under_survivor_of_subsumed_document_is_accepted(
    registry_url: str, engine: Engine, mpi: PatientIndex, fed: Callable[[], PatientIdentifier]
) -> None:
    a, b = fed(), fed()
    rb = register_objects(registry_url, b)
    mpi.merge(a, b)
    assert_success(register(registry_url, relationship_submission(a.cx, "RPLC", rb.loose)))
    assert entry(engine, rb.loose).status == DEPRECATED
    # the replaced entry's Folder (under the subsumed id) receives the replacement (§4.2.2.2)
    assert_success(register(registry_url, relationship_submission(a.cx, "RPLC", rb.filed)))
    members = rows(engine, tables.association, source_id=rb.folder)
    assert len(members) == 2
    assert folder_row(engine, rb.folder).status == APPROVED


def test_cross_patient_replacement_still_fails(
    registry_url: str, engine: Engine, mpi: PatientIndex, fed: Callable[[], PatientIdentifier]
) -> None:
    a, b, other = fed(), fed(), fed()
    ro = register_objects(registry_url, other)
    mpi.merge(a, b)
    body = register(registry_url, relationship_submission(a.cx, "RPLC", ro.loose))
    assert_failure(body, "XDSPatientIdDoesNotMatch")
    assert entry(engine, ro.loose).status == APPROVED


def _into_folder(pid: str, folder_id: str) -> etree._Element:
    return samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.document_entry("Document01", patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original"),
        samples.has_member("fd-de", folder_id, "Document01"),
        samples.has_member("ss-hm", "SubmissionSet01", "fd-de"),
    ])


def test_entry_under_survivor_joins_folder_of_subsumed_id(
    registry_url: str, mpi: PatientIndex, fed: Callable[[], PatientIdentifier]
) -> None:
    a, b, other = fed(), fed(), fed()
    rb, ro = register_objects(registry_url, b), register_objects(registry_url, other)
    assert_failure(register(registry_url, _into_folder(a.cx, rb.folder)),
                   "XDSPatientIdDoesNotMatch")
    mpi.merge(a, b)
    assert_success(register(registry_url, _into_folder(a.cx, rb.folder)))
    assert_failure(register(registry_url, _into_folder(a.cx, ro.folder)),
                   "XDSPatientIdDoesNotMatch")


# -- chains and history ------------------------------------------------------------------------------


def test_chain_of_merges_applies_transitively(
    registry_url: str, engine: Engine, mpi: PatientIndex, fed: Callable[[], PatientIdentifier]
) -> None:
    a, b, c = fed(), fed(), fed()
    ra, rb, rc = (register_objects(registry_url, p) for p in (a, b, c))
    mpi.merge(b, c)
    assert find_documents(registry_url, b.cx).document_entries == rb.entries | rc.entries
    mpi.merge(a, b)  # A <- B <- C

    docs = find_documents(registry_url, a.cx)
    assert_found(docs, document_entries=ra.entries | rb.entries | rc.entries)
    assert set(shown_patient_ids(docs).values()) == {a.cx}
    assert_empty(find_documents(registry_url, b.cx))
    assert_empty(find_documents(registry_url, c.cx))
    assert shown_patient_ids(get_documents(registry_url, rc.loose)) == {rc.loose: a.cx}
    assert_failure(register(registry_url, samples.single_document_submission(c.cx)),
                   "XDSUnknownPatientId")
    assert_success(register(registry_url, relationship_submission(a.cx, "RPLC", rc.loose)))
    assert entry(engine, rc.loose).status == DEPRECATED


def test_merge_keeps_the_stored_metadata(
    registry_url: str, engine: Engine, mpi: PatientIndex, fed: Callable[[], PatientIdentifier]
) -> None:
    a, b = fed(), fed()
    rb = register_objects(registry_url, b)
    stored = {t.name: rows(engine, t, id=i)[0] for t, i in (
        (tables.document_entry, rb.loose), (tables.submission_set, rb.submission_set),
        (tables.folder, rb.folder))}
    mpi.merge(a, b)
    find_documents(registry_url, a.cx)
    for t, i in ((tables.document_entry, rb.loose), (tables.submission_set, rb.submission_set),
                 (tables.folder, rb.folder)):
        (after,) = rows(engine, t, id=i)
        assert after.patient_id == b.cx
        assert bytes(after.xml) == bytes(stored[t.name].xml)
        shown = [ei.get("value") for ei in etree.fromstring(bytes(after.xml)).iterchildren(
            R + "ExternalIdentifier") if ei.get("identificationScheme") in _PATIENT_ID_SCHEMES]
        assert shown == [b.cx]
