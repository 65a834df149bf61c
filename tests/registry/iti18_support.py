"""Helpers of the ITI-18 end-to-end tests: register through ITI-42, query, read the answer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from tests import samples, soapclient, xsd
from tests.registry.iti42_support import assert_success, register
from tests.samples import NS_QUERY, NS_RIM

__all__ = [
    "ITI51", "R", "Answer", "query", "assert_found", "assert_query_fails", "submit",
    "document", "registered", "replaced", "Params",
]

ITI51 = "urn:ihe:iti:2009:MultiPatientStoredQuery"
R = f"{{{NS_RIM}}}"
Params = Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str | Sequence[str]]]


@dataclass(slots=True)
class Answer:
    """An AdhocQueryResponse split by object kind (ids), with the elements by id."""

    body: etree._Element
    status: str | None
    errors: list[soapclient.RegistryError]
    document_entries: set[str] = field(default_factory=set)
    submission_sets: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)
    associations: set[str] = field(default_factory=set)
    object_refs: set[str] = field(default_factory=set)
    elements: dict[str, etree._Element] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    @property
    def all_ids(self) -> set[str]:
        """Every object id of the answer, of any kind."""
        return (self.document_entries | self.submission_sets | self.folders | self.associations
                | self.object_refs)

    def slot(self, obj_id: str, name: str) -> list[str]:
        """Values of Slot ``name`` of the returned object ``obj_id``."""
        return [v.text or "" for v in self.elements[obj_id].iterfind(
            f"{R}Slot[@name='{name}']/{R}ValueList/{R}Value")]


def query(url: str, query_id: str, params: Params, return_type: str = "LeafClass", *,
          home: str | None = None, action: str = soapclient.ITI18) -> Answer:
    """POST a stored query; the schema-valid AdhocQueryResponse split into an Answer."""
    request = samples.stored_query(query_id, params, return_type, home=home)
    xsd.assert_valid(request)
    resp, body = soapclient.post(url, action, request)
    assert resp.status_code == 200, resp.text
    assert body.tag == f"{{{NS_QUERY}}}AdhocQueryResponse", etree.tostring(body)
    xsd.assert_valid(body)
    object_list = body.find(R + "RegistryObjectList")
    assert object_list is not None, "AdhocQueryResponse without RegistryObjectList"
    answer = Answer(body=body, status=soapclient.status(body),
                    errors=soapclient.registry_response_errors(body))
    for el in object_list:
        obj_id = el.get("id") or ""
        answer.elements[obj_id] = el
        answer.order.append(obj_id)
        tag = etree.QName(el).localname
        if tag == "ExtrinsicObject":
            answer.document_entries.add(obj_id)
        elif tag == "RegistryPackage":
            nodes = {c.get("classificationNode") for c in el.iterchildren(R + "Classification")}
            if samples.SS.classificationNode in nodes:
                answer.submission_sets.add(obj_id)
            else:
                assert samples.FD.classificationNode in nodes, etree.tostring(el)
                answer.folders.add(obj_id)
        elif tag == "Association":
            answer.associations.add(obj_id)
        elif tag == "ObjectRef":
            answer.object_refs.add(obj_id)
        else:
            raise AssertionError(f"unexpected {tag} in RegistryObjectList")
    return answer


def assert_found(answer: Answer, *, document_entries: Iterable[str] = (),
                 submission_sets: Iterable[str] = (), folders: Iterable[str] = (),
                 associations: Iterable[str] = (), object_refs: Iterable[str] = ()) -> None:
    """Success without errors, and exactly these objects."""
    assert answer.status == soapclient.SUCCESS, answer.errors
    assert not answer.errors, answer.errors
    assert {
        "document_entries": answer.document_entries, "submission_sets": answer.submission_sets,
        "folders": answer.folders, "associations": answer.associations,
        "object_refs": answer.object_refs,
    } == {
        "document_entries": set(document_entries), "submission_sets": set(submission_sets),
        "folders": set(folders), "associations": set(associations),
        "object_refs": set(object_refs),
    }
    if answer.object_refs:
        for el in answer.elements.values():
            assert list(el) == [], "an ObjectRef answer carries ids only"


def assert_query_fails(answer: Answer, code: str) -> list[soapclient.RegistryError]:
    """Failure, every error an Error of ``code``, and no object at all."""
    assert answer.status == soapclient.FAILURE, answer.errors
    assert answer.errors and {e.errorCode for e in answer.errors} == {code}, answer.errors
    assert all(e.severity == soapclient.ERROR for e in answer.errors), answer.errors
    assert not answer.elements, "a Failure must return no metadata"
    return answer.errors


def submit(url: str, *objects: etree._Element | Iterable[etree._Element]) -> None:
    """Register ``objects`` through ITI-42 and require Success."""
    assert_success(register(url, samples.submit_objects_request(objects)))


def document(patient_id: str, **options: object) -> tuple[str, etree._Element]:
    """A DocumentEntry with a fresh pre-assigned entryUUID: (entryUUID, element)."""
    entry_uuid = samples.new_uuid()
    return entry_uuid, samples.document_entry(entry_uuid, patient_id=patient_id,
                                              **options)  # type: ignore[arg-type]


def registered(url: str, patient_id: str, count: int = 1, *, ss_id: str | None = None,
               **options: object) -> list[str]:
    """Register ``count`` DocumentEntries (``options`` to each) in one SubmissionSet ``ss_id``
    (a fresh UUID by default); their entryUUIDs."""
    ss_uuid = ss_id or samples.new_uuid()
    objects: list[etree._Element] = [samples.submission_set(ss_uuid, patient_id=patient_id)]
    ids = []
    for _ in range(count):
        entry_uuid, de = document(patient_id, **options)
        ids.append(entry_uuid)
        objects += [de, samples.has_member(samples.new_uuid(), ss_uuid, entry_uuid, "Original")]
    submit(url, objects)
    return ids


def replaced(url: str, patient_id: str) -> tuple[str, str]:
    """Register a DocumentEntry, then replace it (RPLC): (deprecated entryUUID, its replacement)."""
    (old,) = registered(url, patient_id)
    new, de = document(patient_id)
    submit(url, samples.submission_set(patient_id=patient_id), de,
           samples.has_member("hm", "SubmissionSet01", new, "Original"),
           samples.association("rplc", "RPLC", new, old))
    return old, new
