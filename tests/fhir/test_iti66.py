"""ITI-66 Find Document Lists over real HTTP: the SubmissionSets and the Folder of real ITI-41
submissions as MHD Lists with their member DocumentReferences, filters, read, negatives."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests import samples
from tests.fhir.support import check_outcome, entries, get, r4b
from tests.fhir.test_iti67 import Corpus, build_corpus
from xds.config import Settings

TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
DESIGNATION = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType"
SOURCE_ID = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId"


@pytest.fixture(scope="module")
def corpus(server: str, engine: Engine, settings: Settings) -> Corpus:
    """The documents of ``build_corpus``, submitted once per backend."""
    return build_corpus(server, engine, settings)


def _lists(server: str, corpus: Corpus, **params: str) -> list[dict[str, Any]]:
    params.setdefault("status", "current")
    response = get(f"{server}/fhir/List", {"patient": corpus.patient, **params})
    assert response.status_code == 200, response.text
    bundle = response.json()
    found = entries(bundle)
    assert bundle["total"] == len(found)
    return found


def _members(resource: dict[str, Any]) -> set[str]:
    return {e["item"]["reference"] for e in resource.get("entry", [])}


def _refs(corpus: Corpus, names: str) -> set[str]:
    return {f"DocumentReference/{corpus.bare(n)}" for n in names}


def test_submission_sets_are_lists_of_their_documents(server: str, corpus: Corpus) -> None:
    found = _lists(server, corpus, code=f"{TYPES}|submissionset")
    by_id = {r["identifier"][0]["value"]: r for r in found}
    assert set(by_id) == set(corpus.submission_sets)
    first, second = (by_id[i] for i in corpus.submission_sets)
    assert _members(first) == _refs(corpus, "abc")
    assert _members(second) == _refs(corpus, "d")
    assert first["code"]["coding"] == [{"system": TYPES, "code": "submissionset"}]
    assert first["status"] == "current" and first["mode"] == "working"
    assert first["title"] == "First"
    assert first["subject"]["reference"] == corpus.patient
    extensions = {e["url"]: e for e in first["extension"]}
    assert extensions[SOURCE_ID]["valueIdentifier"]["value"] == f"urn:oid:{samples.SOURCE_ID}"
    assert extensions[DESIGNATION]["valueCodeableConcept"]["coding"][0]["code"] == \
        samples.CONTENT_TYPE_CODE.code


def test_the_folder_is_a_list_of_its_documents(server: str, corpus: Corpus) -> None:
    (found,) = _lists(server, corpus, code="folder")
    assert found["identifier"][0]["value"] == corpus.folder
    assert _members(found) == _refs(corpus, "ab")
    assert found["code"]["coding"][0]["code"] == "folder"
    (designation,) = found["extension"]
    assert designation["url"] == DESIGNATION


def test_without_code_both_kinds_are_found(server: str, corpus: Corpus) -> None:
    found = _lists(server, corpus)
    assert {r["identifier"][0]["value"] for r in found} == {*corpus.submission_sets,
                                                             corpus.folder}


def test_filters_narrow(server: str, corpus: Corpus) -> None:
    assert _lists(server, corpus, code="submissionset", date="lt2000") == []
    assert len(_lists(server, corpus, code="submissionset", date="ge2020")) == 2
    assert _lists(server, corpus, code="submissionset", sourceId="urn:oid:1.2.999") == []
    assert len(_lists(server, corpus, sourceId=f"urn:oid:{samples.SOURCE_ID}")) == 2
    code = samples.FOLDER_CODE
    assert len(_lists(server, corpus, code="folder",
                      designationType=f"urn:oid:{code.scheme}|{code.code}")) == 1
    assert _lists(server, corpus, code="folder", designationType="urn:oid:1.2|nope") == []
    (one,) = _lists(server, corpus, identifier=f"urn:ietf:rfc:3986|{corpus.submission_sets[1]}")
    assert _members(one) == _refs(corpus, "d")
    assert _lists(server, corpus, status="retired") == []


def test_summary_count(server: str, corpus: Corpus) -> None:
    response = get(f"{server}/fhir/List", {"patient": corpus.patient, "status": "current",
                                           "_summary": "count"})
    assert response.json()["total"] == 3


def test_read_gives_the_list(server: str, corpus: Corpus) -> None:
    for uuid in (corpus.folder, corpus.submission_sets[0]):
        response = get(f"{server}/fhir/List/{uuid.removeprefix('urn:uuid:')}")
        assert response.status_code == 200, response.text
        r4b(response.json())
        assert response.json()["identifier"][0]["value"] == uuid


@pytest.mark.parametrize("params", [
    {"code": "binder"}, {"code": "http://example.org|folder"}, {"date": "2026-13-45"},
    {"designationType": "nosystem"}, {"status": "bogus"}, {"entry": "x"}])
def test_malformed_parameters_are_400(server: str, corpus: Corpus,
                                      params: dict[str, str]) -> None:
    check_outcome(get(f"{server}/fhir/List",
                      {"patient": corpus.patient, "status": "current", **params}), 400)


def test_missing_patient_or_status_is_400(server: str, corpus: Corpus) -> None:
    check_outcome(get(f"{server}/fhir/List", {"status": "current"}), 400)
    check_outcome(get(f"{server}/fhir/List", {"patient": corpus.patient}), 400)


def test_injection_shaped_values_find_nothing(server: str, corpus: Corpus) -> None:
    assert _lists(server, corpus, identifier="' OR 1=1--") == []
    assert _lists(server, corpus, sourceId="' OR 1=1--") == []


@pytest.mark.parametrize("resource", ["0b5f3c0e-0000-4000-8000-000000000000", "x'--"])
def test_unknown_list_is_404(server: str, resource: str) -> None:
    check_outcome(get(f"{server}/fhir/List/{resource}"), 404)
