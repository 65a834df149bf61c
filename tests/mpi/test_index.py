"""The linking policy of the MPI (xds.mpi.index), in-process on both databases."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from sqlalchemy import Engine

from xds.config import Settings
from xds.mpi.index import PatientIndex
from xds.mpi.model import Demographics, MpiError, MpiErrorKind, PatientIdentifier
from xds.store.db import read_connection
from xds.store.patients import is_known


def _domain() -> str:
    return f"2.25.{uuid.uuid4().int}"


def _jane(**overrides: str) -> Demographics:
    base = {"family": "Doe", "given": "Jane", "birth_date": "19800101", "sex": "F"}
    return Demographics(**(base | overrides))


def _index(engine: Engine, settings: Settings, *, pix_match: str = "off",
           pix_assign_ids: str = "yes") -> PatientIndex:
    return PatientIndex(engine, dataclasses.replace(
        settings, pix_match=pix_match, pix_assign_ids=pix_assign_ids))


def test_matching_off_keeps_equal_demographics_apart(engine: Engine, settings: Settings) -> None:
    index = _index(engine, settings)
    a = index.feed([PatientIdentifier(_domain(), "A")], _jane())
    b = index.feed([PatientIdentifier(_domain(), "B")], _jane())
    assert a.person_id != b.person_id


def test_demographic_matching_links_the_one_equal_person(engine: Engine, settings: Settings) -> None:
    index = _index(engine, settings, pix_match="demographics")
    family = f"Match{uuid.uuid4().hex[:8]}"
    first = index.feed([PatientIdentifier(_domain(), "A")], _jane(family=family))
    # Case, accents and punctuation are normalised; birth date at day precision.
    second = index.feed([PatientIdentifier(_domain(), "B")],
                        _jane(family=family.upper(), given="JÂNE", birth_date="198001011200"))
    assert second.person_id == first.person_id
    assert len(second.identifiers) == 3  # A, B and the one affinity-domain id


def test_demographic_matching_never_links_on_ambiguity(engine: Engine, settings: Settings) -> None:
    plain = _index(engine, settings)
    family = f"Twin{uuid.uuid4().hex[:8]}"
    one = plain.feed([PatientIdentifier(_domain(), "A")], _jane(family=family))
    two = plain.feed([PatientIdentifier(_domain(), "B")], _jane(family=family))
    matching = _index(engine, settings, pix_match="demographics")
    third = matching.feed([PatientIdentifier(_domain(), "C")], _jane(family=family))
    assert third.person_id not in (one.person_id, two.person_id)


def test_partial_demographics_never_match(engine: Engine, settings: Settings) -> None:
    index = _index(engine, settings, pix_match="demographics")
    family = f"Part{uuid.uuid4().hex[:8]}"
    first = index.feed([PatientIdentifier(_domain(), "A")], Demographics(family=family, given="Jo"))
    second = index.feed([PatientIdentifier(_domain(), "B")], Demographics(family=family, given="Jo"))
    assert first.person_id != second.person_id


def test_affinity_id_is_assigned_and_known_to_the_registry(engine: Engine, settings: Settings) -> None:
    person = _index(engine, settings).feed([PatientIdentifier(_domain(), "A")], _jane())
    (affinity,) = person.in_domain(settings.affinity_domain)
    with read_connection(engine) as conn:
        assert is_known(conn, affinity.cx)


def test_assignment_switched_off_leaves_the_group_without_affinity_id(
        engine: Engine, settings: Settings) -> None:
    person = _index(engine, settings, pix_assign_ids="no").feed(
        [PatientIdentifier(_domain(), "A")], _jane())
    assert person.in_domain(settings.affinity_domain) == []


def test_ids_of_people_with_different_affinity_ids_are_not_linked(
        engine: Engine, settings: Settings) -> None:
    index = _index(engine, settings)
    a, b = PatientIdentifier(_domain(), "A"), PatientIdentifier(_domain(), "B")
    index.feed([a], _jane())
    index.feed([b], _jane())
    with pytest.raises(MpiError) as refused:
        index.feed([a, b], _jane())
    assert refused.value.kind == MpiErrorKind.Conflict
    assert index.person(a) != index.person(b)


def test_merge_moves_the_subsumed_links_and_refuses_the_inverse(
        engine: Engine, settings: Settings) -> None:
    index = _index(engine, settings)
    domain, other = _domain(), _domain()
    survivor, subsumed, linked = (PatientIdentifier(domain, "S"), PatientIdentifier(domain, "M"),
                                  PatientIdentifier(other, "L"))
    index.feed([survivor], _jane())
    index.feed([subsumed, linked], _jane())
    merged = index.merge(survivor, subsumed)
    assert linked in merged.identifiers and subsumed not in merged.identifiers
    assert index.query(linked, [domain]) == [survivor]
    for inverse in ((subsumed, survivor), (survivor, survivor)):
        with pytest.raises(MpiError) as refused:
            index.merge(*inverse)
        assert refused.value.kind == MpiErrorKind.InvalidMerge
    assert [e["kind"] for e in index.history(subsumed)] == ["created", "merged"]
