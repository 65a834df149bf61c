"""ITI-67 Find Document References over real HTTP: the same answers as ITI-18 FindDocuments,
every filter, paging, the DocumentReference mapping (hash, size, relatesTo), and the 400/404/406
negatives. The documents go in through real ITI-41 submissions (one with a Folder, one RPLC).

``build_corpus`` is shared with the ITI-66 and ITI-68 tests.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine, select

from tests import samples
from tests.fhir.support import check_outcome, entries, get, r4b
from tests.registry.iti18_support import query
from tests.repository.support import Doc, assert_success, provide
from xds.config import Settings
from xds.fhir import iti67
from xds.fhir.context import FhirContext
from xds.fhir.errors import FhirError
from xds.fhir.ids import patient_resource_id
from xds.fhir.search import parse_search
from xds.mpi.model import PatientIdentifier
from xds.registry.context import Registry
from xds.store.patients import add_patient
from xds.store.tables import document_entry, folder, submission_set

LOINC = "2.16.840.1.113883.6.1"
CONFIDENTIALITY = "2.16.840.1.113883.5.25"
LAB = samples.Code("11502-2", LOINC, "Laboratory report")
RESTRICTED = samples.Code("R", CONFIDENTIALITY, "restricted")
SUMMARY_FORMAT = samples.Code("urn:ihe:pcc:xds-ms:2007", "1.3.6.1.4.1.19376.1.2.3",
                              "Medical Summaries")
ACCESSION = "ACC-1^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:accession"
HOUSE = samples.Author(person="^House^Gregory^^^Dr", telecommunications=())


@dataclass
class Corpus:
    """What the submissions hold: entryUUIDs by name (a, b, c replaced by d), their Docs, the
    SubmissionSet and Folder entryUUIDs."""

    pid: str
    ids: dict[str, str] = field(default_factory=dict)
    docs: dict[str, Doc] = field(default_factory=dict)
    submission_sets: list[str] = field(default_factory=list)
    folder: str = ""

    @property
    def patient(self) -> str:
        """The Patient reference of ``pid``."""
        value, _, rest = self.pid.partition("^^^&")
        resource = patient_resource_id(PatientIdentifier(rest.split("&")[0], value))
        return f"Patient/{resource}"

    @property
    def identifier(self) -> str:
        """The patient.identifier value of ``pid``."""
        value, _, rest = self.pid.partition("^^^&")
        return f"urn:oid:{rest.split('&')[0]}|{value}"

    def bare(self, name: str) -> str:
        """The FHIR id of entry ``name``."""
        return self.ids[name].removeprefix("urn:uuid:")


def _entry(doc: Doc, pid: str, **options: Any) -> etree._Element:
    return samples.document_entry(doc.entry_id, patient_id=pid, unique_id=doc.unique_id,
                                  content=doc.content, mime_type=doc.mime_type, **options)


def _uuid(engine: Engine, table: Any, unique_id: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(table.c.id).where(
            table.c.unique_id == unique_id)).scalar_one())


def build_corpus(server: str, engine: Engine, settings: Settings) -> Corpus:
    """Two ITI-41 submissions for a fresh patient: SS1 with a (event CT, in the Folder), b (lab
    report, restricted, PDF, by House, 2023) and c; SS2 with d replacing c (RPLC)."""
    pid = samples.new_patient_id(settings.affinity_domain)
    add_patient(engine, pid)
    corpus = Corpus(pid)
    docs = {"a": Doc(b"plain text a\n"), "b": Doc(b"%PDF-1.7\n" + bytes(range(256)) * 40,
                                                  "application/pdf"),
            "c": Doc(b"<doc>c</doc>\n", "text/xml")}
    ss_uid, fd_uid = samples.new_oid(), samples.new_oid()
    sor = samples.submit_objects_request([
        samples.submission_set(patient_id=pid, unique_id=ss_uid, title="First"),
        _entry(docs["a"], pid, event_codes=(samples.EVENT_CODE,), comments="first doc",
               reference_ids=(ACCESSION, "ORDER-7^^^&1.2.3.5&ISO^urn:ihe:iti:xds:2013:order")),
        _entry(docs["b"], pid, type_code=LAB, class_code=LAB, authors=(HOUSE,),
               confidentiality_codes=(RESTRICTED,), format_code=SUMMARY_FORMAT,
               creation_time="20230615120000", service_start_time="20230601080000",
               service_stop_time="20230601090000", legal_authenticator="^Cuddy^Lisa^^^Dr"),
        _entry(docs["c"], pid, creation_time="20250101000000"),
        samples.folder(patient_id=pid, unique_id=fd_uid),
        *(samples.has_member(f"ss-{n}", "SubmissionSet01", docs[n].entry_id, "Original")
          for n in docs),
        samples.has_member("ss-fd", "SubmissionSet01", "Folder01"),
        samples.has_member("fd-a", "Folder01", docs["a"].entry_id),
        samples.has_member("fd-b", "Folder01", docs["b"].entry_id),
        samples.has_member("ss-fa", "SubmissionSet01", "fd-a"),
        samples.has_member("ss-fb", "SubmissionSet01", "fd-b"),
    ])
    assert_success(provide(server, pid, list(docs.values()), sor=sor))
    corpus.docs.update(docs)
    corpus.ids = {n: _uuid(engine, document_entry, d.unique_id) for n, d in docs.items()}
    corpus.submission_sets.append(_uuid(engine, submission_set, ss_uid))
    corpus.folder = _uuid(engine, folder, fd_uid)

    d = Doc(b"<doc>d replaces c</doc>\n", "text/xml")
    ss2_uid = samples.new_oid()
    sor = samples.submit_objects_request([
        samples.submission_set(patient_id=pid, unique_id=ss2_uid, title="Second"),
        _entry(d, pid), samples.has_member("ss-d", "SubmissionSet01", d.entry_id, "Original"),
        samples.association("rplc", "RPLC", d.entry_id, corpus.ids["c"]),
    ])
    assert_success(provide(server, pid, [d], sor=sor))
    corpus.docs["d"] = d
    corpus.ids["d"] = _uuid(engine, document_entry, d.unique_id)
    corpus.submission_sets.append(_uuid(engine, submission_set, ss2_uid))
    return corpus


@pytest.fixture(scope="module")
def corpus(server: str, engine: Engine, settings: Settings) -> Corpus:
    """The documents of ``build_corpus``, submitted once per backend."""
    return build_corpus(server, engine, settings)


def _search(server: str, **params: str) -> dict[str, Any]:
    response = get(f"{server}/fhir/DocumentReference", params=params)
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    return bundle


def _found(server: str, corpus: Corpus, **params: str) -> set[str]:
    """entryUUIDs ITI-67 finds for the corpus patient with ``params``."""
    params.setdefault("status", "current")
    bundle = _search(server, patient=corpus.patient, **params)
    found = entries(bundle)
    assert bundle["total"] == len(found)
    return {r["identifier"][0]["value"] for r in found}


def _iti18(registry_url: str, corpus: Corpus, statuses: list[str],
           **slots: str) -> set[str]:
    answer = query(registry_url, "FindDocuments", {
        "$XDSDocumentEntryPatientId": samples.quoted(corpus.pid),
        "$XDSDocumentEntryStatus": samples.quoted_list(statuses), **slots})
    assert answer.status == "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    return answer.document_entries


# -- same answers as ITI-18 ------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "xds"), [
    ("current", [samples.APPROVED]), ("superseded", [samples.DEPRECATED]),
    ("current,superseded", [samples.APPROVED, samples.DEPRECATED])])
def test_patient_and_status_find_what_find_documents_finds(
        server: str, registry_url: str, corpus: Corpus, status: str, xds: list[str]) -> None:
    expected = _iti18(registry_url, corpus, xds)
    assert _found(server, corpus, status=status) == expected
    named = {"current": {"a", "b", "d"}, "superseded": {"c"},
             "current,superseded": {"a", "b", "c", "d"}}[status]
    assert expected == {corpus.ids[n] for n in named}


def test_patient_identifier_finds_the_same(server: str, corpus: Corpus) -> None:
    bundle = _search(server, **{"patient.identifier": corpus.identifier, "status": "current"})
    assert {r["identifier"][0]["value"] for r in entries(bundle)} == {
        corpus.ids[n] for n in "abd"}


@pytest.mark.parametrize(("params", "slots", "names"), [
    ({"creation": "ge2024"}, {"$XDSDocumentEntryCreationTimeFrom": "20240101000000"}, "ad"),
    ({"creation": "lt2024-01-01"}, {"$XDSDocumentEntryCreationTimeTo": "20240101000000"}, "b"),
    ({"type": f"urn:oid:{LOINC}|11502-2"}, {"$XDSDocumentEntryTypeCode": f"('{LAB.param}')"},
     "b"),
    ({"category": f"urn:oid:{LOINC}|11502-2"},
     {"$XDSDocumentEntryClassCode": f"('{LAB.param}')"}, "b"),
    ({"event": f"urn:oid:{samples.EVENT_CODE.scheme}|CT"},
     {"$XDSDocumentEntryEventCodeList": f"('{samples.EVENT_CODE.param}')"}, "a"),
    ({"format": f"urn:oid:{SUMMARY_FORMAT.scheme}|{SUMMARY_FORMAT.code}"},
     {"$XDSDocumentEntryFormatCode": f"('{SUMMARY_FORMAT.param}')"}, "b"),
    ({"author.family": "House"}, {"$XDSDocumentEntryAuthorPerson": "('%^House%')"}, "b"),
    ({"author.family": "Welby", "author.given": "Marcus"},
     {"$XDSDocumentEntryAuthorPerson": "('%^Welby%^Marcus%')"}, "ad"),
    ({"security-label": f"urn:oid:{CONFIDENTIALITY}|R"},
     {"$XDSDocumentEntryConfidentialityCode": f"('{RESTRICTED.param}')"}, "b"),
    ({"period": "ge2024"}, {"$XDSDocumentEntryServiceStartTimeFrom": "20240101000000"}, "ad"),
    ({"period": "lt2024"}, {"$XDSDocumentEntryServiceStopTimeTo": "20240101000000"}, "b"),
    ({"setting": f"urn:oid:{samples.PRACTICE_SETTING_CODE.scheme}|394802001"},
     {"$XDSDocumentEntryPracticeSettingCode": f"('{samples.PRACTICE_SETTING_CODE.param}')"},
     "abd"),
])
def test_each_filter_narrows_like_iti18(server: str, registry_url: str, corpus: Corpus,
                                        params: dict[str, str], slots: dict[str, str],
                                        names: str) -> None:
    expected = {corpus.ids[n] for n in names}
    assert _iti18(registry_url, corpus, [samples.APPROVED], **slots) == expected
    assert _found(server, corpus, **params) == expected


def test_identifier_narrows_to_the_entry(server: str, corpus: Corpus) -> None:
    assert _found(server, corpus, identifier=f"urn:ietf:rfc:3986|{corpus.ids['a']}") == {
        corpus.ids["a"]}
    uid = corpus.docs["b"].unique_id
    assert _found(server, corpus, identifier=f"urn:ietf:rfc:3986|urn:oid:{uid}") == {
        corpus.ids["b"]}


@pytest.mark.parametrize(("related", "names"), [
    ("urn:oid:1.2.3.4|ACC-1", "a"), (ACCESSION, "a"), ("urn:oid:1.2.3.4|ACC-2", ""),
    ("urn:oid:1.2.3.9|ACC-1,urn:oid:1.2.3.5|ORDER-7", "a")])
def test_related_matches_the_reference_id_list(server: str, corpus: Corpus, related: str,
                                               names: str) -> None:
    assert _found(server, corpus, related=related) == {corpus.ids[n] for n in names}


def test_related_repetitions_are_anded(server: str, corpus: Corpus) -> None:
    response = get(f"{server}/fhir/DocumentReference", [
        ("patient", corpus.patient), ("status", "current"),
        ("related", "urn:oid:1.2.3.4|ACC-1"), ("related", "urn:oid:1.2.3.5|NOPE")])
    assert response.json()["total"] == 0


def test_context_related_carries_the_reference_ids(server: str, corpus: Corpus) -> None:
    ref = get(f"{server}/fhir/DocumentReference/{corpus.bare('a')}").json()
    assert ref["context"]["related"][0] == {"identifier": {
        "system": "urn:oid:1.2.3.4", "value": "ACC-1",
        "type": {"text": "urn:ihe:iti:xds:2013:accession"}}}


def test_too_many_results_is_an_outcome_with_the_ihe_code(
        engine: Engine, settings: Settings, corpus: Corpus) -> None:
    capped = dataclasses.replace(settings, max_query_results=1)
    ctx = FhirContext(engine=engine, settings=capped, registry=Registry(engine, capped))
    search = parse_search(iti67.DOCUMENT_REFERENCE.spec,
                          [("patient", corpus.patient), ("status", "current")])
    with pytest.raises(FhirError) as raised:
        iti67.search_documents(ctx, search)
    assert raised.value.status == 400
    assert [(i.code, i.ihe_code) for i in raised.value.issues] == [
        ("too-costly", "XDSTooManyResults")]


def test_paging_with_count_walks_every_match_once(server: str, corpus: Corpus) -> None:
    seen: list[str] = []
    bundle = _search(server, patient=corpus.patient, status="current,superseded", _count="1")
    while True:
        assert bundle["total"] == 4
        seen += [r["id"] for r in entries(bundle)]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        response = get(nxt[0])
        assert response.status_code == 200, response.text
        bundle = response.json()
    assert sorted(seen) == seen and set(seen) == {corpus.bare(n) for n in "abcd"}


def test_summary_count_gives_only_the_total(server: str, corpus: Corpus) -> None:
    bundle = _search(server, patient=corpus.patient, status="current", _summary="count")
    r4b(bundle)
    assert bundle["total"] == 3 and "entry" not in bundle


# -- the DocumentReference -------------------------------------------------------------------------


def test_read_maps_the_document_entry(server: str, settings: Settings,
                                      corpus: Corpus) -> None:
    response = get(f"{server}/fhir/DocumentReference/{corpus.bare('b')}")
    assert response.status_code == 200, response.text
    ref = response.json()
    r4b(ref)
    doc = corpus.docs["b"]
    assert ref["masterIdentifier"] == {"system": "urn:ietf:rfc:3986",
                                       "value": f"urn:oid:{doc.unique_id}"}
    assert ref["identifier"] == [{"use": "official", "system": "urn:ietf:rfc:3986",
                                  "value": corpus.ids["b"]}]
    assert ref["status"] == "current"
    assert ref["subject"]["reference"] == corpus.patient
    assert ref["type"]["coding"] == [{"system": f"urn:oid:{LOINC}", "code": "11502-2",
                                      "display": "Laboratory report"}]
    assert ref["securityLabel"][0]["coding"][0]["code"] == "R"
    attachment = ref["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf"
    assert attachment["size"] == len(doc.content)
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(doc.content).digest()).decode()
    assert attachment["creation"] == "2023-06-15T12:00:00Z"
    assert attachment["url"] == f"{settings.base_url}/fhir/Binary/{corpus.bare('b')}"
    assert ref["content"][0]["format"]["code"] == SUMMARY_FORMAT.code
    assert ref["context"]["period"] == {"start": "2023-06-01T08:00:00Z",
                                        "end": "2023-06-01T09:00:00Z"}
    contained = {r["id"]: r for r in ref["contained"]}
    (author,) = ref["author"]
    practitioner = contained[author["reference"].removeprefix("#")]
    assert practitioner["name"] == [{"family": "House", "given": ["Gregory"], "prefix": ["Dr"]}]
    authenticator = contained[ref["authenticator"]["reference"].removeprefix("#")]
    assert authenticator["name"] == [{"family": "Cuddy", "given": ["Lisa"], "prefix": ["Dr"]}]
    source = contained[ref["context"]["sourcePatientInfo"]["reference"].removeprefix("#")]
    value, _, rest = corpus.pid.partition("^^^&")
    assert source["identifier"] == [{"system": f"urn:oid:{rest.split('&')[0]}", "value": value}]
    assert source["name"] == [{"family": "Doe", "given": ["John"]}]
    assert (source["birthDate"], source["gender"]) == ("1956-05-27", "male")


def test_replacement_relates_to_the_superseded_entry(server: str, corpus: Corpus) -> None:
    new = get(f"{server}/fhir/DocumentReference/{corpus.bare('d')}").json()
    assert new["relatesTo"] == [{"code": "replaces",
                                 "target": {"reference": f"DocumentReference/{corpus.bare('c')}"}}]
    old = get(f"{server}/fhir/DocumentReference/{corpus.bare('c')}").json()
    assert old["status"] == "superseded" and "relatesTo" not in old


def test_event_and_description_are_mapped(server: str, corpus: Corpus) -> None:
    ref = get(f"{server}/fhir/DocumentReference/{corpus.bare('a')}").json()
    assert ref["description"] == "first doc"
    assert ref["context"]["event"][0]["coding"][0]["code"] == "CT"


# -- negatives -------------------------------------------------------------------------------------


def test_missing_patient_is_400(server: str) -> None:
    check_outcome(get(f"{server}/fhir/DocumentReference", {"status": "current"}), 400)


def test_entered_in_error_finds_nothing(server: str, corpus: Corpus) -> None:
    assert _found(server, corpus, status="entered-in-error") == set()


def test_missing_status_is_400(server: str, corpus: Corpus) -> None:
    check_outcome(get(f"{server}/fhir/DocumentReference", {"patient": corpus.patient}), 400)


@pytest.mark.parametrize("params", [
    {"colour": "red"}, {"creation": "2026-13-45"}, {"creation": "ne2024"},
    {"type": "18842-5"}, {"type": "|"}, {"status": "bogus"}, {"period": "yesterday"},
    {"type": "urn:oid:1.2|a^b"}, {"_count": "-1"}, {"related": "http://x|ACC-1"},
    {"creation": "ap2024"}, {"category": "urn:oid:1.2|a", "category:text": "x"},
])
def test_malformed_parameters_are_400(server: str, corpus: Corpus,
                                      params: dict[str, str]) -> None:
    query_params = {"patient": corpus.patient, "status": "current", **params}
    check_outcome(get(f"{server}/fhir/DocumentReference", query_params), 400)


@pytest.mark.parametrize("params", [
    {"author.family": "' OR 1=1--"}, {"identifier": "' OR 1=1--"},
    {"type": "urn:oid:1.2|' OR 1=1--"}, {"status": "current", "creation": "ge2099"},
])
def test_injection_shaped_values_find_nothing(server: str, corpus: Corpus,
                                              params: dict[str, str]) -> None:
    response = get(f"{server}/fhir/DocumentReference",
                   {"patient": corpus.patient, "status": "current", **params})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["total"] == 0


def test_unknown_patient_identifier_is_an_empty_result(server: str, settings: Settings) -> None:
    bundle = _search(server, status="current", **{
        "patient.identifier": f"urn:oid:{settings.affinity_domain}|NOBODY-1"})
    assert bundle["total"] == 0


def test_unknown_patient_reference_is_404(server: str, settings: Settings) -> None:
    response = get(f"{server}/fhir/DocumentReference",
                   {"patient": f"Patient/NOBODY-{settings.affinity_domain}", "status": "current"})
    check_outcome(response, 404)


@pytest.mark.parametrize("resource", ["0b5f3c0e-0000-4000-8000-000000000000", "x'--", "..."])
def test_unknown_document_reference_is_404(server: str, resource: str) -> None:
    check_outcome(get(f"{server}/fhir/DocumentReference/{resource}"), 404)


def test_xml_format_is_406(server: str, corpus: Corpus) -> None:
    check_outcome(get(f"{server}/fhir/DocumentReference",
                      {"patient": corpus.patient, "status": "current", "_format": "xml"}), 406)


def test_capability_statement_lists_the_mhd_responder(server: str) -> None:
    statement = get(f"{server}/fhir/metadata").json()
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    params = {p["name"] for p in by_type["DocumentReference"]["searchParam"]}
    assert {"patient", "patient.identifier", "status", "creation", "related"} <= params
    assert {"code", "sourceId", "designationType"} <= {
        p["name"] for p in by_type["List"]["searchParam"]}
    assert {"read"} <= {i["code"] for i in by_type["Binary"]["interaction"]}
