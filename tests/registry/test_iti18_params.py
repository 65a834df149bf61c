"""ITI-18 request parsing, value decoding and parameter checks, no server (ITI TF-2 §3.18.4.1.2)."""

from __future__ import annotations

import pytest
from lxml import etree

from tests import samples
from xds.ebrim.query import QuerySlot, decode_value, decode_values, parse_adhoc_query_request
from xds.ebrim.vocabulary import ReturnType, Status, StoredQuery
from xds.model.errors import ErrorCode, XdsError
from xds.registry.queryparams import (
    MULTI_PATIENT_QUERIES, QUERIES, Kind, check_params, parse_code, query_spec,
)

PID = "st3498702^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
APPROVED = Status.Approved.value
DEPRECATED = Status.Deprecated.value


def codes_of(exc: pytest.ExceptionInfo[XdsError]) -> list[ErrorCode]:
    return [e.code for e in exc.value.errors]


Groups = dict[str, tuple[tuple[str, ...], ...]]


def check(query: StoredQuery, *slots: tuple[str, list[str]]) -> Groups:
    params = check_params(QUERIES[query.value],
                          [QuerySlot(name=n, values=tuple(v)) for n, v in slots])
    return dict(params.groups_by_name)


def fails(query: StoredQuery, *slots: tuple[str, list[str]]) -> list[XdsError]:
    with pytest.raises(XdsError) as exc:
        check(query, *slots)
    return [exc.value]


def error_codes(query: StoredQuery, *slots: tuple[str, list[str]]) -> list[ErrorCode]:
    return [e.code for e in fails(query, *slots)[0].errors]


FIND = ("$XDSDocumentEntryPatientId", [PID]), ("$XDSDocumentEntryStatus", [APPROVED])


# -- value decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "values"), [
    ("'urn:x'", ["urn:x"]),
    ("  'padded'  ", ["padded"]),
    ("'Children''s Hospital'", ["Children's Hospital"]),
    ("''", [""]),
    ("200412252300", ["200412252300"]),                 # numbers unquoted
    ("'200412252300'", ["200412252300"]),               # CP-ITI-1260: times may be quoted
    ("urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",  # lenient: unquoted single value
     ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]),
    ("('a')", ["a"]),
    ("('a','b','c')", ["a", "b", "c"]),
    ("( 'a' , 'b' )", ["a", "b"]),
    ("('Smith^John, Jr.','b')", ["Smith^John, Jr.", "b"]),  # comma inside quotes
    ("('O''Brien','x,y')", ["O'Brien", "x,y"]),
    ("(a, b)", ["a", "b"]),                              # lenient: unquoted list items
    ("(200401,200402)", ["200401", "200402"]),
    ("()", []),
    ("", []),
    ("   ", []),
    (f"'{PID}'", [PID]),
])
def test_decode_value(text: str, values: list[str]) -> None:
    assert decode_value(text) == values


@pytest.mark.parametrize("text", [
    "'unterminated",
    "('a','b'",            # no closing parenthesis
    "('a';'b')",           # ';' is not a separator (IPF #94)
    "('a' 'b')",
    "('a',)",              # empty item
    "(,'a')",
    "'a'b",                # text after the closing quote
    "('a'x)",
    "(a'b)",               # stray quote in an unquoted item
])
def test_decode_value_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        decode_value(text)


def test_several_values_of_one_slot_form_one_list() -> None:
    assert decode_values(["('a','b')", "('c')", "'d'"]) == ["a", "b", "c", "d"]


# -- request parsing ------------------------------------------------------------------------------


def test_parse_request_keeps_repeated_slots_apart() -> None:
    request = samples.stored_query("FindDocuments", [
        ("$XDSDocumentEntryPatientId", samples.quoted(PID)),
        ("$XDSDocumentEntryEventCodeList", "('a^^s','b^^s')"),
        ("$XDSDocumentEntryEventCodeList", ["('c^^s')", "('d^^s')"]),  # one list in two Values
    ], home="urn:oid:1.2.3")
    parsed = parse_adhoc_query_request(request)
    assert parsed.query_id == StoredQuery.FindDocuments.value
    assert parsed.return_type is ReturnType.LeafClass
    assert parsed.home == "urn:oid:1.2.3"
    assert [s.name for s in parsed.slots] == [
        "$XDSDocumentEntryPatientId", "$XDSDocumentEntryEventCodeList",
        "$XDSDocumentEntryEventCodeList"]
    assert parsed.slots[0].values == (PID,)
    assert parsed.slots[1].values == ("a^^s", "b^^s")
    assert parsed.slots[2].values == ("c^^s", "d^^s")


