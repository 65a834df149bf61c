"""ebRIM 3.0 binding round trips, one per type: sample XML -> parse_* -> build_* -> parse_* gives
equal model objects, extra slots survive, and the built XML is schema-valid (ITI TF-3 §4.2)."""

from __future__ import annotations

from lxml import etree

from tests import samples, xsd
from tests.samples import FD, NS_RIM, SS
from xds.ebrim.association import build_association, parse_association
from xds.ebrim.documententry import build_document_entry, parse_document_entry
from xds.ebrim.folder import build_folder, parse_folder
from xds.ebrim.submission import parse_submit_objects_request
from xds.ebrim.submissionset import build_submission_set, parse_submission_set
from xds.model.metadata import Slot
from xds.model.values import Code, LocalizedString

R = f"{{{NS_RIM}}}"
EXTRA = {"urn:example:localinfo": ["one", "two"], "urn:example:other": "x"}
PID = "123456789^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"


def _reparsed(el: etree._Element) -> etree._Element:
    """``el`` as a receiver sees it: serialised and parsed again."""
    return etree.fromstring(etree.tostring(el))


def _nodes(rp: etree._Element) -> set[str]:
    return {c.get("classificationNode") or "" for c in rp.iterchildren(R + "Classification")}


def _assert_schema_valid(*objects: etree._Element) -> None:
    # The built elements go into a SubmitObjectsRequest, which the lcm/rim XSD checks in order.
    xsd.assert_valid(samples.submit_objects_request([_reparsed(o) for o in objects]))


def test_document_entry_round_trip_keeps_every_attribute_and_extra_slots() -> None:
    uuid = samples.new_uuid()
    el = samples.document_entry(
        uuid, patient_id=PID, comments="A comment", home="urn:oid:1.2.3.4",
        legal_authenticator="^Welby^Marcus^^^Dr^MD", uri="http://example.org/doc",
        reference_ids=["2013001^^^&1.2.3.4.5.6&ISO^urn:ihe:iti:xds:2013:accession"],
        event_codes=[samples.EVENT_CODE],
        confidentiality_codes=[samples.CONFIDENTIALITY_CODE,
                               samples.Code("R", "2.16.840.1.113883.5.25", "restricted")],
        authors=[samples.DEFAULT_AUTHOR,
                 samples.Author(person=None, roles=(), specialties=(), telecommunications=())],
        extra_slots=EXTRA,
    )
    el.insert(0, etree.fromstring(
        f'<rim:Slot xmlns:rim="{NS_RIM}" name="urn:example:typed" slotType="text">'
        '<rim:ValueList><rim:Value>t</rim:Value></rim:ValueList></rim:Slot>'))
    first = parse_document_entry(_reparsed(el))
    built = build_document_entry(first)
    second = parse_document_entry(_reparsed(built))
    assert second == first

    assert first.entry_uuid == uuid and first.patient_id == PID
    assert first.class_code == Code(code=samples.CLASS_CODE.code, scheme=samples.CLASS_CODE.scheme,
                                    display=LocalizedString(value=samples.CLASS_CODE.display))
    assert len(first.confidentiality_codes) == 2 and len(first.authors) == 2
    assert first.comments == LocalizedString(value="A comment")
    assert sorted(first.extra_slots, key=lambda s: s.name) == [
        Slot(name="urn:example:localinfo", values=["one", "two"]),
        Slot(name="urn:example:other", values=["x"]),
        Slot(name="urn:example:typed", values=["t"], slot_type="text"),
    ]
    assert second.extra_slots == first.extra_slots
    _assert_schema_valid(built)


def test_document_entry_round_trip_with_registry_fields() -> None:
    first = parse_document_entry(_reparsed(samples.document_entry(
        samples.new_uuid(), patient_id=PID, status=samples.APPROVED)))
    first.lid, first.version = first.entry_uuid, "1"
    built = build_document_entry(first)
    assert parse_document_entry(_reparsed(built)) == first
    version = built.find(R + "VersionInfo")
    assert version is not None and version.get("versionName") == "1"
    assert built.get("lid") == first.entry_uuid and built.get("status") == samples.APPROVED


