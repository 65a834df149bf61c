"""The tests' own sample factory and SOAP client produce schema-valid XDS.b messages."""

from __future__ import annotations

import hashlib

import pytest
from lxml import etree

from tests import samples, soapclient, xsd
from tests.samples import DE, FD, NS_RIM, SS

R = f"{{{NS_RIM}}}"
NS = samples.NSMAP


def _find(el: etree._Element, path: str) -> etree._Element:
    found = el.find(path, namespaces=NS)
    assert found is not None, path
    return found


def _xpath(el: etree._Element, expr: str, **variables: str) -> list[etree._Element]:
    result = etree.XPath(expr, namespaces=NS)(el, **variables)
    assert isinstance(result, list)
    return [r for r in result if isinstance(r, etree._Element)]


def _objects(request: etree._Element) -> list[etree._Element]:
    return list(_find(request, "rim:RegistryObjectList"))


def _schemes(obj: etree._Element, scheme: str) -> list[etree._Element]:
    return [c for c in obj.findall(f"{R}Classification") if c.get("classificationScheme") == scheme]


def _slot_values(obj: etree._Element, name: str) -> list[str]:
    return [v.text or "" for v in _xpath(obj, "rim:Slot[@name=$n]/rim:ValueList/rim:Value", n=name)]


def _external_id(obj: etree._Element, scheme: str) -> str | None:
    found = _xpath(obj, "rim:ExternalIdentifier[@identificationScheme=$s]", s=scheme)
    return found[0].get("value") if len(found) == 1 else None


def _display(obj: etree._Element) -> str | None:
    return _find(obj, "rim:Name/rim:LocalizedString").get("value")


def _assert_dual_context(request: etree._Element) -> None:
    """Every nested Classification/ExternalIdentifier points at its parent; ids are unique;
    association ends resolve inside the request."""
    ids = [el.get("id") for el in request.iter() if el.get("id") is not None]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for obj in _objects(request):
        for c in obj.findall(f"{R}Classification"):
            assert c.get("classifiedObject") == obj.get("id")
        for e in obj.findall(f"{R}ExternalIdentifier"):
            assert e.get("registryObject") == obj.get("id")
    top = {obj.get("id") for obj in _objects(request)}
    for a in request.iter(f"{R}Association"):
        assert a.get("sourceObject") in top and a.get("targetObject") in top


def _folder_submission(pid: str) -> etree._Element:
    return samples.submit_objects_request([
        samples.submission_set(patient_id=pid),
        samples.document_entry(patient_id=pid),
        samples.folder(patient_id=pid),
        samples.has_member("ss-de", "SubmissionSet01", "Document01", "Original"),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"),
        samples.has_member("fd-de", "Folder01", "Document01"),
        samples.has_member("ss-hm", "SubmissionSet01", "fd-de"),
    ])


def test_single_document_submission_is_schema_valid_and_complete() -> None:
    pid = samples.new_patient_id()
    request = samples.single_document_submission(pid)
    xsd.assert_valid(request)
    _assert_dual_context(request)

    ss, de, assoc = _objects(request)
    assert ss.tag == f"{R}RegistryPackage" and de.tag == f"{R}ExtrinsicObject"
    nodes = [c.get("classificationNode") for c in ss.findall(f"{R}Classification")]
    assert nodes.count(SS.classificationNode) == 1
    assert de.get("objectType") == samples.STABLE and de.get("mimeType") == "text/plain"

    # "42" column of ITI TF-3 Table 4.3.1-3: R and R2 attributes of the DocumentEntry.
    for name in ["creationTime", "hash", "languageCode", "repositoryUniqueId", "size",
                 "sourcePatientId", "serviceStartTime", "serviceStopTime"]:
        assert len(_slot_values(de, name)) == 1, name
    for scheme in [DE.classCode, DE.formatCode, DE.healthcareFacilityTypeCode,
                   DE.practiceSettingCode, DE.typeCode, DE.confidentialityCode, DE.author]:
        assert len(_schemes(de, scheme)) == 1, scheme
    assert _external_id(de, DE.patientId) == pid
    assert _external_id(de, DE.uniqueId)

    for name in ["submissionTime"]:
        assert len(_slot_values(ss, name)) == 1
    for scheme in [SS.contentTypeCode, SS.author]:
        assert len(_schemes(ss, scheme)) == 1
    assert _external_id(ss, SS.patientId) == pid
    assert _external_id(ss, SS.sourceId) == samples.SOURCE_ID
    assert _external_id(ss, SS.uniqueId)

    assert assoc.get("associationType") == samples.ASSOCIATION_TYPES["HasMember"]
    assert assoc.get("sourceObject") == "SubmissionSet01"
    assert assoc.get("targetObject") == "Document01"
    assert _slot_values(assoc, "SubmissionSetStatus") == ["Original"]