def test_parse_request_xml_escaped_patient_id() -> None:
    xml = (f'<query:AdhocQueryRequest xmlns:query="{samples.NS_QUERY}" '
           f'xmlns:rim="{samples.NS_RIM}">'
           '<query:ResponseOption returnType="ObjectRef"/>'
           f'<rim:AdhocQuery id="{StoredQuery.FindDocuments.value}">'
           '<rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList>'
           "<rim:Value>'st3498702^^^&amp;1.3.6.1.4.1.21367.2005.3.7&amp;ISO'</rim:Value>"
           "</rim:ValueList></rim:Slot></rim:AdhocQuery></query:AdhocQueryRequest>")
    parsed = parse_adhoc_query_request(etree.fromstring(xml))
    assert parsed.return_type is ReturnType.ObjectRef
    assert parsed.slots[0].values == (PID,)


@pytest.mark.parametrize(("return_type", "expected"), [
    ("LeafClass", ReturnType.LeafClass), ("ObjectRef", ReturnType.ObjectRef),
    ("RegistryObject", ReturnType.LeafClass),
])
def test_return_types(return_type: str, expected: ReturnType) -> None:
    request = samples.stored_query("GetDocuments", {}, return_type=return_type)
    assert parse_adhoc_query_request(request).return_type is expected


def test_missing_return_type_is_leaf_class() -> None:
    request = samples.stored_query("GetDocuments", {})
    option = request.find(f"{{{samples.NS_QUERY}}}ResponseOption")
    assert option is not None
    del option.attrib["returnType"]
    assert parse_adhoc_query_request(request).return_type is ReturnType.LeafClass
    request.remove(option)
    assert parse_adhoc_query_request(request).return_type is ReturnType.LeafClass


def test_unknown_return_type_is_registry_error() -> None:
    request = samples.stored_query("GetDocuments", {}, return_type="LeafClassWithRepositoryItem")
    with pytest.raises(XdsError) as exc:
        parse_adhoc_query_request(request)
    assert codes_of(exc) == [ErrorCode.XDSRegistryError]


def test_wrong_root_is_refused() -> None:
    root = samples.submit_objects_request([])
    with pytest.raises(XdsError) as exc:
        parse_adhoc_query_request(root)
    assert codes_of(exc) == [ErrorCode.XDSRegistryError]
    assert "AdhocQueryRequest" in exc.value.errors[0].context


def test_ebrim_21_query_is_refused() -> None:
    root = etree.fromstring(
        '<q:AdhocQueryRequest xmlns:q="urn:oasis:names:tc:ebxml-regrep:query:xsd:2.1">'
        "<q:SQLQuery>SELECT * FROM ExtrinsicObject</q:SQLQuery></q:AdhocQueryRequest>")
    with pytest.raises(XdsError) as exc:
        parse_adhoc_query_request(root)
    assert codes_of(exc) == [ErrorCode.XDSRegistryError]
    assert "2.1" in exc.value.errors[0].context


def test_malformed_value_names_the_slot() -> None:
    request = samples.stored_query("FindDocuments", {"$XDSDocumentEntryPatientId": "'open"})
    with pytest.raises(XdsError) as exc:
        parse_adhoc_query_request(request)
    assert codes_of(exc) == [ErrorCode.XDSRegistryMetadataError]
    assert "$XDSDocumentEntryPatientId" in exc.value.errors[0].context


def test_missing_query_id_is_unknown_query() -> None:
    request = samples.stored_query("GetDocuments", {})
    query = request.find(f"{{{samples.NS_RIM}}}AdhocQuery")
    assert query is not None
    del query.attrib["id"]
    with pytest.raises(XdsError) as exc:
        parse_adhoc_query_request(request)
    assert codes_of(exc) == [ErrorCode.XDSUnknownStoredQuery]


# -- parameter tables -----------------------------------------------------------------------------


def test_every_stored_query_has_a_table() -> None:
    assert set(QUERIES) == {q.value for q in StoredQuery}


def test_the_tables_keep_tf_names() -> None:
    get_all = QUERIES[StoredQuery.GetAll.value].by_name
    assert get_all["$patientId"].required            # not $XDSDocumentEntryPatientId (point 6)
    assert "$XDSDocumentEntryPatientId" not in get_all
    find = QUERIES[StoredQuery.FindDocuments.value].by_name
    assert find["$XDSDocumentEntryEventCodeList"].and_or
    assert find["$XDSDocumentEntryConfidentialityCode"].and_or
    assert not find["$XDSDocumentEntryClassCode"].and_or
    assert find["$XDSDocumentEntryAuthorPerson"].kind is Kind.LIKE
    assert QUERIES[StoredQuery.FindFolders.value].by_name["$XDSFolderCodeList"].and_or


