"""ITI-18 id-based queries over real HTTP: the Get* queries (ITI TF-2 §3.18.4.1.2.3.7)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests import samples
from tests.registry.iti18_support import (
    Answer, assert_found, assert_query_fails, document, query, registered, replaced, submit,
)
from tests.registry.iti42_support import unique_id_of
from tests.samples import Code, code_list, quoted, quoted_list

Patient = Callable[..., str]
_new = samples.new_uuid


@dataclass
class Chart:
    """SubmissionSet ss with doc1, doc2 (format ``fmt``) and folder fd holding both.

    Then ss2 replaces doc1 by doc3 (RPLC ``rplc``) and appends doc4 to doc3 (APND ``apnd``).
    """

    pid: str
    fmt: Code
    ss: str
    ss_uid: str
    doc1: str
    doc1_uid: str
    doc2: str
    fd: str
    fd_uid: str
    hm_doc1: str
    hm_doc2: str
    hm_fd: str
    fd_doc1: str
    fd_doc2: str
    hm_fd_doc1: str
    hm_fd_doc2: str


def make_chart(url: str, pid: str) -> Chart:
    fmt = Code(f"F{_new()[9:17]}", "1.3.6.1.4.1.21367.2017.3", "test format")
    ss, fd = _new(), _new()
    doc1, de1 = document(pid)
    doc2, de2 = document(pid, format_code=fmt)
    folder_el = samples.folder(fd, patient_id=pid)
    ss_el = samples.submission_set(ss, patient_id=pid)
    c = Chart(pid=pid, fmt=fmt, ss=ss, ss_uid=unique_id_of(ss_el), doc1=doc1,
              doc1_uid=unique_id_of(de1), doc2=doc2, fd=fd, fd_uid=unique_id_of(folder_el),
              hm_doc1=_new(), hm_doc2=_new(), hm_fd=_new(), fd_doc1=_new(), fd_doc2=_new(),
              hm_fd_doc1=_new(), hm_fd_doc2=_new())
    submit(url, ss_el, de1, de2, folder_el,
           samples.has_member(c.hm_doc1, ss, doc1, "Original"),
           samples.has_member(c.hm_doc2, ss, doc2, "Original"),
           samples.has_member(c.hm_fd, ss, fd),
           samples.has_member(c.fd_doc1, fd, doc1), samples.has_member(c.hm_fd_doc1, ss, c.fd_doc1),
           samples.has_member(c.fd_doc2, fd, doc2), samples.has_member(c.hm_fd_doc2, ss, c.fd_doc2))
    return c


@pytest.fixture
def chart(registry_url: str, new_patient: Patient) -> Chart:
    return make_chart(registry_url, new_patient())


def by_uuid(name: str, *ids: str) -> dict[str, str]:
    return {name: quoted_list(ids)}


# -- GetDocuments ---------------------------------------------------------------------------------


def test_get_documents_by_entry_uuid(registry_url: str, chart: Chart) -> None:
    params = by_uuid("$XDSDocumentEntryEntryUUID", chart.doc1, chart.doc2, _new())
    assert_found(query(registry_url, "GetDocuments", params),
                 document_entries=[chart.doc1, chart.doc2])
    assert_found(query(registry_url, "GetDocuments", params, "ObjectRef"),
                 object_refs=[chart.doc1, chart.doc2])


def test_get_documents_by_unique_id_returns_every_entry_with_it(
        registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    uid = samples.new_oid()
    # the same uniqueId with identical content (hash, size) is no error (digest §10 point 17)
    first = registered(registry_url, pid, unique_id=uid)
    second = registered(registry_url, pid, unique_id=uid)
    answer = query(registry_url, "GetDocuments", {"$XDSDocumentEntryUniqueId": quoted_list([uid])})
    assert_found(answer, document_entries=first + second)


def test_get_documents_returns_deprecated_entries(registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    old, new = replaced(registry_url, pid)
    answer = query(registry_url, "GetDocuments", by_uuid("$XDSDocumentEntryEntryUUID", old, new))
    assert_found(answer, document_entries=[old, new])
    assert answer.elements[old].get("status") == samples.DEPRECATED
    assert answer.elements[new].get("status") == samples.APPROVED


def test_get_documents_unknown_id_is_empty_success(registry_url: str) -> None:
    assert_found(query(registry_url, "GetDocuments", by_uuid("$XDSDocumentEntryEntryUUID", _new())))


# -- GetFolders -----------------------------------------------------------------------------------


def test_get_folders(registry_url: str, chart: Chart) -> None:
    answer = query(registry_url, "GetFolders", by_uuid("$XDSFolderEntryUUID", chart.fd))
    assert_found(answer, folders=[chart.fd])
    assert len(answer.slot(chart.fd, "lastUpdateTime")) == 1
    assert_found(query(registry_url, "GetFolders", by_uuid("$XDSFolderUniqueId", chart.fd_uid),
                       "ObjectRef"), object_refs=[chart.fd])


def test_get_folders_of_several_patients_is_not_single_patient(
        registry_url: str, chart: Chart, new_patient: Patient) -> None:
    other = make_chart(registry_url, new_patient())
    params = by_uuid("$XDSFolderEntryUUID", chart.fd, other.fd)
    assert_query_fails(query(registry_url, "GetFolders", params), "XDSResultNotSinglePatient")
    assert_found(query(registry_url, "GetFolders", params, "ObjectRef"),
                 object_refs=[chart.fd, other.fd])


# -- GetAssociations / GetDocumentsAndAssociations ------------------------------------------------


def test_get_associations(registry_url: str, chart: Chart) -> None:
    answer = query(registry_url, "GetAssociations", by_uuid("$uuid", chart.doc1))
    assert_found(answer, associations=[chart.hm_doc1, chart.fd_doc1])
    answer = query(registry_url, "GetAssociations", by_uuid("$uuid", chart.fd, chart.fd_doc2),
                   "ObjectRef")
    # fd is source of two FD-DE and target of one SS HasMember; fd_doc2 is the SS HasMember's target
    assert_found(answer, object_refs=[chart.hm_fd, chart.fd_doc1, chart.fd_doc2, chart.hm_fd_doc2])
    assert_query_fails(query(registry_url, "GetAssociations", {}), "XDSStoredQueryMissingParam")


def test_get_documents_and_associations(registry_url: str, chart: Chart) -> None:
    answer = query(registry_url, "GetDocumentsAndAssociations",
                   by_uuid("$XDSDocumentEntryUniqueId", chart.doc1_uid))
    assert_found(answer, document_entries=[chart.doc1],
                 associations=[chart.hm_doc1, chart.fd_doc1])
    assert answer.order.index(chart.doc1) < answer.order.index(chart.hm_doc1)


# -- GetSubmissionSets ----------------------------------------------------------------------------


def test_get_submission_sets(registry_url: str, chart: Chart) -> None:
    answer = query(registry_url, "GetSubmissionSets", by_uuid("$uuid", chart.doc2, chart.fd))
    assert_found(answer, submission_sets=[chart.ss], associations=[chart.hm_doc2, chart.hm_fd])
    # a Folder's HasMember to the entry is not a SubmissionSet's
    answer = query(registry_url, "GetSubmissionSets", by_uuid("$uuid", chart.doc1), "ObjectRef")
    assert_found(answer, object_refs=[chart.ss, chart.hm_doc1])


def test_get_submission_sets_of_several_patients_is_not_single_patient(
        registry_url: str, chart: Chart, new_patient: Patient) -> None:
    other = make_chart(registry_url, new_patient())
    answer = query(registry_url, "GetSubmissionSets", by_uuid("$uuid", chart.doc1, other.doc1))
    assert_query_fails(answer, "XDSResultNotSinglePatient")


# -- GetSubmissionSetAndContents ------------------------------------------------------------------


def test_get_submission_set_and_contents(registry_url: str, chart: Chart) -> None:
    c = chart
    everything = dict(
        submission_sets=[c.ss], document_entries=[c.doc1, c.doc2], folders=[c.fd],
        associations=[c.hm_doc1, c.hm_doc2, c.hm_fd, c.fd_doc1, c.fd_doc2, c.hm_fd_doc1,
                      c.hm_fd_doc2])
    assert_found(query(registry_url, "GetSubmissionSetAndContents",
                       {"$XDSSubmissionSetEntryUUID": quoted(c.ss)}), **everything)
    assert_found(query(registry_url, "GetSubmissionSetAndContents",
                       {"$XDSSubmissionSetUniqueId": quoted(c.ss_uid)}), **everything)
    answer = query(registry_url, "GetSubmissionSetAndContents",
                   {"$XDSSubmissionSetEntryUUID": quoted(c.ss)}, "ObjectRef")
    assert_found(answer, object_refs=[i for ids in everything.values() for i in ids])


def test_get_submission_set_and_contents_filters_entries_and_their_associations(
        registry_url: str, chart: Chart) -> None:
    c = chart
    answer = query(registry_url, "GetSubmissionSetAndContents", {
        "$XDSSubmissionSetEntryUUID": quoted(c.ss),
        "$XDSDocumentEntryFormatCode": code_list([c.fmt])})
    # doc1 is filtered out: its SS HasMember, its FD-DE and that FD-DE's HasMember go with it
    assert_found(answer, submission_sets=[c.ss], document_entries=[c.doc2], folders=[c.fd],
                 associations=[c.hm_doc2, c.hm_fd, c.fd_doc2, c.hm_fd_doc2])


def test_get_submission_set_and_contents_only_associations_with_both_ends(
        registry_url: str, chart: Chart) -> None:
    # A later submission puts a new entry into the existing Folder: the FD-DE belongs to that
    # SubmissionSet, but the Folder does not, so the FD-DE is not part of its contents.
    ss2, fd_doc, hm_doc, hm_fd_doc = _new(), _new(), _new(), _new()
    doc, de = document(chart.pid)
    submit(registry_url, samples.submission_set(ss2, patient_id=chart.pid), de,
           samples.has_member(hm_doc, ss2, doc, "Original"),
           samples.has_member(fd_doc, chart.fd, doc), samples.has_member(hm_fd_doc, ss2, fd_doc))
    answer = query(registry_url, "GetSubmissionSetAndContents",
                   {"$XDSSubmissionSetEntryUUID": quoted(ss2)})
    assert_found(answer, submission_sets=[ss2], document_entries=[doc], associations=[hm_doc])
    # ... while the Folder's contents do show the new entry
    answer = query(registry_url, "GetFolderAndContents", {"$XDSFolderEntryUUID": quoted(chart.fd)})
    assert_found(answer, folders=[chart.fd], document_entries=[chart.doc1, chart.doc2, doc],
                 associations=[chart.fd_doc1, chart.fd_doc2, fd_doc])


def test_get_submission_set_and_contents_unknown_is_empty(registry_url: str) -> None:
    assert_found(query(registry_url, "GetSubmissionSetAndContents",
                       {"$XDSSubmissionSetEntryUUID": quoted(_new())}))


def test_get_submission_set_and_contents_takes_one_id(registry_url: str, chart: Chart) -> None:
    answer = query(registry_url, "GetSubmissionSetAndContents",
                   {"$XDSSubmissionSetEntryUUID": quoted_list([chart.ss, _new()])})
    assert_query_fails(answer, "XDSStoredQueryParamNumber")


# -- GetFolderAndContents -------------------------------------------------------------------------


def test_get_folder_and_contents(registry_url: str, chart: Chart) -> None:
    c = chart
    by_unique_id = {"$XDSFolderUniqueId": quoted(c.fd_uid)}
    assert_found(query(registry_url, "GetFolderAndContents", by_unique_id),
                 folders=[c.fd], document_entries=[c.doc1, c.doc2],
                 associations=[c.fd_doc1, c.fd_doc2])
    answer = query(registry_url, "GetFolderAndContents", {
        "$XDSFolderEntryUUID": quoted(c.fd), "$XDSDocumentEntryFormatCode": code_list([c.fmt])},
        "ObjectRef")
    assert_found(answer, object_refs=[c.fd, c.doc2, c.fd_doc2])
    restricted = Code("R", "2.16.840.1.113883.5.25", "restricted")
    answer = query(registry_url, "GetFolderAndContents", {
        "$XDSFolderEntryUUID": quoted(c.fd),
        "$XDSDocumentEntryConfidentialityCode": code_list([restricted])})
    assert_found(answer, folders=[c.fd])


def test_get_folder_and_contents_needs_an_id(registry_url: str) -> None:
    assert_query_fails(query(registry_url, "GetFolderAndContents", {}),
                       "XDSStoredQueryMissingParam")


# -- GetFoldersForDocument ------------------------------------------------------------------------


def test_get_folders_for_document(registry_url: str, chart: Chart, new_patient: Patient) -> None:
    assert_found(query(registry_url, "GetFoldersForDocument",
                       {"$XDSDocumentEntryEntryUUID": quoted(chart.doc1)}), folders=[chart.fd])
    assert_found(query(registry_url, "GetFoldersForDocument",
                       {"$XDSDocumentEntryUniqueId": quoted(chart.doc1_uid)}, "ObjectRef"),
                 object_refs=[chart.fd])
    (loose,) = registered(registry_url, chart.pid)
    assert_found(query(registry_url, "GetFoldersForDocument",
                       {"$XDSDocumentEntryEntryUUID": quoted(loose)}))


# -- GetRelatedDocuments --------------------------------------------------------------------------


def test_get_related_documents(registry_url: str, chart: Chart) -> None:
    c = chart
    doc3, de3 = document(c.pid)
    doc4, de4 = document(c.pid)
    rplc, apnd = _new(), _new()
    submit(registry_url, samples.submission_set(patient_id=c.pid), de3, de4,
           samples.has_member(_new(), "SubmissionSet01", doc3, "Original"),
           samples.has_member(_new(), "SubmissionSet01", doc4, "Original"),
           samples.association(rplc, "RPLC", doc3, c.doc1),
           samples.association(apnd, "APND", doc4, doc3))
    rplc_t, apnd_t = samples.ASSOCIATION_TYPES["RPLC"], samples.ASSOCIATION_TYPES["APND"]

    def related(params: dict[str, str], types: list[str], return_type: str = "LeafClass") -> Answer:
        return query(registry_url, "GetRelatedDocuments",
                     {**params, "$AssociationTypes": quoted_list(types)}, return_type)

    doc1 = {"$XDSDocumentEntryEntryUUID": quoted(c.doc1)}
    answer = related(doc1, [rplc_t])
    assert_found(answer, document_entries=[c.doc1, doc3], associations=[rplc])
    answer = related({"$XDSDocumentEntryUniqueId": quoted(c.doc1_uid)}, [rplc_t, apnd_t],
                     "ObjectRef")
    assert_found(answer, object_refs=[c.doc1, doc3, rplc])
    answer = related({"$XDSDocumentEntryEntryUUID": quoted(doc3)}, [rplc_t, apnd_t])
    assert_found(answer, document_entries=[c.doc1, doc3, doc4],
                 associations=[rplc, apnd])
    # no relationship of that type: nothing, not even the entry itself
    assert_found(related(doc1, [apnd_t]))
    assert_found(related({"$XDSDocumentEntryEntryUUID": quoted(c.doc2)}, [rplc_t, apnd_t]))
    # HasMember links doc1 to a Folder and a SubmissionSet, not to DocumentEntries
    assert_found(related(doc1, [samples.ASSOCIATION_TYPES["HasMember"]]))


def test_get_related_documents_needs_association_types(registry_url: str, chart: Chart) -> None:
    answer = query(registry_url, "GetRelatedDocuments",
                   {"$XDSDocumentEntryEntryUUID": quoted(chart.doc1)})
    (error,) = assert_query_fails(answer, "XDSStoredQueryMissingParam")
    assert "$AssociationTypes" in (error.codeContext or "")
