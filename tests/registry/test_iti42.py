"""ITI-42 Register Document Set-b over real HTTP: successful registrations and their side effects
(ITI TF-2 §3.42.4.1.3; digest shared/spec/xds-b.md §3-4)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree
from sqlalchemy import Engine, update

from tests import samples, soapclient, xsd
from tests.registry.iti42_support import (
    R, UUID_URN, assert_success, associations, entries, entry, folder_row, register,
    registered_document, registered_folder, relationship_submission, rows, unique_id_of,
)
from tests.samples import APPROVED, ASSOCIATION_TYPES, DEPRECATED
from xds.store import tables

HAS_MEMBER = ASSOCIATION_TYPES["HasMember"]
_PAST = "20000101000000"

NewPatient = Callable[..., str]


def _slots(xml: bytes) -> dict[str, list[str]]:
    el = etree.fromstring(xml)
    return {s.get("name") or "": [v.text or "" for v in s.iter(R + "Value")]
            for s in el.iterchildren(R + "Slot")}


def _set_last_update_time(engine: Engine, folder_id: str, value: str) -> None:
    # Registrations within one second get the same lastUpdateTime; backdating the Folder makes
    # the registry's update observable without sleeping.
    with engine.begin() as conn:
        conn.execute(update(tables.folder).where(tables.folder.c.id == folder_id)
                     .values(last_update_time=value))


def _assert_ids_resolved(xml: bytes, entry_uuid: str) -> None:
    """The stored object's own id, its Classifications' and ExternalIdentifiers' ids and back
    references are registry-assigned UUIDs pointing at ``entry_uuid`` (ITI TF-2 §3.42.4.1.3.7)."""
    el = etree.fromstring(xml)
    assert el.get("id") == entry_uuid
    for child in el.iter(R + "Classification", R + "ExternalIdentifier"):
        assert UUID_URN.match(child.get("id") or ""), etree.tostring(child)
        back = child.get("classifiedObject") or child.get("registryObject")
        assert back == entry_uuid


# -- single and composite submissions --------------------------------------------------------------


def test_single_document_is_registered_approved_with_fresh_uuids(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.single_document_submission(pid)
    body = register(registry_url, request)
    assert assert_success(body) == []
    assert body.find(f"{{{samples.NS_RS}}}RegistryErrorList") is None

    (de,) = entries(engine, pid)
    (ss,) = rows(engine, tables.submission_set, patient_id=pid)
    (assoc,) = associations(engine, pid)
    for row in (de, ss, assoc):
        assert UUID_URN.match(row.id), row.id
        assert row.status == APPROVED
    assert de.lid == de.id and de.version == 1 and de.submission_set_id == ss.id
    assert de.object_type == samples.STABLE
    assert (assoc.association_type, assoc.source_id, assoc.target_id) == (HAS_MEMBER, ss.id, de.id)
    (claim,) = rows(engine, tables.unique_id_claim, unique_id=de.unique_id)
    assert (claim.kind, claim.hash, claim.size) == ("DocumentEntry", de.hash, de.size)

    _assert_ids_resolved(de.xml, de.id)
    _assert_ids_resolved(ss.xml, ss.id)
    stored_assoc = etree.fromstring(assoc.xml)
    assert (stored_assoc.get("sourceObject"), stored_assoc.get("targetObject")) == (ss.id, de.id)
    assert _slots(assoc.xml)["SubmissionSetStatus"] == ["Original"]
    # DTM strings are kept verbatim (ITI TF-2 §3.42.4.1.3, Table 4.3.2.1-2).
    assert _slots(de.xml)["creationTime"] == ["20240102030405"]


def test_documents_folder_fd_de_and_ss_hm_are_registered_together(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    docs = [samples.document_entry(f"Doc{i}", patient_id=pid) for i in range(3)]
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        *docs,
        samples.folder(patient_id=pid),
        *(samples.has_member(f"ss-de{i}", "SubmissionSet01", f"Doc{i}", "Original")
          for i in range(3)),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"),
        samples.has_member("fd-de0", "Folder01", "Doc0"),
        samples.has_member("fd-de1", "Folder01", "Doc1"),
        samples.has_member("ss-hm0", "SubmissionSet01", "fd-de0"),
        samples.has_member("ss-hm1", "SubmissionSet01", "fd-de1"),
    ])
    before = samples.now_dtm()
    assert_success(register(registry_url, request))

    by_uid = {row.unique_id: row for row in entries(engine, pid)}
    assert set(by_uid) == {unique_id_of(d) for d in docs}
    assert {row.status for row in by_uid.values()} == {APPROVED}
    (ss,) = rows(engine, tables.submission_set, patient_id=pid)
    (fd,) = rows(engine, tables.folder, patient_id=pid)
    assert fd.status == APPROVED and UUID_URN.match(fd.id)
    assert fd.last_update_time >= before
    assert [r.code for r in rows(engine, tables.folder_code, folder_id=fd.id)] == [
        samples.FOLDER_CODE.param]

    assocs = associations(engine, pid)
    assert len(assocs) == 8 and {a.status for a in assocs} == {APPROVED}
    doc = {i: by_uid[unique_id_of(docs[i])].id for i in range(3)}
    fd_de = {a.id: a.target_id for a in assocs if a.source_id == fd.id}
    assert sorted(fd_de.values()) == sorted([doc[0], doc[1]])
    from_ss = {a.target_id for a in assocs if a.source_id == ss.id}
    # Symbolic ids map to one UUID each, used in every reference (§3.42.4.1.3.7).
    assert from_ss == {doc[0], doc[1], doc[2], fd.id, *fd_de}
    assert all(a.association_type == HAS_MEMBER for a in assocs)


def test_same_symbolic_ids_in_two_submissions_get_different_uuids(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    for _ in range(2):
        assert_success(register(registry_url, samples.single_document_submission(pid)))
    ids = [row.id for row in entries(engine, pid)]
    assert len(set(ids)) == 2 and all(UUID_URN.match(i) for i in ids)


def test_pre_assigned_uuid_ids_are_kept(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    ss_id, de_id, assoc_id = samples.new_uuid(), samples.new_uuid(), samples.new_uuid()
    request = samples.submit_objects_request([
        samples.submission_set(ss_id, patient_id=pid),
        samples.document_entry(de_id, patient_id=pid),
        samples.has_member(assoc_id, ss_id, de_id, "Original"),
    ])
    assert_success(register(registry_url, request))
    assert [r.id for r in entries(engine, pid)] == [de_id]
    assert [r.id for r in rows(engine, tables.submission_set, patient_id=pid)] == [ss_id]
    (assoc,) = associations(engine, pid)
    assert (assoc.id, assoc.source_id, assoc.target_id) == (assoc_id, ss_id, de_id)


@pytest.mark.parametrize("package", ["SubmissionSet", "Folder", "both"])
def test_package_classification_as_sibling_element_is_accepted(
        package: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    ss: list[etree._Element] = (
        [samples.submission_set(patient_id=pid)] if package == "Folder"
        else samples.submission_set(patient_id=pid, classification_inside=False))
    fd: list[etree._Element] = (
        [samples.folder(patient_id=pid)] if package == "SubmissionSet"
        else samples.folder(patient_id=pid, classification_inside=False))
    request = samples.submit_objects_request([
        *ss, *fd,
        samples.document_entry(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original"),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"),
    ])
    assert_success(register(registry_url, request))
    assert len(rows(engine, tables.submission_set, patient_id=pid)) == 1
    (stored,) = rows(engine, tables.folder, patient_id=pid)
    # Stored packages carry their type classification inside (§10 item 12).
    nodes = [c.get("classificationNode")
             for c in etree.fromstring(stored.xml).iterchildren(R + "Classification")]
    assert samples.FD.classificationNode in nodes


# -- folders ---------------------------------------------------------------------------------------


def test_new_folder_without_documents_gets_last_update_time(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    before = samples.now_dtm()
    folder_id = registered_folder(registry_url, pid)
    after = samples.now_dtm()
    fd = folder_row(engine, folder_id)
    assert fd.status == APPROVED
    assert before <= fd.last_update_time <= after and len(fd.last_update_time) == 14


def test_submitted_last_update_time_is_ignored(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.folder(patient_id=pid, last_update_time="19990101000000"),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"),
    ])
    assert_success(register(registry_url, request))
    (fd,) = rows(engine, tables.folder, patient_id=pid)
    assert fd.last_update_time != "19990101000000"
    assert "lastUpdateTime" not in _slots(fd.xml)  # the column is the truth


def test_existing_folder_receives_document_and_last_update_time_changes(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    folder_id = registered_folder(registry_url, pid)
    _set_last_update_time(engine, folder_id, _PAST)
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.document_entry(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original"),
        samples.has_member("fd-de", folder_id, "Document01"),
        samples.has_member("ss-hm", "SubmissionSet01", "fd-de"),
    ])
    before = samples.now_dtm()
    assert_success(register(registry_url, request))
    assert folder_row(engine, folder_id).last_update_time >= before

    (de,) = entries(engine, pid)
    (fd_de,) = [a for a in associations(engine, pid) if a.source_id == folder_id]
    assert fd_de.target_id == de.id
    (ss_hm,) = [a for a in associations(engine, pid) if a.target_id == fd_de.id]
    assert ss_hm.source_id == de.submission_set_id


def test_folder_not_receiving_a_document_keeps_last_update_time(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    folder_id = registered_folder(registry_url, pid)
    _set_last_update_time(engine, folder_id, _PAST)
    assert_success(register(registry_url, samples.single_document_submission(pid)))
    assert folder_row(engine, folder_id).last_update_time == _PAST


# -- extra metadata (ITI TF-2 §3.42.4.1.3.2) -------------------------------------------------------


def test_extra_slot_with_urn_name_is_stored_on_every_object(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    extra = {"urn:example:localinfo": ["one", "two"]}
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid, extra_slots=extra),
        samples.document_entry(patient_id=pid, extra_slots=extra),
        samples.folder(patient_id=pid, extra_slots=extra),
        samples.association("ss-de", "HasMember", "SubmissionSet01", "Document01",
                            submission_set_status="Original", slots=extra),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"),
    ])
    assert assert_success(register(registry_url, request)) == []
    (de,) = entries(engine, pid)
    (ss,) = rows(engine, tables.submission_set, patient_id=pid)
    (fd,) = rows(engine, tables.folder, patient_id=pid)
    (ss_de,) = [a for a in associations(engine, pid) if a.target_id == de.id]
    for xml in (de.xml, ss.xml, fd.xml, ss_de.xml):
        assert _slots(xml)["urn:example:localinfo"] == ["one", "two"]


@pytest.mark.parametrize("slot_name", ["localinfo", "urn:ihe:foo"])
def test_extra_slot_with_invalid_name_gives_xds_extra_metadata_not_saved_warning(
        slot_name: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.single_document_submission(pid, extra_slots={slot_name: "x"})
    warnings = assert_success(register(registry_url, request))
    assert [w.errorCode for w in warnings] == ["XDSExtraMetadataNotSaved"]
    assert slot_name in (warnings[0].codeContext or "")
    (de,) = entries(engine, pid)
    assert de.status == APPROVED
    assert slot_name not in _slots(de.xml)


# -- SubmissionSet membership by reference ---------------------------------------------------------


def test_ss_de_has_member_reference_to_existing_document(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    de_id, _ = registered_document(registry_url, pid)
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", de_id, "Reference"),
    ])
    assert_success(register(registry_url, request))
    assert [r.id for r in entries(engine, pid)] == [de_id]
    ss_ids = {r.id for r in rows(engine, tables.submission_set, patient_id=pid)}
    references = [a for a in associations(engine, pid) if a.target_id == de_id]
    assert len(references) == 2 and {a.source_id for a in references} == ss_ids
    assert entry(engine, de_id).status == APPROVED


def test_ss_de_has_member_reference_to_other_patients_document_is_accepted(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    owner, pid = new_patient(), new_patient()
    de_id, _ = registered_document(registry_url, owner)
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", de_id, "Reference"),
    ])
    # By reference, the entry's patientId need not match the SubmissionSet's (TF-3 §4.2.2.1.1).
    assert_success(register(registry_url, request))
    (ss,) = rows(engine, tables.submission_set, patient_id=pid)
    assert [a.source_id for a in rows(engine, tables.association, target_id=de_id)
            if a.source_id == ss.id] == [ss.id]


def test_new_folder_receives_registered_document(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    de_id, _ = registered_document(registry_url, pid)
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid), samples.folder(patient_id=pid),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"),
        samples.has_member("fd-de", "Folder01", de_id),
        samples.has_member("ss-hm", "SubmissionSet01", "fd-de"),
    ])
    assert_success(register(registry_url, request))
    (fd,) = rows(engine, tables.folder, patient_id=pid)
    assert [a.target_id for a in associations(engine, pid) if a.source_id == fd.id] == [de_id]


def test_submitted_availability_status_is_ignored(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    request = samples.single_document_submission(pid, status=DEPRECATED)
    assert_success(register(registry_url, request))
    (de,) = entries(engine, pid)
    assert de.status == APPROVED  # TF-3 §4.2.3.2.2: the submitted value is ignored


# -- document relationships (ITI TF-2 §3.42.4.1.3.5) ----------------------------------------------


def test_rplc_deprecates_the_replaced_document(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    old_id, _ = registered_document(registry_url, pid)
    new_uid = samples.new_oid()
    assert_success(register(registry_url, relationship_submission(
        pid, "RPLC", old_id, unique_id=new_uid)))
    assert entry(engine, old_id).status == DEPRECATED
    (new,) = [r for r in entries(engine, pid) if r.unique_id == new_uid]
    assert new.status == APPROVED
    (rplc,) = [a for a in associations(engine, pid)
               if a.association_type == ASSOCIATION_TYPES["RPLC"]]
    assert (rplc.source_id, rplc.target_id, rplc.status) == (new.id, old_id, APPROVED)


def test_xfrm_rplc_deprecates_the_replaced_document(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    old_id, _ = registered_document(registry_url, pid)
    new_uid = samples.new_oid()
    assert_success(register(registry_url, relationship_submission(
        pid, "XFRM_RPLC", old_id, unique_id=new_uid)))
    assert entry(engine, old_id).status == DEPRECATED
    assert [r.status for r in entries(engine, pid) if r.unique_id == new_uid] == [APPROVED]


@pytest.mark.parametrize("association_type", ["XFRM", "APND", "signs"])
def test_non_replacing_relationship_leaves_target_approved(
        association_type: str, registry_url: str, engine: Engine,
        new_patient: NewPatient) -> None:
    pid = new_patient()
    target_id, _ = registered_document(registry_url, pid)
    assert_success(register(registry_url, relationship_submission(
        pid, association_type, target_id)))
    assert {r.status for r in entries(engine, pid)} == {APPROVED}
    assert len(entries(engine, pid)) == 2
    (rel,) = [a for a in associations(engine, pid)
              if a.association_type == ASSOCIATION_TYPES[association_type]]
    assert rel.target_id == target_id


def test_relationship_between_two_documents_of_one_submission(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    signature = samples.document_entry("Signature", patient_id=pid)
    request = relationship_submission(pid, "signs", "Document01", source="Signature", extra=[
        signature, samples.has_member("ss-sig", "SubmissionSet01", "Signature", "Original")])
    assert_success(register(registry_url, request))
    assert {r.status for r in entries(engine, pid)} == {APPROVED}


def test_rplc_deprecates_xfrm_and_apnd_of_the_replaced_document(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    old_id, _ = registered_document(registry_url, pid)
    children: dict[str, str] = {}
    for kind in ("XFRM", "APND", "signs"):
        child_uid = samples.new_oid()
        assert_success(register(registry_url, relationship_submission(
            pid, kind, old_id, unique_id=child_uid)))
        (children[kind],) = [r.id for r in entries(engine, pid) if r.unique_id == child_uid]
    new_uid = samples.new_oid()
    assert_success(register(registry_url, relationship_submission(
        pid, "RPLC", old_id, unique_id=new_uid)))
    status = {r.id: r.status for r in entries(engine, pid)}
    assert status[old_id] == DEPRECATED
    assert status[children["XFRM"]] == DEPRECATED
    assert status[children["APND"]] == DEPRECATED
    assert status[children["signs"]] == APPROVED  # only XFRM/APND follow (TF-3 §4.2.2.2)
    assert [r.status for r in entries(engine, pid) if r.unique_id == new_uid] == [APPROVED]


def test_rplc_of_document_in_folder_adds_replacement_to_folder_and_bumps_last_update_time(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    old_id = samples.new_uuid()
    folder_id = registered_folder(registry_url, pid, with_document=old_id)
    _set_last_update_time(engine, folder_id, _PAST)
    new_uid = samples.new_oid()
    before = samples.now_dtm()
    assert_success(register(registry_url, relationship_submission(
        pid, "RPLC", old_id, unique_id=new_uid)))

    (new,) = [r for r in entries(engine, pid) if r.unique_id == new_uid]
    assert entry(engine, old_id).status == DEPRECATED and new.status == APPROVED
    fd = folder_row(engine, folder_id)
    assert fd.last_update_time >= before and fd.status == APPROVED
    assocs = associations(engine, pid)
    (fd_de,) = [a for a in assocs if a.source_id == folder_id and a.target_id == new.id]
    assert fd_de.association_type == HAS_MEMBER and fd_de.status == APPROVED
    (ss_hm,) = [a for a in assocs if a.target_id == fd_de.id]
    assert ss_hm.source_id == new.submission_set_id and ss_hm.association_type == HAS_MEMBER
    # The old membership stays; the Folder now holds both entries.
    assert {a.target_id for a in assocs if a.source_id == folder_id} == {old_id, new.id}


# -- duplicate DocumentEntry uniqueId (ITI TF-2 §3.42.4.1.3.3.1) ----------------------------------


@pytest.mark.parametrize("hash_case", ["same", "upper"])
def test_same_unique_id_with_identical_hash_and_size_is_a_second_entry(
        hash_case: str, registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    content = b"identical octets\n"
    first_id, uid = registered_document(registry_url, pid, content=content)
    first_hash = entry(engine, first_id).hash
    hash_ = first_hash.upper() if hash_case == "upper" else first_hash
    body = register(registry_url, samples.single_document_submission(
        pid, unique_id=uid, hash=hash_, size=len(content)))
    assert_success(body)
    same = [r for r in entries(engine, pid) if r.unique_id == uid]
    assert len(same) == 2 and {r.status for r in same} == {APPROVED}
    assert len(rows(engine, tables.unique_id_claim, unique_id=uid)) == 1


def test_response_is_simple_soap_with_register_response_action(
        registry_url: str, new_patient: NewPatient) -> None:
    resp, _ = soapclient.post(registry_url, soapclient.ITI42,
                              samples.single_document_submission(new_patient()))
    env = soapclient.parse_envelope(resp.content)
    assert resp.headers["content-type"].startswith("application/soap+xml")
    assert soapclient.header(env, "Action") == "urn:ihe:iti:2007:RegisterDocumentSet-bResponse"


# -- round trips through ITI-18 ------------------------------------------------------------------


def _query(url: str, query: str, params: dict[str, str]) -> list[etree._Element]:
    resp, body = soapclient.post(url, soapclient.ITI18, samples.stored_query(query, params))
    assert resp.status_code == 200 and etree.QName(body).localname == "AdhocQueryResponse"
    xsd.assert_valid(body)
    assert soapclient.status(body) == soapclient.SUCCESS, soapclient.registry_response_errors(body)
    object_list = body.find(R + "RegistryObjectList")
    assert object_list is not None
    return list(object_list)


def test_registered_submission_comes_back_from_get_submission_set_and_contents(
        registry_url: str, engine: Engine, new_patient: NewPatient) -> None:
    pid = new_patient()
    ss = samples.submission_set(patient_id=pid)
    docs = [samples.document_entry(f"Doc{i}", patient_id=pid,
                                   extra_slots={"urn:example:localinfo": f"v{i}"})
            for i in range(2)]
    request = samples.submit_objects_request([
        ss, *docs, samples.folder(patient_id=pid),
        samples.has_member("ss-de0", "SubmissionSet01", "Doc0", "Original"),
        samples.has_member("ss-de1", "SubmissionSet01", "Doc1", "Original"),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"),
        samples.has_member("fd-de", "Folder01", "Doc0"),
        samples.has_member("ss-hm", "SubmissionSet01", "fd-de"),
    ])
    assert_success(register(registry_url, request))

    found = _query(registry_url, "GetSubmissionSetAndContents",
                   {"$XDSSubmissionSetUniqueId": samples.quoted(unique_id_of(ss))})
    by_tag: dict[str, list[etree._Element]] = {}
    for obj in found:
        by_tag.setdefault(etree.QName(obj).localname, []).append(obj)
    extrinsic = by_tag["ExtrinsicObject"]
    assert {unique_id_of(e) for e in extrinsic} == {unique_id_of(d) for d in docs}
    assert {e.get("status") for e in extrinsic} == {APPROVED}
    assert sorted(_slots(etree.tostring(e))["urn:example:localinfo"][0] for e in extrinsic) == [
        "v0", "v1"]
    ids = {obj.get("id") for obj in found}
    assert all(UUID_URN.match(i or "") for i in ids)
    for assoc in by_tag["Association"]:
        assert assoc.get("sourceObject") in ids and assoc.get("targetObject") in ids
    (fd,) = [p for p in by_tag["RegistryPackage"]
             if samples.FD.classificationNode in {c.get("classificationNode")
                                                  for c in p.iterchildren(R + "Classification")}]
    assert len(_slots(etree.tostring(fd))["lastUpdateTime"][0]) == 14


def test_rplc_statuses_come_back_from_get_documents(
        registry_url: str, new_patient: NewPatient) -> None:
    pid = new_patient()
    old_id, _ = registered_document(registry_url, pid)
    new_id = samples.new_uuid()
    request = samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.document_entry(new_id, patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", new_id, "Original"),
        samples.association("rplc", "RPLC", new_id, old_id)])
    assert_success(register(registry_url, request))
    found = _query(registry_url, "GetDocuments",
                   {"$XDSDocumentEntryEntryUUID": samples.quoted_list([old_id, new_id])})
    assert {e.get("id"): e.get("status") for e in found} == {
        old_id: DEPRECATED, new_id: APPROVED}
