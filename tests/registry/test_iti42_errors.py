"""ITI-42 Register Document Set-b over real HTTP: every error code of the validation checklist,
and that a failed submission stores nothing (ITI TF-2 §3.42.4.1.3, TF-3 Table 4.2.4.1-2)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from lxml import etree
from sqlalchemy import Engine

from tests import samples, soapclient
from tests.registry.iti42_support import (
    R, assert_failure, assert_nothing_stored, assert_success, entry, register,
    registered_document, registered_folder, relationship_submission, remove_classifications,
    remove_external_identifier, remove_slot, snapshot, unique_id_of,
)
from tests.samples import DE, DEPRECATED, FD, SS

NewPatient = Callable[..., str]
Mutation = Callable[[etree._Element], None]

METADATA = "XDSRegistryMetadataError"


def _doc_submission(pid: str, de: etree._Element) -> etree._Element:
    """SubmissionSet01 + ``de`` (id Document01) + its HasMember."""
    return samples.submit_objects_request([
        samples.submission_set(patient_id=pid), de,
        samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original"),
    ])


def _fails(url: str, engine: Engine, request: etree._Element, code: str, pid: str,
           unique_ids: list[str] | None = None) -> list[soapclient.RegistryError]:
    """Register ``request``: Failure with ``code`` only, and no row at all for ``pid`` or for
    the uniqueIds of the request's objects."""
    uids = unique_ids if unique_ids is not None else _unique_ids(request)
    errors = assert_failure(register(url, request), code)
    assert_nothing_stored(engine, pid, uids)
    return errors


def _fails_unchanged(url: str, engine: Engine, request: etree._Element, code: str, pid: str,
                     ) -> list[soapclient.RegistryError]:
    """Like ``_fails`` for a patient that already has registry content: nothing changes."""
    uids = _unique_ids(request)
    before = snapshot(engine, pid, uids)
    errors = assert_failure(register(url, request), code)
    assert snapshot(engine, pid, uids) == before
    return errors


def _unique_ids(request: etree._Element) -> list[str]:
    found = []
    for obj in request.iter(R + "ExtrinsicObject", R + "RegistryPackage"):
        try:
            found.append(unique_id_of(obj))
        except AssertionError:
            pass
    return found


def _drop_attribute(name: str) -> Mutation:
    def mutate(el: etree._Element) -> None:
        del el.attrib[name]
    return mutate


def _drop_slot(name: str) -> Mutation:
    return lambda el: remove_slot(el, name)


def _drop_code(scheme: str) -> Mutation:
    return lambda el: remove_classifications(el, scheme)


def _drop_identifier(scheme: str) -> Mutation:
    return lambda el: remove_external_identifier(el, scheme)


def _drop_name(el: etree._Element) -> None:
    name = el.find(R + "Name")
    assert name is not None
    el.remove(name)


# -- required attributes ("XDS DR" column of ITI TF-3 Table 4.3.1-3) -------------------------------

DOCUMENT_ENTRY_REQUIRED: dict[str, Mutation] = {
    "patientId": _drop_identifier(DE.patientId),
    "uniqueId": _drop_identifier(DE.uniqueId),
    "classCode": _drop_code(DE.classCode),
    "confidentialityCode": _drop_code(DE.confidentialityCode),
    "creationTime": _drop_slot("creationTime"),
    "formatCode": _drop_code(DE.formatCode),
    "healthcareFacilityTypeCode": _drop_code(DE.healthcareFacilityTypeCode),
    "languageCode": _drop_slot("languageCode"),
    "practiceSettingCode": _drop_code(DE.practiceSettingCode),
    "sourcePatientId": _drop_slot("sourcePatientId"),
    "typeCode": _drop_code(DE.typeCode),
    "hash": _drop_slot("hash"),
    "size": _drop_slot("size"),
    "repositoryUniqueId": _drop_slot("repositoryUniqueId"),
    "mimeType": _drop_attribute("mimeType"),
}