def test_unknown_query_id() -> None:
    with pytest.raises(XdsError) as exc:
        query_spec("urn:uuid:00000000-0000-0000-0000-000000000000")
    assert codes_of(exc) == [ErrorCode.XDSUnknownStoredQuery]


def test_iti51_accepts_only_the_multi_patient_queries() -> None:
    for query in StoredQuery:
        if query in MULTI_PATIENT_QUERIES:
            assert query_spec(query.value, multi_patient=True).query is query
        else:
            with pytest.raises(XdsError) as exc:
                query_spec(query.value, multi_patient=True)
            assert codes_of(exc) == [ErrorCode.XDSUnknownStoredQuery]
        assert query_spec(query.value).query is query  # ITI-18 takes every one


# -- parameter checks -----------------------------------------------------------------------------


def test_find_documents_minimal() -> None:
    assert check(StoredQuery.FindDocuments, *FIND) == {
        "$XDSDocumentEntryPatientId": ((PID,),), "$XDSDocumentEntryStatus": ((APPROVED,),)}


def test_missing_required_parameter_names_it() -> None:
    (exc,) = fails(StoredQuery.FindDocuments, ("$XDSDocumentEntryStatus", [APPROVED]))
    assert [e.code for e in exc.errors] == [ErrorCode.XDSStoredQueryMissingParam]
    assert "$XDSDocumentEntryPatientId" in exc.errors[0].context


def test_empty_list_counts_as_missing() -> None:
    assert error_codes(StoredQuery.FindDocuments, FIND[0], ("$XDSDocumentEntryStatus", [])) == [
        ErrorCode.XDSStoredQueryMissingParam]


def test_unknown_status_values_are_dropped() -> None:
    got = check(StoredQuery.FindDocuments, FIND[0],
                ("$XDSDocumentEntryStatus", ["urn:x:Bogus", DEPRECATED]))
    assert got["$XDSDocumentEntryStatus"] == ((DEPRECATED,),)


def test_only_unknown_status_values_is_missing_param() -> None:
    # The TF's own sample uses ResponseStatusType:Approved; it is not a StatusType (point 2).
    (exc,) = fails(StoredQuery.FindDocuments, FIND[0], (
        "$XDSDocumentEntryStatus", ["urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Approved"]))
    assert [e.code for e in exc.errors] == [ErrorCode.XDSStoredQueryMissingParam]
    assert "$XDSDocumentEntryStatus" in exc.errors[0].context


def test_several_values_for_a_single_valued_parameter() -> None:
    assert error_codes(StoredQuery.FindDocuments, ("$XDSDocumentEntryPatientId", [PID, PID]),
                       FIND[1]) == [ErrorCode.XDSStoredQueryParamNumber]
    assert error_codes(StoredQuery.FindDocuments, *FIND, (
        "$XDSDocumentEntryCreationTimeFrom", ["2004", "2005"])) == [
        ErrorCode.XDSStoredQueryParamNumber]


def test_repeated_slot_of_a_plain_parameter() -> None:
    assert error_codes(StoredQuery.FindDocuments, *FIND, ("$XDSDocumentEntryClassCode", ["a^^s"]),
                       ("$XDSDocumentEntryClassCode", ["b^^s"])) == [
        ErrorCode.XDSStoredQueryParamNumber]
    assert error_codes(StoredQuery.FindDocuments, *FIND, FIND[1]) == [
        ErrorCode.XDSStoredQueryParamNumber]


def test_repeated_slot_of_an_and_or_parameter_makes_groups() -> None:
    got = check(StoredQuery.FindDocuments, *FIND,
                ("$XDSDocumentEntryEventCodeList", ["a^^s", "b^^s"]),
                ("$XDSDocumentEntryEventCodeList", ["c^^s"]))
    assert got["$XDSDocumentEntryEventCodeList"] == (("a^^s", "b^^s"), ("c^^s",))


def test_either_or_pair() -> None:
    uuid, uid = "urn:uuid:5a0c4a0e-0000-4000-8000-000000000001", "1.2.3"
    assert check(StoredQuery.GetDocuments, ("$XDSDocumentEntryUniqueId", [uid, "1.2.4"])) == {
        "$XDSDocumentEntryUniqueId": ((uid, "1.2.4"),)}
    assert error_codes(StoredQuery.GetDocuments, ("$XDSDocumentEntryEntryUUID", [uuid]),
                       ("$XDSDocumentEntryUniqueId", [uid])) == [
        ErrorCode.XDSStoredQueryParamNumber]
    (exc,) = fails(StoredQuery.GetDocuments)
    assert [e.code for e in exc.errors] == [ErrorCode.XDSStoredQueryMissingParam]
    assert "$XDSDocumentEntryEntryUUID" in exc.errors[0].context
    # GetSubmissionSetAndContents takes one id only
    assert error_codes(StoredQuery.GetSubmissionSetAndContents,
                       ("$XDSSubmissionSetEntryUUID", [uuid, uuid.replace("1", "2")])) == [
        ErrorCode.XDSStoredQueryParamNumber]


