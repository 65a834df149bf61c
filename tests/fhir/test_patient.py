"""Patient read/search from the MPI and PIXm ``$ihe-pix`` (ITI-83) over real HTTP."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.fhir.support import check_outcome, entries, get, r4b
from xds.fhir.ids import patient_resource_id
from xds.mpi.index import PatientIndex
from xds.mpi.model import Demographics, PatientIdentifier

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from xds.config import Settings

RED = "1.3.6.1.4.1.21367.13.20.1100"
BLUE = "1.3.6.1.4.1.21367.13.20.1200"
PIX_NOT_FOUND = "sourceIdentifier Patient Identifier not found"


@pytest.fixture
def person(engine: Engine, settings: Settings) -> Callable[..., list[PatientIdentifier]]:
    """Feeds one person known in RED, BLUE and the affinity domain; returns the identifiers."""
    index = PatientIndex(engine, settings)

    def feed(family: str = "", given: str = "Jane", birth: str = "19800102",
             sex: str = "F") -> list[PatientIdentifier]:
        tag = secrets.token_hex(4).upper()
        ids = [PatientIdentifier(RED, f"R-{tag}"), PatientIdentifier(BLUE, f"B{tag}"),
               PatientIdentifier(settings.affinity_domain, f"A{tag}")]
        demo = Demographics(family=family or f"Doe{tag}", given=given, birth_date=birth, sex=sex)
        index.feed(ids, demo)
        return ids

    return feed


def _id(pid: PatientIdentifier) -> str:
    resource_id = patient_resource_id(pid)
    assert resource_id
    return resource_id


def test_read_gives_the_source_identity_with_every_linked_identifier(
        server: str, person: Callable[..., list[PatientIdentifier]]) -> None:
    red, blue, affinity = person(given="Ann", birth="19751231", sex="F")
    response = get(f"{server}/fhir/Patient/{_id(red)}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    patient = response.json()
    r4b(patient)
    assert patient["id"] == _id(red)
    assert patient["identifier"][0] == {"use": "official", "system": f"urn:oid:{RED}",
                                        "value": red.value}
    assert {(i["system"], i["value"]) for i in patient["identifier"][1:]} == {
        (f"urn:oid:{BLUE}", blue.value), (f"urn:oid:{affinity.domain}", affinity.value)}
    assert patient["name"][0]["given"] == ["Ann"]
    assert patient["birthDate"] == "1975-12-31"
    assert patient["gender"] == "female"
    assert {link["other"]["reference"] for link in patient["link"]} == {
        f"Patient/{_id(blue)}", f"Patient/{_id(affinity)}"}


def test_search_by_identifier_finds_every_identity_of_the_person(
        server: str, person: Callable[..., list[PatientIdentifier]]) -> None:
    red, blue, affinity = person()
    bundle = get(f"{server}/fhir/Patient", {"identifier": f"urn:oid:{BLUE}|{blue.value}"}).json()
    found = entries(bundle)
    assert bundle["total"] == 3
    assert {p["id"] for p in found} == {_id(red), _id(blue), _id(affinity)}


def test_search_by_demographics(server: str, person: Callable[..., list[PatientIdentifier]]) -> None:
    family = f"Zed{secrets.token_hex(3)}"
    person(family=family, given="Otto", birth="19600505", sex="M")
    person(family=family, given="Olga", birth="19700707", sex="F")
    base = f"{server}/fhir/Patient"
    assert get(base, {"family": family}).json()["total"] == 6
    assert get(base, {"family": family.upper()[:5]}).json()["total"] >= 6  # starts-with, any case
    assert get(base, {"family:exact": family.upper()}).json()["total"] == 0
    assert get(base, {"family": family, "given": "ott"}).json()["total"] == 3
    assert get(base, {"family": family, "gender": "female"}).json()["total"] == 3
    assert get(base, {"family": family, "birthdate": "1960"}).json()["total"] == 3
    assert get(base, {"family": family, "birthdate": "ge1965-01-01"}).json()["total"] == 3
    assert get(base, {"family": family, "birthdate": "lt1960-05-05"}).json()["total"] == 0
    assert get(base, {"family": family, "birthdate": "ne1960-05-05"}).json()["total"] == 3
    assert get(base, {"family": family, "_summary": "count"}).json() == {
        "resourceType": "Bundle", "type": "searchset", "total": 6,
        "link": [{"relation": "self",
                  "url": f"{base}?family={family}&_summary=count&_count=50&_offset=0"}]}


def test_paging_walks_every_match_once(server: str,
                                       person: Callable[..., list[PatientIdentifier]]) -> None:
    family = f"Page{secrets.token_hex(3)}"
    person(family=family)
    person(family=family)
    url: str | None = f"{server}/fhir/Patient?family={family}&_count=4"
    seen: list[str] = []
    pages = 0
    while url:
        bundle = get(url).json()
        seen += [p["id"] for p in entries(bundle)]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert pages == 0 or "previous" in links
        url = links.get("next")
        pages += 1
    assert pages == 2 and len(seen) == 6 and len(set(seen)) == 6


def test_pixm_answers_the_linked_identifiers_and_patients(
        server: str, person: Callable[..., list[PatientIdentifier]]) -> None:
    red, blue, affinity = person()
    url = f"{server}/fhir/Patient/$ihe-pix"
    answer = get(url, {"sourceIdentifier": f"urn:oid:{RED}|{red.value}"}).json()
    r4b(answer)
    identifiers = [(p["valueIdentifier"]["system"], p["valueIdentifier"]["value"])
                   for p in answer["parameter"] if p["name"] == "targetIdentifier"]
    assert sorted(identifiers) == sorted([(f"urn:oid:{BLUE}", blue.value),
                                          (f"urn:oid:{affinity.domain}", affinity.value)])
    refs = {p["valueReference"]["reference"] for p in answer["parameter"] if p["name"] == "targetId"}
    assert refs == {f"Patient/{_id(blue)}", f"Patient/{_id(affinity)}"}
    only_blue = get(url, {"sourceIdentifier": f"urn:oid:{RED}|{red.value}",
                          "targetSystem": f"urn:oid:{BLUE}"}).json()
    assert [p["valueIdentifier"]["value"] for p in only_blue["parameter"]
            if p["name"] == "targetIdentifier"] == [blue.value]


def test_pixm_by_patient_reference_and_empty_answer(
        server: str, person: Callable[..., list[PatientIdentifier]], engine: Engine,
        settings: Settings) -> None:
    red, _blue, _affinity = person()
    answer = get(f"{server}/fhir/Patient/$ihe-pix", {
        "sourceIdentifier": f"{server}/fhir|Patient/{_id(red)}"}).json()
    assert len([p for p in answer["parameter"] if p["name"] == "targetIdentifier"]) == 2
    lonely = PatientIdentifier(RED, f"L{secrets.token_hex(4)}")
    PatientIndex(engine, settings).feed([lonely], Demographics(family="Alone"))
    only = get(f"{server}/fhir/Patient/$ihe-pix", {
        "sourceIdentifier": f"urn:oid:{RED}|{lonely.value}", "targetSystem": f"urn:oid:{BLUE}"})
    assert only.status_code == 200
    assert only.json() == {"resourceType": "Parameters"}


def test_pixm_errors_are_404_400_403(server: str,
                                     person: Callable[..., list[PatientIdentifier]]) -> None:
    red, _blue, _affinity = person()
    url = f"{server}/fhir/Patient/$ihe-pix"
    unknown_id = check_outcome(get(url, {"sourceIdentifier": f"urn:oid:{RED}|NOPE{red.value}"}),
                               404, "not-found")
    assert unknown_id["issue"][0]["diagnostics"] == PIX_NOT_FOUND
    unknown_domain = check_outcome(get(url, {"sourceIdentifier": "urn:oid:1.2.999.1|X"}), 400,
                                   "code-invalid")
    assert unknown_domain["issue"][0]["diagnostics"] == \
        "sourceIdentifier Assigning Authority not found"
    unknown_target = check_outcome(get(url, {"sourceIdentifier": f"urn:oid:{RED}|{red.value}",
                                             "targetSystem": "urn:oid:1.2.999.2"}), 403,
                                   "code-invalid")
    assert unknown_target["issue"][0]["diagnostics"] == "targetSystem not found"
    check_outcome(get(url), 400)
    check_outcome(get(url, {"sourceIdentifier": "no-bar"}), 400)
    check_outcome(get(url, [("sourceIdentifier", f"urn:oid:{RED}|{red.value}"),
                            ("sourceIdentifier", f"urn:oid:{RED}|{red.value}")]), 400)
    check_outcome(get(url, {"sourceIdentifier": f"urn:oid:{RED}|{red.value}", "x": "1"}), 400)


@pytest.mark.parametrize("params", [
    {"birthdate": "2026-13-45"}, {"birthdate": "1980-02-30"}, {"birthdate": "yesterday"},
    {"gender": "martian"}, {"bogus": "1"}, {"family:fuzzy": "x"}, {"_count": "-1"},
    {"_count": "ten"}, {"_sort": "family"}, {"_include": "Patient:organization"},
    {"identifier": "http://example.org|x"}, {"_summary": "text"},
])
def test_bad_search_parameters_are_400(server: str, params: dict[str, str]) -> None:
    check_outcome(get(f"{server}/fhir/Patient", params), 400)


def test_lenient_handling_drops_unknown_parameters_with_a_warning(
        server: str, person: Callable[..., list[PatientIdentifier]]) -> None:
    family = f"Len{secrets.token_hex(3)}"
    person(family=family)
    bundle = get(f"{server}/fhir/Patient", {"family": family, "bogus": "1"},
                 Prefer="handling=lenient").json()
    assert bundle["total"] == 3
    warning = entries(bundle, "outcome")[0]
    assert warning["issue"][0]["severity"] == "warning"
    assert "bogus" in warning["issue"][0]["diagnostics"]
    assert all("bogus" not in link["url"] for link in bundle["link"])


def test_injection_shaped_values_match_nothing(server: str) -> None:
    for value in ["' OR 1=1--", "%", "_", "\\", "Robert'); DROP TABLE mpi_identifier;--"]:
        bundle = get(f"{server}/fhir/Patient", {"family": value}).json()
        assert bundle["total"] == 0, value
    assert get(f"{server}/fhir/Patient", {"identifier": "' OR '1'='1"}).json()["total"] == 0


def test_huge_count_is_capped_with_a_warning(server: str) -> None:
    bundle = get(f"{server}/fhir/Patient", {"_count": "100000000"}).json()
    assert len(entries(bundle)) <= 500
    assert "_count=500" in bundle["link"][0]["url"]
    assert entries(bundle, "outcome")[0]["issue"][0]["code"] == "too-costly"


@pytest.mark.parametrize("path", ["Patient/nobody-1.2.3", "Patient/%27%20OR%201", "Patient/x" * 20,
                                  "Observation/1", "Observation", "Patient/a/b/c"])
def test_unknown_resources_are_404(server: str, path: str) -> None:
    check_outcome(get(f"{server}/fhir/{path}"), 404)


@pytest.mark.parametrize("accept", ["application/fhir+xml", "text/html", "application/xml"])
def test_other_formats_are_406(server: str, accept: str) -> None:
    check_outcome(get(f"{server}/fhir/Patient", Accept=accept), 406)
    check_outcome(get(f"{server}/fhir/metadata", {"_format": "xml"}), 406)


def test_capability_statement_lists_what_is_served(server: str) -> None:
    statement = get(f"{server}/fhir/metadata").json()
    r4b(statement)
    assert statement["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"Patient", "ImagingStudy", "Endpoint", "DocumentReference", "List",
            "Binary"} <= set(resources)
    patient = resources["Patient"]
    assert {p["name"] for p in patient["searchParam"]} == {
        "_id", "identifier", "family", "given", "birthdate", "gender"}
    assert patient["operation"][0]["name"] == "ihe-pix"
    assert {"code": "transaction", "documentation": "ITI-65 Provide Document Bundle"} in \
        statement["rest"][0]["interaction"]