@pytest.mark.parametrize("attribute", list(DOCUMENT_ENTRY_REQUIRED))
def test_document_entry_missing_required_attribute_is_xds_registry_metadata_error(
        attribute: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    de = samples.document_entry(patient_id=pid)
    uid = unique_id_of(de)
    DOCUMENT_ENTRY_REQUIRED[attribute](de)
    _fails(registry_url, engine, _doc_submission(pid, de), METADATA, pid, [uid])


SUBMISSION_SET_REQUIRED: dict[str, Mutation] = {
    "patientId": _drop_identifier(SS.patientId),
    "uniqueId": _drop_identifier(SS.uniqueId),
    "sourceId": _drop_identifier(SS.sourceId),
    "submissionTime": _drop_slot("submissionTime"),
    "contentTypeCode": _drop_code(SS.contentTypeCode),
}


@pytest.mark.parametrize("attribute", list(SUBMISSION_SET_REQUIRED))
def test_submission_set_missing_required_attribute_is_xds_registry_metadata_error(
        attribute: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    ss = samples.submission_set(patient_id=pid)
    uids = [unique_id_of(ss)]
    SUBMISSION_SET_REQUIRED[attribute](ss)
    de = samples.document_entry(patient_id=pid)
    request = samples.submit_objects_request([
        ss, de, samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original")])
    _fails(registry_url, engine, request, METADATA, pid, [*uids, unique_id_of(de)])


FOLDER_REQUIRED: dict[str, Mutation] = {
    "codeList": _drop_code(FD.codeList),
    "title": _drop_name,
    "uniqueId": _drop_identifier(FD.uniqueId),
    "patientId": _drop_identifier(FD.patientId),
}


@pytest.mark.parametrize("attribute", list(FOLDER_REQUIRED))
def test_folder_missing_required_attribute_is_xds_registry_metadata_error(
        attribute: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    fd = samples.folder(patient_id=pid)
    uids = [unique_id_of(fd)]
    FOLDER_REQUIRED[attribute](fd)
    ss = samples.submission_set(patient_id=pid)
    request = samples.submit_objects_request([
        ss, fd, samples.has_member("ss-fd", "SubmissionSet01", "Folder01")])
    _fails(registry_url, engine, request, METADATA, pid, [*uids, unique_id_of(ss)])


# -- malformed values ------------------------------------------------------------------------------

MALFORMED_DOCUMENT_ENTRY: dict[str, dict[str, object]] = {
    "sourcePatientId not CX": {"source_patient_id": "12345"},
    "sourcePatientId CX without ISO": {"source_patient_id": "12345^^^&1.2.3&L"},
    "creationTime not DTM": {"creation_time": "2024-01-02T03:04:05"},
    "creationTime month 13": {"creation_time": "20241301"},
    "serviceStartTime not DTM": {"service_start_time": "yesterday"},
    "hash not 40 hex": {"hash": "abc123"},
    "hash with non-hex": {"hash": "z" * 40},
    "size not integer": {"size": -5},
    "repositoryUniqueId not OID": {"repository_unique_id": "repo.one"},
    "languageCode": {"language_code": "en US"},
    "mimeType": {"mime_type": "textplain"},
    "legalAuthenticator not XCN": {"legal_authenticator": "^"},
    "sourcePatientInfo not PID-n": {"source_patient_info": ["Doe^John"]},
    "referenceIdList not CXi": {"reference_ids": ["123"]},
}


@pytest.mark.parametrize("case", list(MALFORMED_DOCUMENT_ENTRY))
def test_document_entry_malformed_value_is_xds_registry_metadata_error(
        case: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    options = MALFORMED_DOCUMENT_ENTRY[case]
    de = samples.document_entry(patient_id=pid, **options)  # type: ignore[arg-type]
    _fails(registry_url, engine, _doc_submission(pid, de), METADATA, pid)


@pytest.mark.parametrize("bad_cx", ["12345", "12345^^^&1.2.3&ISOX", "12345^x^^&1.2.3&ISO",
                                    "^^^&1.2.3&ISO", "12345^^^&not.an.oid&ISO"])
def test_patient_id_not_cx_is_xds_registry_metadata_error(
        bad_cx: str, registry_url: str, engine: Engine) -> None:
    request = samples.single_document_submission(bad_cx)
    _fails(registry_url, engine, request, METADATA, bad_cx)


@pytest.mark.parametrize("options", [
    {"unique_id": "1.2.abc"}, {"unique_id": "1.02.3"}, {"source_id": "source"},
    {"submission_time": "2024-01-01"},
], ids=["uniqueId letters", "uniqueId leading zero", "sourceId", "submissionTime"])
def test_submission_set_malformed_value_is_xds_registry_metadata_error(
        options: dict[str, str], registry_url: str, engine: Engine,
        new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.single_document_submission(pid, submission_set_options=options)
    _fails(registry_url, engine, request, METADATA, pid)


def test_folder_unique_id_not_oid_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid), samples.folder(patient_id=pid, unique_id="F-1"),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01")])
    _fails(registry_url, engine, request, METADATA, pid)


@pytest.mark.parametrize("obj", ["DocumentEntry", "SubmissionSet", "Association"])
def test_uppercase_uuid_id_is_xds_registry_metadata_error(
        obj: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    upper = "urn:uuid:" + str(uuid.uuid4()).upper()
    ss_id = upper if obj == "SubmissionSet" else "SubmissionSet01"
    de_id = upper if obj == "DocumentEntry" else "Document01"
    assoc_id = upper if obj == "Association" else "ss-de"
    request = samples.submit_objects_request([
        samples.submission_set(ss_id, patient_id=pid),
        samples.document_entry(de_id, patient_id=pid),
        samples.has_member(assoc_id, ss_id, de_id, "Original")])
    _fails(registry_url, engine, request, METADATA, pid)


def test_service_start_after_stop_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.single_document_submission(
        pid, service_start_time="20240102", service_stop_time="20240101235959")
    _fails(registry_url, engine, request, METADATA, pid)


def test_service_start_equal_to_stop_at_other_precision_is_accepted(
        registry_url: str, new_patient: NewPatient) -> None:
    request = samples.single_document_submission(
        new_patient(), service_start_time="20240101", service_stop_time="202401010000")
    assert_success(register(registry_url, request))


# -- coded attributes and dual context (ITI TF-3 §4.2.3.1.2-3) -------------------------------------


def _class_code(de: etree._Element) -> etree._Element:
    (cl,) = [c for c in de.iterchildren(R + "Classification")
             if c.get("classificationScheme") == DE.classCode]
    return cl


def _no_coding_scheme(de: etree._Element) -> None:
    remove_slot(_class_code(de), "codingScheme")


def _two_coding_schemes(de: etree._Element) -> None:
    remove_slot(_class_code(de), "codingScheme")
    _class_code(de).insert(0, samples.slot("codingScheme", ["1.2.3", "1.2.4"]))


def _no_node_representation(de: etree._Element) -> None:
    del _class_code(de).attrib["nodeRepresentation"]


def _no_display_name(de: etree._Element) -> None:
    _drop_name(_class_code(de))


def _foreign_classified_object(de: etree._Element) -> None:
    _class_code(de).set("classifiedObject", "SubmissionSet01")


def _foreign_registry_object(de: etree._Element) -> None:
    for ei in de.iterchildren(R + "ExternalIdentifier"):
        ei.set("registryObject", "SubmissionSet01")


def _two_class_codes(de: etree._Element) -> None:
    de.append(samples.classification(DE.classCode, "Document01", samples.TYPE_CODE, id="x.cl"))


def _duplicate_slot(de: etree._Element) -> None:
    de.insert(0, samples.slot("languageCode", "de-CH"))


def _two_creation_times(de: etree._Element) -> None:
    remove_slot(de, "creationTime")
    de.insert(0, samples.slot("creationTime", ["20240101", "20240102"]))


def _on_demand(de: etree._Element) -> None:
    de.set("objectType", samples.ON_DEMAND)


def _limited_metadata(de: etree._Element) -> None:
    de.append(samples.node_classification("urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85",
                                          "Document01", id="x.lm"))


COMPOSITION: dict[str, Mutation] = {
    "code without codingScheme": _no_coding_scheme,
    "code with two codingScheme values": _two_coding_schemes,
    "code without nodeRepresentation": _no_node_representation,
    "code without display name": _no_display_name,
    "classifiedObject not the containing object": _foreign_classified_object,
    "registryObject not the containing object": _foreign_registry_object,
    "classCode twice": _two_class_codes,
    "slot name twice": _duplicate_slot,
    "creationTime with two values": _two_creation_times,
    "On-Demand objectType": _on_demand,
    "limitedMetadata": _limited_metadata,
}


@pytest.mark.parametrize("case", list(COMPOSITION))
def test_document_entry_composition_error_is_xds_registry_metadata_error(
        case: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    de = samples.document_entry(patient_id=pid)
    uid = unique_id_of(de)
    COMPOSITION[case](de)
    _fails(registry_url, engine, _doc_submission(pid, de), METADATA, pid, [uid])


# -- submission structure (ITI TF-3 §4.1.4) --------------------------------------------------------


def test_no_submission_set_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.submit_objects_request([
        samples.document_entry(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original")])
    _fails(registry_url, engine, request, METADATA, pid)


def test_two_submission_sets_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.submit_objects_request([
        samples.submission_set("SS1", patient_id=pid),
        samples.submission_set("SS2", patient_id=pid),
        samples.document_entry(patient_id=pid),
        samples.has_member("ss1-de", "SS1", "Document01", "Original"),
        samples.has_member("ss2-de", "SS2", "Document01", "Original")])
    _fails(registry_url, engine, request, METADATA, pid)


def test_submission_set_alone_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.submit_objects_request([samples.submission_set(patient_id=pid)])
    _fails(registry_url, engine, request, METADATA, pid)


def test_registry_package_without_type_classification_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    fd, _node = samples.folder(patient_id=pid, classification_inside=False)  # node left out
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid), fd,
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01")])
    _fails(registry_url, engine, request, METADATA, pid)


def test_sibling_classification_of_unknown_package_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.single_document_submission(pid)
    object_list = request.find(R + "RegistryObjectList")
    assert object_list is not None
    object_list.append(samples.node_classification(FD.classificationNode, "NoSuchFolder"))
    _fails(registry_url, engine, request, METADATA, pid)


@pytest.mark.parametrize("member", ["DocumentEntry", "Folder", "FD-DE"])
def test_object_without_submission_set_has_member_is_xds_registry_metadata_error(
        member: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    objects = [
        samples.submission_set(patient_id=pid), samples.document_entry(patient_id=pid),
        samples.folder(patient_id=pid),
        samples.has_member("fd-de", "Folder01", "Document01"),
    ]
    if member != "DocumentEntry":
        objects.append(samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original"))
    if member != "Folder":
        objects.append(samples.has_member("ss-fd", "SubmissionSet01", "Folder01"))
    if member != "FD-DE":
        objects.append(samples.has_member("ss-hm", "SubmissionSet01", "fd-de"))
    _fails(registry_url, engine, samples.submit_objects_request(objects), METADATA, pid)


@pytest.mark.parametrize("status", [None, "Originale", ["Original", "Reference"], "Reference"],
                         ids=["missing", "invalid", "two values", "Reference for DE in submission"])
def test_bad_submission_set_status_is_xds_registry_metadata_error(
        status: str | list[str] | None, registry_url: str, engine: Engine,
        new_patient: NewPatient) -> None:
    pid = new_patient()
    assoc = samples.has_member("ss-de", "SubmissionSet01", "Document01")
    if status is not None:
        assoc.append(samples.slot("SubmissionSetStatus", status))
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid), samples.document_entry(patient_id=pid), assoc])
    _fails(registry_url, engine, request, METADATA, pid)


def test_submission_set_status_original_for_registered_document_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    de_id, _ = registered_document(registry_url, pid)
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", de_id, "Original")])
    _fails_unchanged(registry_url, engine, request, METADATA, pid)


def test_submission_set_status_on_folder_has_member_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    fd_de = samples.association("fd-de", "HasMember", "Folder01", "Document01",
                                submission_set_status="Original")
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid), samples.document_entry(patient_id=pid),
        samples.folder(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original"),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"), fd_de,
        samples.has_member("ss-hm", "SubmissionSet01", "fd-de")])
    _fails(registry_url, engine, request, METADATA, pid)


def test_unknown_association_type_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    target_id, _ = registered_document(registry_url, pid)
    request = relationship_submission(pid, "urn:example:AssociationType:Likes", target_id)
    _fails_unchanged(registry_url, engine, request, METADATA, pid)


def test_on_demand_target_required_by_is_snapshot_of(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    target_id, _ = registered_document(registry_url, pid)  # Stable, not On-Demand
    request = relationship_submission(pid, "IsSnapshotOf", target_id)
    _fails_unchanged(registry_url, engine, request, METADATA, pid)


# -- patient ids (ITI TF-2 §3.42.4.1.3.3.2) --------------------------------------------------------


def test_document_patient_differs_from_submission_set_is_xds_patient_id_does_not_match(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid, other = new_patient(), new_patient()
    request = samples.single_document_submission(
        other, submission_set_options={"patient_id": pid})
    _fails(registry_url, engine, request, "XDSPatientIdDoesNotMatch", pid)
    assert_nothing_stored(engine, other)


def test_folder_patient_differs_from_submission_set_is_xds_patient_id_does_not_match(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid, other = new_patient(), new_patient()
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid), samples.folder(patient_id=other),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01")])
    _fails(registry_url, engine, request, "XDSPatientIdDoesNotMatch", pid)
    assert_nothing_stored(engine, other)


def test_document_into_folder_of_other_patient_is_xds_patient_id_does_not_match(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    owner, pid = new_patient(), new_patient()
    folder_id = registered_folder(registry_url, owner)
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid), samples.document_entry(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original"),
        samples.has_member("fd-de", folder_id, "Document01"),
        samples.has_member("ss-hm", "SubmissionSet01", "fd-de")])
    before = snapshot(engine, owner)
    _fails(registry_url, engine, request, "XDSPatientIdDoesNotMatch", pid)
    assert snapshot(engine, owner) == before


def test_rplc_of_other_patients_document_is_xds_patient_id_does_not_match(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    owner, pid = new_patient(), new_patient()
    old_id, _ = registered_document(registry_url, owner)
    _fails(registry_url, engine, relationship_submission(pid, "RPLC", old_id),
           "XDSPatientIdDoesNotMatch", pid)
    assert entry(engine, old_id).status == samples.APPROVED


def test_unknown_patient_is_xds_unknown_patient_id_with_the_id_as_code_context(
        registry_url: str, engine: Engine) -> None:
    pid = samples.new_patient_id()  # never fed
    errors = _fails(registry_url, engine, samples.single_document_submission(pid),
                    "XDSUnknownPatientId", pid)
    assert [e.codeContext for e in errors] == [pid]


def test_patient_of_other_affinity_domain_is_xds_unknown_patient_id(
        registry_url: str, engine: Engine) -> None:
    pid = samples.new_patient_id("1.2.3.4.5")
    _fails(registry_url, engine, samples.single_document_submission(pid),
           "XDSUnknownPatientId", pid)


# -- uniqueIds (ITI TF-2 §3.42.4.1.3.3.1, .7) -----------------------------------------------------


def test_two_documents_with_one_unique_id_is_xds_registry_duplicate_unique_id_in_message(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    uid = samples.new_oid()
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.document_entry("Doc1", patient_id=pid, unique_id=uid),
        samples.document_entry("Doc2", patient_id=pid, unique_id=uid),
        samples.has_member("ss-de1", "SubmissionSet01", "Doc1", "Original"),
        samples.has_member("ss-de2", "SubmissionSet01", "Doc2", "Original")])
    errors = _fails(registry_url, engine, request, "XDSRegistryDuplicateUniqueIdInMessage", pid)
    assert [e.codeContext for e in errors] == [uid]


def test_folder_with_submission_set_unique_id_is_xds_registry_duplicate_unique_id_in_message(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    uid = samples.new_oid()
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid, unique_id=uid),
        samples.folder(patient_id=pid, unique_id=uid),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01")])
    errors = _fails(registry_url, engine, request, "XDSRegistryDuplicateUniqueIdInMessage", pid)
    assert [e.codeContext for e in errors] == [uid]


def test_reused_submission_set_unique_id_is_xds_duplicate_unique_id_in_registry(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    ss_uid = samples.new_oid()
    options = {"unique_id": ss_uid}
    assert_success(register(registry_url, samples.single_document_submission(
        pid, submission_set_options=options)))
    request = samples.single_document_submission(pid, submission_set_options=options)
    errors = _fails_unchanged(registry_url, engine, request, "XDSDuplicateUniqueIdInRegistry", pid)
    assert ss_uid in (errors[0].codeContext or "")


@pytest.mark.parametrize("first", ["Folder", "SubmissionSet"])
def test_reused_folder_unique_id_is_xds_duplicate_unique_id_in_registry(
        first: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    uid = samples.new_oid()
    if first == "Folder":
        assert_success(register(registry_url, samples.submit_objects_request([
            samples.submission_set(patient_id=pid), samples.folder(patient_id=pid, unique_id=uid),
            samples.has_member("ss-fd", "SubmissionSet01", "Folder01")])))
    else:
        assert_success(register(registry_url, samples.single_document_submission(
            pid, submission_set_options={"unique_id": uid})))
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid), samples.folder(patient_id=pid, unique_id=uid),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01")])
    errors = _fails_unchanged(registry_url, engine, request, "XDSDuplicateUniqueIdInRegistry", pid)
    assert uid in (errors[0].codeContext or "")


def test_submission_set_with_a_document_unique_id_is_xds_duplicate_unique_id_in_registry(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    _, de_uid = registered_document(registry_url, pid)
    request = samples.single_document_submission(pid, submission_set_options={"unique_id": de_uid})
    _fails_unchanged(registry_url, engine, request, "XDSDuplicateUniqueIdInRegistry", pid)


def test_document_with_a_folder_unique_id_is_xds_registry_metadata_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    uid = samples.new_oid()
    assert_success(register(registry_url, samples.submit_objects_request([
        samples.submission_set(patient_id=pid), samples.folder(patient_id=pid, unique_id=uid),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01")])))
    request = samples.single_document_submission(pid, unique_id=uid)
    # Never XDSDuplicateUniqueIdInRegistry for a DocumentEntry (TF-3 Table 4.2.4.1-2).
    _fails_unchanged(registry_url, engine, request, METADATA, pid)


def test_same_document_unique_id_with_other_hash_is_xds_non_identical_hash(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    _, uid = registered_document(registry_url, pid, content=b"first version\n")
    request = samples.single_document_submission(pid, unique_id=uid, content=b"other version\n")
    errors = _fails_unchanged(registry_url, engine, request, "XDSNonIdenticalHash", pid)
    assert [e.codeContext for e in errors] == [uid]


def test_same_document_unique_id_with_other_size_is_xds_non_identical_size(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    content = b"some octets\n"
    de_id, uid = registered_document(registry_url, pid, content=content)
    request = samples.single_document_submission(
        pid, unique_id=uid, hash=entry(engine, de_id).hash, size=len(content) + 1)
    errors = _fails_unchanged(registry_url, engine, request, "XDSNonIdenticalSize", pid)
    assert [e.codeContext for e in errors] == [uid]


@pytest.mark.parametrize("obj", ["DocumentEntry", "SubmissionSet"])
def test_pre_assigned_uuid_already_in_registry_is_xds_registry_metadata_error(
        obj: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    ss_id, de_id = samples.new_uuid(), samples.new_uuid()
    assert_success(register(registry_url, samples.submit_objects_request([
        samples.submission_set(ss_id, patient_id=pid),
        samples.document_entry(de_id, patient_id=pid),
        samples.has_member("ss-de", ss_id, de_id, "Original")])))
    new_ss = ss_id if obj == "SubmissionSet" else "SubmissionSet01"
    new_de = de_id if obj == "DocumentEntry" else "Document01"
    request = samples.submit_objects_request([
        samples.submission_set(new_ss, patient_id=pid),
        samples.document_entry(new_de, patient_id=pid),
        samples.has_member("ss-de", new_ss, new_de, "Original")])
    _fails_unchanged(registry_url, engine, request, METADATA, pid)


# -- references (ITI TF-2 §3.42.4.1.3.5, TF-3 §4.2.1.5) --------------------------------------------


def test_symbolic_reference_to_nothing_is_unresolved_reference_exception(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.single_document_submission(pid)
    object_list = request.find(R + "RegistryObjectList")
    assert object_list is not None
    object_list.append(samples.association("rel", "APND", "Document01", "NoSuchDocument"))
    _fails(registry_url, engine, request, "UnresolvedReferenceException", pid)


def test_uuid_reference_to_nothing_is_unresolved_reference_exception(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", samples.new_uuid(), "Reference")])
    _fails(registry_url, engine, request, "UnresolvedReferenceException", pid)


def test_rplc_target_not_in_registry_is_unresolved_reference_exception(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    _fails(registry_url, engine, relationship_submission(pid, "RPLC", samples.new_uuid()),
           "UnresolvedReferenceException", pid)


def test_rplc_target_in_the_same_submission_is_unresolved_reference_exception(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = relationship_submission(pid, "RPLC", "Old", extra=[
        samples.document_entry("Old", patient_id=pid),
        samples.has_member("ss-old", "SubmissionSet01", "Old", "Original")])
    _fails(registry_url, engine, request, "UnresolvedReferenceException", pid)


def test_relationship_source_not_in_submission_is_unresolved_reference_exception(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    registered_id, _ = registered_document(registry_url, pid)
    target_id, _ = registered_document(registry_url, pid)
    request = relationship_submission(pid, "XFRM", target_id, source=registered_id)
    _fails_unchanged(registry_url, engine, request, "UnresolvedReferenceException", pid)


# -- deprecated targets (ITI TF-2 §3.42.4.1.3.5) ---------------------------------------------------


def _deprecated_document(url: str, engine: Engine, pid: str) -> str:
    old_id, _ = registered_document(url, pid)
    assert_success(register(url, relationship_submission(pid, "RPLC", old_id)))
    assert entry(engine, old_id).status == DEPRECATED
    return old_id


@pytest.mark.parametrize("association_type", ["RPLC", "XFRM_RPLC", "APND", "XFRM", "signs"])
def test_relationship_to_deprecated_document_is_xds_registry_deprecated_document_error(
        association_type: str, registry_url: str, engine: Engine,
        new_patient: NewPatient) -> None:
    pid = new_patient()
    old_id = _deprecated_document(registry_url, engine, pid)
    _fails_unchanged(registry_url, engine, relationship_submission(pid, association_type, old_id),
                     "XDSRegistryDeprecatedDocumentError", pid)


def test_reference_to_deprecated_document_is_xds_registry_deprecated_document_error(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    old_id = _deprecated_document(registry_url, engine, pid)
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", old_id, "Reference")])
    _fails_unchanged(registry_url, engine, request, "XDSRegistryDeprecatedDocumentError", pid)


# -- atomicity (ITI TF-2 §3.42.4.1.3: all or nothing) ---------------------------------------------


def test_invalid_last_document_stores_nothing_of_the_valid_ones(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    good = samples.document_entry("Good", patient_id=pid)
    bad = samples.document_entry("Bad", patient_id=pid, class_code=None)
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid), samples.folder(patient_id=pid), good, bad,
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"),
        samples.has_member("ss-good", "SubmissionSet01", "Good", "Original"),
        samples.has_member("ss-bad", "SubmissionSet01", "Bad", "Original")])
    _fails(registry_url, engine, request, METADATA, pid)


def test_last_document_with_non_identical_hash_stores_nothing(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    _, taken = registered_document(registry_url, pid, content=b"taken\n")
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.document_entry("Good", patient_id=pid),
        samples.document_entry("Clash", patient_id=pid, unique_id=taken, content=b"changed\n"),
        samples.has_member("ss-good", "SubmissionSet01", "Good", "Original"),
        samples.has_member("ss-clash", "SubmissionSet01", "Clash", "Original")])
    _fails_unchanged(registry_url, engine, request, "XDSNonIdenticalHash", pid)


def test_rplc_to_deprecated_target_after_valid_documents_stores_nothing(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    live_id, _ = registered_document(registry_url, pid)
    old_id = _deprecated_document(registry_url, engine, pid)
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.document_entry("Doc1", patient_id=pid),
        samples.document_entry("Doc2", patient_id=pid),
        samples.folder(patient_id=pid),
        samples.has_member("ss-de1", "SubmissionSet01", "Doc1", "Original"),
        samples.has_member("ss-de2", "SubmissionSet01", "Doc2", "Original"),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"),
        samples.has_member("fd-de1", "Folder01", "Doc1"),
        samples.has_member("ss-hm1", "SubmissionSet01", "fd-de1"),
        samples.association("rplc1", "RPLC", "Doc1", live_id),
        samples.association("rplc2", "RPLC", "Doc2", old_id)])
    _fails_unchanged(registry_url, engine, request, "XDSRegistryDeprecatedDocumentError", pid)
    assert entry(engine, live_id).status == samples.APPROVED  # the first RPLC did not happen


# -- what is not a SubmitObjectsRequest ------------------------------------------------------------

EBRIM_21 = b"""<rs:SubmitObjectsRequest xmlns:rs="urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"
    xmlns:rim="urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1">
  <rim:LeafRegistryObjectList><rim:ExtrinsicObject id="Document01" mimeType="text/plain"
    objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"/></rim:LeafRegistryObjectList>
</rs:SubmitObjectsRequest>"""
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"


@pytest.mark.parametrize("body", [
    EBRIM_21,
    samples.to_bytes(samples.stored_query("GetDocuments", {"$XDSDocumentEntryUUID": "('x')"})),
    f'<lcm:SubmitObjectsRequest xmlns:lcm="{LCM}"/>'.encode(),
    f'<lcm:SubmitObjectsRequest xmlns:lcm="{LCM}" xmlns:rim="{samples.NS_RIM}">'
    '<rim:RegistryObjectList><rim:Federation id="f"/></rim:RegistryObjectList>'
    '</lcm:SubmitObjectsRequest>'.encode(),
], ids=["ebRIM 2.1", "AdhocQueryRequest", "no RegistryObjectList", "unexpected object"])
def test_body_that_is_not_an_ebrim_30_submission_is_xds_registry_metadata_error(
        body: bytes, registry_url: str) -> None:
    assert_failure(register(registry_url, body), METADATA)


SOAP11 = b"""<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
<s:Body><lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"/>
</s:Body></s:Envelope>"""


@pytest.mark.parametrize(("data", "content_type"), [
    (b"this is not XML", "application/soap+xml; charset=UTF-8"),
    (SOAP11, 'text/xml; charset=UTF-8'),
    (SOAP11, "application/soap+xml; charset=UTF-8"),
], ids=["not XML", "SOAP 1.1 text/xml", "SOAP 1.1 envelope"])
def test_unparseable_request_is_a_soap_fault_not_a_registry_response(
        data: bytes, content_type: str, registry_url: str) -> None:
    resp = soapclient.post_raw(registry_url, data, content_type=content_type)
    assert 400 <= resp.status_code < 500
    fault = soapclient.body_of(soapclient.parse_envelope(resp.content))
    assert fault.tag == f"{{{soapclient.NS_SOAP}}}Fault"