@pytest.mark.parametrize("code", ["Emergency Department", "a^b^c", "^^scheme", "code^^", "a^^^b"])
def test_malformed_code_is_metadata_error(code: str) -> None:
    (exc,) = fails(StoredQuery.FindDocuments, *FIND, ("$XDSDocumentEntryClassCode", [code]))
    assert [e.code for e in exc.errors] == [ErrorCode.XDSRegistryMetadataError]
    assert "$XDSDocumentEntryClassCode" in exc.errors[0].context


def test_parse_code() -> None:
    assert parse_code("34133-9^^2.16.840.1.113883.6.1") == "34133-9^^2.16.840.1.113883.6.1"
    assert parse_code("34133-9^^^2.16.840.1.113883.6.1") is None  # ^^^ is the CX form (point 1)


@pytest.mark.parametrize("time", ["2004-12-25", "20041325", "yesterday", "2004122523000"])
def test_malformed_time_is_metadata_error(time: str) -> None:
    assert error_codes(StoredQuery.FindDocuments, *FIND, (
        "$XDSDocumentEntryCreationTimeFrom", [time])) == [ErrorCode.XDSRegistryMetadataError]


def test_times_are_normalised_to_utc_lower_bounds() -> None:
    got = check(StoredQuery.FindDocuments, *FIND,
                ("$XDSDocumentEntryCreationTimeFrom", ["200412252300"]),
                ("$XDSDocumentEntryCreationTimeTo", ["20050101+0100"]))
    assert got["$XDSDocumentEntryCreationTimeFrom"] == (("20041225230000",),)
    assert got["$XDSDocumentEntryCreationTimeTo"] == (("20041231230000",),)


@pytest.mark.parametrize("pid", ["st3498702", "st3498702^^^1.2.3", "st3498702^^^&1.2.3&L"])
def test_malformed_patient_id_is_metadata_error(pid: str) -> None:
    assert error_codes(StoredQuery.FindDocuments, ("$XDSDocumentEntryPatientId", [pid]),
                       FIND[1]) == [ErrorCode.XDSRegistryMetadataError]


def test_unknown_parameters_are_ignored() -> None:
    got = check(StoredQuery.FindDocuments, *FIND,
                ("$XDSDocumentEntryClassCodeScheme", ["legacy"]), ("$MetadataLevel", ["1"]),
                ("$MetadataLevel", ["2"]))
    assert set(got) == {"$XDSDocumentEntryPatientId", "$XDSDocumentEntryStatus"}


def test_all_errors_are_reported_together() -> None:
    codes = error_codes(StoredQuery.FindDocuments, ("$XDSDocumentEntryClassCode", ["bad"]),
                        ("$XDSDocumentEntryTypeCode", ["a^^s"]),
                        ("$XDSDocumentEntryTypeCode", ["b^^s"]))
    assert sorted(codes) == sorted([
        ErrorCode.XDSRegistryMetadataError, ErrorCode.XDSStoredQueryParamNumber,
        ErrorCode.XDSStoredQueryMissingParam, ErrorCode.XDSStoredQueryMissingParam])


def test_multi_patient_needs_one_narrowing_parameter() -> None:
    mpq = StoredQuery.FindDocumentsForMultiplePatients
    (exc,) = fails(mpq, ("$XDSDocumentEntryStatus", [APPROVED]))
    assert [e.code for e in exc.errors] == [ErrorCode.XDSStoredQueryMissingParam]
    assert check(mpq, ("$XDSDocumentEntryStatus", [APPROVED]),
                 ("$XDSDocumentEntryClassCode", ["a^^s"]))
    assert check(mpq, ("$XDSDocumentEntryStatus", [APPROVED]),
                 ("$XDSDocumentEntryPatientId", [PID, PID.replace("st", "xx")]))
    folders = StoredQuery.FindFoldersForMultiplePatients
    assert error_codes(folders, ("$XDSFolderStatus", [APPROVED])) == [
        ErrorCode.XDSStoredQueryMissingParam]
    assert check(folders, ("$XDSFolderStatus", [APPROVED]), ("$XDSFolderCodeList", ["a^^s"]))
