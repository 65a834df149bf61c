"""The R4B check every outgoing resource passes, with its memory of what passed before."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from xds.fhir.resources import validated


def _document(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "DocumentReference", "id": secrets.token_hex(8), "status": "current",
            "content": [{"attachment": {"contentType": "text/plain", "size": 3}}], **extra}


def test_a_valid_resource_passes_and_passes_again() -> None:
    document = _document(type={"coding": [{"system": "urn:oid:2.16.840.1.113883.6.1",
                                           "code": "18842-5"}]})
    assert validated(document) is document
    assert validated(document) is document


@pytest.mark.parametrize("bad", [
    {"resourceType": "DocumentReference", "status": "current"},  # content is 1..*
    {"resourceType": "DocumentReference", "content": [{"attachment": {}}]},  # status is 1..1
    _document(content=[{"attachment": {"size": "three"}}]),
    _document(date="2026-13-45T00:00:00Z"),
    _document(bogus=1),
    # An R5 shape: ImagingStudy.modality is a Coding list in R4, not CodeableConcepts.
    {"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": "Patient/a"},
     "modality": [{"coding": [{"code": "CT"}]}]},
])
def test_what_r4_refuses_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="built an invalid"):
        validated(bad)


def test_remembered_elements_do_not_hide_an_error_elsewhere() -> None:
    good_type = {"coding": [{"code": "A", "system": "urn:oid:1.2.3"}]}
    validated(_document(type=good_type))
    with pytest.raises(ValueError):
        validated(_document(type=good_type, content=[{"attachment": {"size": -1}}]))
    # the alternatives of a choice type are checked together
    validated({"resourceType": "Patient", "id": "p1", "deceasedBoolean": False})
    with pytest.raises(ValueError):
        validated({"resourceType": "Patient", "id": "p1", "deceasedBoolean": False,
                   "deceasedDateTime": "2020-01-01"})
    # a contained resource and the entries of a Bundle are checked too
    with pytest.raises(ValueError):
        validated(_document(contained=[{"resourceType": "Practitioner", "id": "a", "x": 1}]))
    with pytest.raises(ValueError):
        validated({"resourceType": "Bundle", "type": "searchset",
                   "entry": [{"resource": {"resourceType": "Patient", "gender": 5}}]})
