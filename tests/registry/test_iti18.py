"""ITI-18 Registry Stored Query over real HTTP: answers, return types, errors (ITI TF-2 §3.18)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest
from lxml import etree

from tests import samples, soapclient
from tests.registry.iti18_support import (
    ITI51, R, assert_found, assert_query_fails, query, registered,
)
from tests.samples import APPROVED, DEPRECATED, quoted, quoted_list
from tests.server import running_server
from xds.config import Settings

HOME = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.1"
CAP = 4


def find(pid: str, *extra: tuple[str, str | list[str]],
         status: tuple[str, ...] = (APPROVED,)) -> list[tuple[str, str | list[str]]]:
    return [("$XDSDocumentEntryPatientId", quoted(pid)),
            ("$XDSDocumentEntryStatus", quoted_list(status)), *extra]


@pytest.fixture(scope="session")
def limited_url(settings: Settings, server: str) -> Iterator[str]:
    """A second server on the same database, with a homeCommunityId and a small result cap."""
    from xds.app import build_app

    limited = dataclasses.replace(settings, home_community_id=HOME, max_query_results=CAP)
    with running_server(build_app(limited)) as base:
        yield base + "/xds/registry"


# -- answers --------------------------------------------------------------------------------------


def test_find_documents_leaf_class_returns_the_registered_entries(
        registry_url: str, new_patient: Callable[..., str]) -> None:
    pid, other = new_patient(), new_patient()
    mine = registered(registry_url, pid, 2)
    registered(registry_url, other)
    answer = query(registry_url, "FindDocuments", find(pid))
    assert_found(answer, document_entries=mine)
    for entry_uuid in mine:
        el = answer.elements[entry_uuid]
        assert el.get("status") == APPROVED
        assert el.get("objectType") == samples.STABLE
        patient_ids = [e.get("value") for e in el.iterchildren(R + "ExternalIdentifier")
                       if e.get("identificationScheme") == samples.DE.patientId]
        assert patient_ids == [pid]
    assert answer.order == sorted(mine), "stable order: by entryUUID"


def test_find_documents_object_ref_returns_ids_only(
        registry_url: str, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    mine = registered(registry_url, pid, 2)
    answer = query(registry_url, "FindDocuments", find(pid), "ObjectRef")
    assert_found(answer, object_refs=mine)


def test_registry_object_return_type_is_answered_as_leaf_class(
        registry_url: str, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    mine = registered(registry_url, pid)
    assert_found(query(registry_url, "FindDocuments", find(pid), "RegistryObject"),
                 document_entries=mine)


def test_unknown_patient_is_an_empty_success(registry_url: str) -> None:
    assert_found(query(registry_url, "FindDocuments", find(samples.new_patient_id())))


def test_tf_sample_values_lenient_unquoted_status_and_quoted_time(
        registry_url: str, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    mine = registered(registry_url, pid)
    answer = query(registry_url, "FindDocuments", [
        ("$XDSDocumentEntryPatientId", quoted(pid)),
        ("$XDSDocumentEntryStatus", APPROVED),  # unquoted single value (TF async sample)
        ("$XDSDocumentEntryCreationTimeFrom", "'2024'"),  # quoted time (CP-ITI-1260)
    ])
    assert_found(answer, document_entries=mine)


def test_status_list_split_over_several_values(
        registry_url: str, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    mine = registered(registry_url, pid)
    answer = query(registry_url, "FindDocuments", [
        ("$XDSDocumentEntryPatientId", quoted(pid)),
        ("$XDSDocumentEntryStatus", [quoted_list([DEPRECATED]), quoted_list([APPROVED])])])
    assert_found(answer, document_entries=mine)


def test_home_is_set_on_returned_objects_when_configured(
        registry_url: str, limited_url: str, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    mine = registered(registry_url, pid)
    answer = query(limited_url, "GetDocuments",
                   {"$XDSDocumentEntryEntryUUID": quoted_list(mine)}, home=HOME)
    assert_found(answer, document_entries=mine)
    assert answer.elements[mine[0]].get("home") == HOME


def test_home_of_a_request_is_accepted_when_none_is_configured(
        registry_url: str, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    mine = registered(registry_url, pid)
    answer = query(registry_url, "GetDocuments",
                   {"$XDSDocumentEntryEntryUUID": quoted_list(mine)}, home="urn:oid:1.2.3")
    assert_found(answer, document_entries=mine)


# -- ITI-51 ---------------------------------------------------------------------------------------


def test_iti51_action_answers_multi_patient_queries(
        registry_url: str, new_patient: Callable[..., str]) -> None:
    a, b, c = new_patient(), new_patient(), new_patient()
    docs = registered(registry_url, a) + registered(registry_url, b)
    registered(registry_url, c)
    answer = query(registry_url, "FindDocumentsForMultiplePatients", [
        ("$XDSDocumentEntryPatientId", quoted_list([a, b])),
        ("$XDSDocumentEntryStatus", quoted_list([APPROVED]))], action=ITI51)
    assert_found(answer, document_entries=docs)


def test_iti51_action_refuses_single_patient_queries(
        registry_url: str, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    registered(registry_url, pid)
    answer = query(registry_url, "FindDocuments", find(pid), action=ITI51)
    assert_query_fails(answer, "XDSUnknownStoredQuery")


def test_iti18_action_also_answers_multi_patient_queries(
        registry_url: str, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    mine = registered(registry_url, pid)
    answer = query(registry_url, "FindDocumentsForMultiplePatients", find(pid))
    assert_found(answer, document_entries=mine)


def test_iti51_response_action(registry_url: str) -> None:
    request = samples.stored_query("FindFoldersForMultiplePatients", {
        "$XDSFolderPatientId": quoted_list([samples.new_patient_id()]),
        "$XDSFolderStatus": quoted_list([APPROVED])})
    resp = soapclient.post_raw(registry_url, soapclient.envelope(ITI51, request))
    env = soapclient.parse_envelope(resp.content)
    assert soapclient.header(env, "Action") == ITI51 + "Response"
    assert soapclient.status(soapclient.body_of(env)) == soapclient.SUCCESS


# -- errors ---------------------------------------------------------------------------------------


def test_unknown_stored_query(registry_url: str) -> None:
    answer = query(registry_url, "urn:uuid:deadbeef-0000-4000-8000-000000000000",
                   find(samples.new_patient_id()))
    (error,) = assert_query_fails(answer, "XDSUnknownStoredQuery")
    assert "urn:uuid:deadbeef-0000-4000-8000-000000000000" in (error.codeContext or "")


def test_missing_required_parameter(registry_url: str) -> None:
    answer = query(registry_url, "FindDocuments",
                   {"$XDSDocumentEntryStatus": quoted_list([APPROVED])})
    (error,) = assert_query_fails(answer, "XDSStoredQueryMissingParam")
    assert "$XDSDocumentEntryPatientId" in (error.codeContext or "")


def test_get_all_needs_patient_id_not_document_entry_patient_id(registry_url: str) -> None:
    pid = samples.new_patient_id()
    answer = query(registry_url, "GetAll", [
        ("$XDSDocumentEntryPatientId", quoted(pid)),
        ("$XDSDocumentEntryStatus", quoted_list([APPROVED])),
        ("$XDSSubmissionSetStatus", quoted_list([APPROVED])),
        ("$XDSFolderStatus", quoted_list([APPROVED]))])
    (error,) = assert_query_fails(answer, "XDSStoredQueryMissingParam")
    assert "$patientId" in (error.codeContext or "")


def test_only_unknown_status_values_is_missing_param(registry_url: str) -> None:
    wrong = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Approved"  # TF sample (point 2)
    answer = query(registry_url, "FindDocuments", find(samples.new_patient_id(), status=(wrong,)))
    assert_query_fails(answer, "XDSStoredQueryMissingParam")


def test_several_values_for_single_valued_parameter(registry_url: str) -> None:
    pid = samples.new_patient_id()
    answer = query(registry_url, "FindDocuments", [
        ("$XDSDocumentEntryPatientId", quoted_list([pid, pid])),
        ("$XDSDocumentEntryStatus", quoted_list([APPROVED]))])
    assert_query_fails(answer, "XDSStoredQueryParamNumber")


def test_repeated_slot_of_a_plain_parameter(registry_url: str) -> None:
    pid = samples.new_patient_id()
    answer = query(registry_url, "FindDocuments", find(
        pid, ("$XDSDocumentEntryClassCode", samples.code_list([samples.CLASS_CODE])),
        ("$XDSDocumentEntryClassCode", samples.code_list([samples.TYPE_CODE]))))
    assert_query_fails(answer, "XDSStoredQueryParamNumber")


def test_both_members_of_an_either_or_pair(registry_url: str) -> None:
    answer = query(registry_url, "GetDocuments", {
        "$XDSDocumentEntryEntryUUID": quoted_list([samples.new_uuid()]),
        "$XDSDocumentEntryUniqueId": quoted_list([samples.new_oid()])})
    assert_query_fails(answer, "XDSStoredQueryParamNumber")


def test_neither_member_of_an_either_or_pair(registry_url: str) -> None:
    assert_query_fails(query(registry_url, "GetFolders", {}), "XDSStoredQueryMissingParam")


@pytest.mark.parametrize(("param", "value"), [
    ("$XDSDocumentEntryClassCode", "('Emergency Department')"),   # TF sample without scheme
    ("$XDSDocumentEntryFormatCode", "('a^^^b')"),                  # CX carets, not CE
    ("$XDSDocumentEntryCreationTimeFrom", "2004-12-25"),
    ("$XDSDocumentEntryServiceStopTimeTo", "'tomorrow'"),
    ("$XDSDocumentEntryEventCodeList", "('a^^s';'b^^s')"),        # ';' is no separator
])
def test_malformed_value_is_metadata_error(registry_url: str, param: str, value: str) -> None:
    answer = query(registry_url, "FindDocuments", find(samples.new_patient_id(), (param, value)))
    (error,) = assert_query_fails(answer, "XDSRegistryMetadataError")
    assert param in (error.codeContext or "")


def test_malformed_patient_id_is_metadata_error(registry_url: str) -> None:
    answer = query(registry_url, "FindDocuments", [
        ("$XDSDocumentEntryPatientId", "'st3498702^^^1.3.6.1.4.1.21367.2005.3.7'"),
        ("$XDSDocumentEntryStatus", quoted_list([APPROVED]))])
    assert_query_fails(answer, "XDSRegistryMetadataError")


def test_unsupported_return_type_is_registry_error(registry_url: str) -> None:
    answer = query(registry_url, "FindDocuments", find(samples.new_patient_id()),
                   "LeafClassWithRepositoryItem")
    assert_query_fails(answer, "XDSRegistryError")


def test_wrong_body_is_registry_error(registry_url: str) -> None:
    resp, body = soapclient.post(registry_url, soapclient.ITI18,
                                 samples.submit_objects_request([]))
    assert resp.status_code == 200
    assert etree.QName(body).localname == "AdhocQueryResponse"
    assert soapclient.error_codes(body) == ["XDSRegistryError"]
    assert body.find(R + "RegistryObjectList") is not None


def test_leaf_class_of_several_patients_is_not_single_patient(
        registry_url: str, new_patient: Callable[..., str]) -> None:
    a, b = new_patient(), new_patient()
    docs = registered(registry_url, a) + registered(registry_url, b)
    params = {"$XDSDocumentEntryEntryUUID": quoted_list(docs)}
    assert_query_fails(query(registry_url, "GetDocuments", params), "XDSResultNotSinglePatient")
    # ObjectRef carries no metadata, so the rule does not apply (iheos-toolkit2 #100).
    assert_found(query(registry_url, "GetDocuments", params, "ObjectRef"), object_refs=docs)


def test_too_many_results(registry_url: str, limited_url: str,
                          new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    docs = registered(registry_url, pid, CAP)
    assert_found(query(limited_url, "FindDocuments", find(pid)), document_entries=docs)
    registered(registry_url, pid)
    assert_query_fails(query(limited_url, "FindDocuments", find(pid)), "XDSTooManyResults")
    assert_query_fails(query(limited_url, "FindDocuments", find(pid), "ObjectRef"),
                       "XDSTooManyResults")


def test_too_many_results_counts_every_object_type(
        registry_url: str, limited_url: str, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    registered(registry_url, pid, 2)  # 1 SS + 2 DE + 2 HasMember = 5 objects > CAP
    answer = query(limited_url, "GetAll", [
        ("$patientId", quoted(pid)), ("$XDSDocumentEntryStatus", quoted_list([APPROVED])),
        ("$XDSSubmissionSetStatus", quoted_list([APPROVED])),
        ("$XDSFolderStatus", quoted_list([APPROVED]))])
    assert_query_fails(answer, "XDSTooManyResults")


def test_other_home_community_is_unknown(
        registry_url: str, limited_url: str, new_patient: Callable[..., str]) -> None:
    pid = new_patient()
    mine = registered(registry_url, pid)
    answer = query(limited_url, "GetDocuments",
                   {"$XDSDocumentEntryEntryUUID": quoted_list(mine)}, home="urn:oid:1.2.3.999")
    assert_query_fails(answer, "XDSUnknownCommunity")