def test_coded_attribute_shape() -> None:
    de = samples.document_entry(patient_id=samples.new_patient_id())
    (cls,) = _schemes(de, DE.classCode)
    assert cls.get("nodeRepresentation") == samples.CLASS_CODE.code
    assert _slot_values(cls, "codingScheme") == [samples.CLASS_CODE.scheme]
    assert _display(cls) == samples.CLASS_CODE.display
    (author,) = _schemes(de, DE.author)
    assert author.get("nodeRepresentation") == ""
    assert _slot_values(author, "authorPerson") == [samples.DEFAULT_AUTHOR.person]


def test_element_order_follows_rim_xsd() -> None:
    de = samples.document_entry(patient_id=samples.new_patient_id(), comments="c")
    order = [etree.QName(c).localname for c in de]
    rank = {"Slot": 0, "Name": 1, "Description": 2, "VersionInfo": 3, "Classification": 4,
            "ExternalIdentifier": 5}
    assert [rank[n] for n in order] == sorted(rank[n] for n in order)


def test_hash_and_size_follow_content() -> None:
    content = b"%PDF-1.4 not really\n"
    de = samples.document_entry(patient_id=samples.new_patient_id(), content=content,
                                mime_type="application/pdf")
    assert _slot_values(de, "hash") == [hashlib.sha1(content).hexdigest()]
    assert _slot_values(de, "size") == [str(len(content))]


def test_unique_ids_are_fresh_oids() -> None:
    pid = samples.new_patient_id()
    a, b = (samples.document_entry(patient_id=pid) for _ in range(2))
    ua, ub = _external_id(a, DE.uniqueId), _external_id(b, DE.uniqueId)
    assert ua != ub and ua is not None and ua.startswith("2.25.")
    assert _slot_values(a, "hash") != _slot_values(b, "hash")


def test_patient_id_is_cx_in_affinity_domain() -> None:
    pid = samples.new_patient_id()
    number, rest = pid.split("^^^", 1)
    assert number.isdigit() and rest == f"&{samples.AFFINITY_DOMAIN}&ISO"


def test_submission_set_classification_as_sibling() -> None:
    pid = samples.new_patient_id()
    ss, node = samples.submission_set(patient_id=pid, classification_inside=False)
    request = samples.submit_objects_request([
        ss, node, samples.document_entry(patient_id=pid),
        samples.has_member("a1", "SubmissionSet01", "Document01", "Original"),
    ])
    xsd.assert_valid(request)
    assert node.getparent() is request.find(f"{R}RegistryObjectList")
    assert node.get("classificationNode") == SS.classificationNode
    assert node.get("classifiedObject") == "SubmissionSet01"
    assert all(c.get("classificationNode") is None for c in ss.findall(f"{R}Classification"))


def test_folder_submission_is_schema_valid() -> None:
    pid = samples.new_patient_id()
    request = _folder_submission(pid)
    xsd.assert_valid(request)
    _assert_dual_context(request)
    fd = _find(request, "rim:RegistryObjectList/rim:RegistryPackage[@id='Folder01']")
    assert len(_schemes(fd, FD.codeList)) == 1
    assert [c.get("classificationNode") for c in fd.findall(f"{R}Classification")].count(
        FD.classificationNode) == 1
    assert _external_id(fd, FD.patientId) == pid
    assert _display(fd) == "Sample folder"


def test_uuid_ids_give_uuid_helper_ids() -> None:
    pid = samples.new_patient_id()
    de_id = samples.new_uuid()
    de = samples.document_entry(de_id, patient_id=pid)
    xsd.assert_valid(samples.submit_objects_request([de]))
    for child in de:
        if child.get("id") is not None:
            assert child.get("id", "").startswith("urn:uuid:")