def test_submission_set_round_trip_keeps_every_attribute_and_extra_slots() -> None:
    el = samples.submission_set(
        samples.new_uuid(), patient_id=PID, comments="c", home="urn:oid:1.2.3.4",
        intended_recipients=["Some Hospital^^^^^^^^^1.2.3.9.1789.45|^Wel^Marcus^^^Dr^MD"],
        extra_slots=EXTRA)
    first = parse_submission_set(_reparsed(el), _nodes(el))
    built = build_submission_set(first)
    second = parse_submission_set(_reparsed(built), _nodes(built))
    assert second == first
    assert SS.classificationNode in _nodes(built)
    assert first.source_id == samples.SOURCE_ID and first.intended_recipients
    assert {s.name for s in second.extra_slots} == set(EXTRA)
    _assert_schema_valid(built)


def test_folder_round_trip_keeps_every_attribute_and_extra_slots() -> None:
    el = samples.folder(
        samples.new_uuid(), patient_id=PID, comments="c", last_update_time="20240101120000",
        codes=[samples.FOLDER_CODE, samples.CLASS_CODE], extra_slots=EXTRA)
    first = parse_folder(_reparsed(el), _nodes(el))
    built = build_folder(first)
    second = parse_folder(_reparsed(built), _nodes(built))
    assert second == first
    assert FD.classificationNode in _nodes(built)
    assert first.last_update_time == "20240101120000" and len(first.codes) == 2
    assert first.title == LocalizedString(value="Sample folder")
    assert {s.name for s in second.extra_slots} == set(EXTRA)
    _assert_schema_valid(built)


def test_association_round_trip_keeps_status_slot_documentation_and_extra_slots() -> None:
    member = samples.association(
        samples.new_uuid(), "HasMember", samples.new_uuid(), samples.new_uuid(),
        submission_set_status="Original", slots={"urn:example:localinfo": "x"})
    rplc = samples.association(samples.new_uuid(), "RPLC", samples.new_uuid(), samples.new_uuid())
    rplc.append(samples.classification(
        "urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3", rplc.get("id") or "",
        samples.Code("Correction", "1.2.3", "Corrected values")))
    built_all = []
    for el in (member, rplc):
        first = parse_association(_reparsed(el))
        built = build_association(first)
        assert parse_association(_reparsed(built)) == first
        built_all.append(built)
    first_member = parse_association(_reparsed(member))
    assert first_member.submission_set_status == ["Original"]
    assert first_member.extra_slots == [Slot(name="urn:example:localinfo", values=["x"])]
    assert [c.code for c in parse_association(_reparsed(rplc)).documentation] == ["Correction"]
    assert parse_association(_reparsed(rplc)).submission_set_status is None
    _assert_schema_valid(*built_all)


def test_package_classification_as_sibling_parses_like_nested() -> None:
    ss_id, fd_id = samples.new_uuid(), samples.new_uuid()
    common = [samples.document_entry("Document01", patient_id=PID),
              samples.has_member("a1", ss_id, "Document01", "Original"),
              samples.has_member("a2", ss_id, fd_id)]
    ss_uid, fd_uid, when = samples.new_oid(), samples.new_oid(), samples.now_dtm()
    nested = parse_submit_objects_request(_reparsed(samples.submit_objects_request([
        samples.submission_set(ss_id, patient_id=PID, unique_id=ss_uid, submission_time=when),
        samples.folder(fd_id, patient_id=PID, unique_id=fd_uid), *common])))
    sibling_request = samples.submit_objects_request([
        samples.submission_set(ss_id, patient_id=PID, unique_id=ss_uid, submission_time=when,
                               classification_inside=False),
        samples.folder(fd_id, patient_id=PID, unique_id=fd_uid, classification_inside=False),
        *common])
    xsd.assert_valid(sibling_request)
    sibling = parse_submit_objects_request(_reparsed(sibling_request))
    assert len(sibling.submission_sets) == 1 and len(sibling.folders) == 1
    assert sibling.submission_sets == nested.submission_sets
    assert sibling.folders == nested.folders
    assert sibling.document_entries == nested.document_entries
    assert sibling.associations == nested.associations