def test_optional_attributes_and_multiples() -> None:
    pid = samples.new_patient_id()
    second = samples.Code("R", "2.16.840.1.113883.5.25", "restricted")
    de = samples.document_entry(
        patient_id=pid,
        confidentiality_codes=[samples.CONFIDENTIALITY_CODE, second],
        event_codes=[samples.EVENT_CODE],
        authors=[samples.Author(), samples.Author(person=None, roles=[])],
        reference_ids=["2013001^^^&1.2.3.4.5.6&ISO^urn:ihe:iti:xds:2013:accession"],
        legal_authenticator="^Welby^Marcus^^^Dr^MD",
        comments="a comment",
        uri="http://example.org/doc",
        extra_slots={"urn:example:extra": ["x", "y"]},
    )
    xsd.assert_valid(samples.submit_objects_request([de]))
    assert len(_schemes(de, DE.confidentialityCode)) == 2
    assert len(_schemes(de, DE.eventCodeList)) == 1
    assert len(_schemes(de, DE.author)) == 2
    assert _slot_values(de, DE.referenceIdList)[0].endswith("accession")
    assert _slot_values(de, "urn:example:extra") == ["x", "y"]


def test_leaving_attributes_out() -> None:
    de = samples.document_entry(patient_id=samples.new_patient_id(), class_code=None,
                                creation_time=None, title=None)
    assert _schemes(de, DE.classCode) == []
    assert _slot_values(de, "creationTime") == []
    assert de.find(f"{R}Name") is None


def test_relationship_association() -> None:
    target = samples.new_uuid()
    a = samples.association("rplc", "RPLC", "Document01", target)
    assert a.get("associationType") == "urn:ihe:iti:2007:AssociationType:RPLC"
    assert a.find(f"{R}Slot") is None
    custom = samples.association("x", "urn:example:type", "a", "b", slots={"urn:example:s": "1"})
    assert custom.get("associationType") == "urn:example:type"
    xsd.assert_valid(samples.submit_objects_request([a, custom]))


def test_submission_bytes_round_trip() -> None:
    pid = samples.new_patient_id()
    data = samples.submission(samples.submission_set(patient_id=pid),
                              samples.document_entry(patient_id=pid))
    assert data.startswith(b"<?xml")
    xsd.assert_valid(data)
    assert b"&amp;" + samples.AFFINITY_DOMAIN.encode() + b"&amp;ISO" in data


def test_find_documents_query_is_schema_valid() -> None:
    pid = samples.new_patient_id()
    q = samples.stored_query("FindDocuments", {
        "$XDSDocumentEntryPatientId": samples.quoted(pid),
        "$XDSDocumentEntryStatus": samples.quoted_list([samples.APPROVED]),
        "$XDSDocumentEntryClassCode": samples.code_list([samples.CLASS_CODE]),
        "$XDSDocumentEntryCreationTimeFrom": "20240101",
    })
    xsd.assert_valid(q)
    query = _find(q, "rim:AdhocQuery")
    assert query.get("id") == samples.STORED_QUERIES["FindDocuments"]
    option = _find(q, "query:ResponseOption")
    assert option.get("returnType") == "LeafClass"
    assert option.get("returnComposedObjects") == "true"
    assert _slot_values(query, "$XDSDocumentEntryPatientId") == [f"'{pid}'"]
    assert _slot_values(query, "$XDSDocumentEntryClassCode") == [
        "('34133-9^^2.16.840.1.113883.6.1')"]


def test_query_with_repeated_slots_and_split_values() -> None:
    q = samples.stored_query(
        "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        [
            ("$XDSDocumentEntryPatientId", "'1^^^&1.2&ISO'"),
            ("$XDSDocumentEntryEventCodeList", ["('a^^s1')", "('b^^s1')"]),
            ("$XDSDocumentEntryEventCodeList", "('c^^s2')"),
        ],
        return_type="ObjectRef",
        home="urn:oid:1.2.3",
    )
    xsd.assert_valid(q)
    query = _find(q, "rim:AdhocQuery")
    assert query.get("home") == "urn:oid:1.2.3"
    event_slots = _xpath(query, "rim:Slot[@name='$XDSDocumentEntryEventCodeList']")
    assert [len(s.findall(f"{R}ValueList/{R}Value")) for s in event_slots] == [2, 1]


def test_query_value_quoting() -> None:
    assert samples.quoted("Children's Hospital") == "'Children''s Hospital'"
    assert samples.quoted_list(["a", "b"]) == "('a','b')"
    assert samples.code_list([samples.TYPE_CODE, "x^^y"]) == (
        "('18842-5^^2.16.840.1.113883.6.1','x^^y')")


def test_soap_envelope_is_schema_valid() -> None:
    request = samples.single_document_submission(samples.new_patient_id())
    data = soapclient.envelope(soapclient.ITI42, request, to="http://127.0.0.1/xds/registry",
                               message_id="urn:uuid:0b0c3c42-3c1e-4a6b-9a5e-6e0f1f0d0a11")
    env = soapclient.parse_envelope(data)
    xsd.assert_valid(env)
    assert soapclient.header(env, "Action") == soapclient.ITI42
    assert soapclient.header(env, "MessageID") == "urn:uuid:0b0c3c42-3c1e-4a6b-9a5e-6e0f1f0d0a11"
    assert soapclient.header(env, "To") == "http://127.0.0.1/xds/registry"
    action = _find(env, f"{{{soapclient.NS_SOAP}}}Header/{{{soapclient.NS_WSA}}}Action")
    assert action.get(f"{{{soapclient.NS_SOAP}}}mustUnderstand") == "1"
    reply_to = _find(env, f".//{{{soapclient.NS_WSA}}}ReplyTo/{{{soapclient.NS_WSA}}}Address")
    assert reply_to.text == soapclient.ANONYMOUS
    assert soapclient.body_of(env).tag == f"{{{samples.NS_LCM}}}SubmitObjectsRequest"
    # The caller's element stays where it was: envelope() copies it.
    assert request.getparent() is None and len(request) == 1


def test_registry_response_errors_are_read() -> None:
    # ITI TF-3 §4.2.4 example (shared/spec/xds-b.md §5.1).
    response = etree.fromstring(f"""
      <rs:RegistryResponse xmlns:rs="{samples.NS_RS}" status="{soapclient.FAILURE}">
        <rs:RegistryErrorList highestSeverity="{soapclient.ERROR}">
          <rs:RegistryError errorCode="XDSPatientIdDoesNotMatch" codeContext="mismatch"
              location="" severity="{soapclient.ERROR}"/>
          <rs:RegistryError errorCode="XDSExtraMetadataNotSaved" codeContext="not saved"
              severity="{soapclient.WARNING}"/>
        </rs:RegistryErrorList>
      </rs:RegistryResponse>""".encode())
    xsd.assert_valid(response)
    assert soapclient.status(response) == soapclient.FAILURE
    assert soapclient.registry_response_errors(response) == [
        ("XDSPatientIdDoesNotMatch", "mismatch", "", soapclient.ERROR),
        ("XDSExtraMetadataNotSaved", "not saved", None, soapclient.WARNING),
    ]
    assert soapclient.error_codes(response) == ["XDSPatientIdDoesNotMatch",
                                                "XDSExtraMetadataNotSaved"]


def test_assert_valid_reports_schema_errors() -> None:
    request = samples.single_document_submission(samples.new_patient_id())
    _find(request, ".//rim:Value").text = "x" * 257  # rim:Value is LongName, at most 256 chars
    with pytest.raises(AssertionError, match="SubmitObjectsRequest"):
        xsd.assert_valid(request)
    assert not xsd.is_valid(request)
    with pytest.raises(AssertionError, match="no schema"):
        xsd.assert_valid(etree.fromstring(b"<x xmlns='urn:example'/>"))


def test_vocabulary_agrees_with_product_constants() -> None:
    # Two independent copies of the TF identifiers: a typo on either side fails here.
    vocabulary = pytest.importorskip("xds.ebrim.vocabulary")
    for mine, theirs in [(DE, vocabulary.DE), (SS, vocabulary.SS), (FD, vocabulary.FD)]:
        for attr, value in vars(mine).items():
            if not attr.startswith("_"):
                assert getattr(theirs, attr) == value, f"{mine.__name__}.{attr}"
    assert samples.STABLE == vocabulary.DocumentEntryType.Stable
    assert samples.ON_DEMAND == vocabulary.DocumentEntryType.OnDemand
    for query_name, query_id in samples.STORED_QUERIES.items():
        assert vocabulary.StoredQuery[query_name] == query_id
    for short, urn in samples.ASSOCIATION_TYPES.items():
        assert vocabulary.AssociationType[short] == urn
