"""The tests' one sample factory: ebRIM 3.0 XML for ITI-42 SubmitObjectsRequest and ITI-18
AdhocQueryRequest, written by hand with lxml (ITI TF-3 §4.2, digest: shared/spec/xds-b.md §3, §7).

It is the tests' own client, so it deliberately imports nothing from ``xds``: the vocabulary
below is a second, independent copy of the TF's identifiers, and a typo on either side shows up
as a failing test instead of agreeing with itself. Every factory returns an lxml element that a
test may mutate before sending; ``to_bytes`` serialises. Defaults give a valid, complete
submission ("42" column of Vol 3 Table 4.3.1-3: every R and R2 attribute present).

    pid = new_patient_id()
    request = single_document_submission(pid, title="Report")
    query = stored_query("FindDocuments", {"$XDSDocumentEntryPatientId": quoted(pid),
                                           "$XDSDocumentEntryStatus": quoted_list([APPROVED])})
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NamedTuple, overload

from lxml import etree

__all__ = [
    # namespaces and vocabulary
    "NS_RIM", "NS_LCM", "NS_QUERY", "NS_RS", "NSMAP", "AFFINITY_DOMAIN", "REPOSITORY_UNIQUE_ID",
    "SOURCE_ID", "STABLE", "ON_DEMAND", "APPROVED", "DEPRECATED", "DE", "SS", "FD",
    "ASSOCIATION_TYPES", "STORED_QUERIES",
    # values
    "Code", "Author", "CLASS_CODE", "TYPE_CODE", "CONFIDENTIALITY_CODE", "FORMAT_CODE",
    "HEALTHCARE_FACILITY_TYPE_CODE", "PRACTICE_SETTING_CODE", "CONTENT_TYPE_CODE",
    "FOLDER_CODE", "EVENT_CODE", "DEFAULT_AUTHOR", "new_oid", "new_uuid", "new_patient_id",
    "now_dtm",
    # building blocks
    "slot", "name", "description", "classification", "external_identifier",
    "author_classification", "node_classification",
    # objects and requests
    "document_entry", "submission_set", "folder", "association", "has_member",
    "submit_objects_request", "submission", "single_document_submission", "stored_query",
    "to_bytes",
    # query values
    "quoted", "quoted_list", "code_list",
]

NS_RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
NS_LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
NS_QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
NS_RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
NSMAP = {"rim": NS_RIM, "lcm": NS_LCM, "query": NS_QUERY, "rs": NS_RS}
_R = f"{{{NS_RIM}}}"

#: Default affinity domain of ``xds.config.Settings`` (patient ids' assigning authority).
AFFINITY_DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
REPOSITORY_UNIQUE_ID = "1.3.6.1.4.1.21367.2010.1.2.1125"
SOURCE_ID = "1.3.6.1.4.1.21367.2010.1.2.1"

STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
ON_DEMAND = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"


class DE:
    """DocumentEntry classification / identification schemes (§3.3)."""

    author = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
    classCode = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
    confidentialityCode = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
    eventCodeList = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
    formatCode = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
    healthcareFacilityTypeCode = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
    practiceSettingCode = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
    typeCode = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
    patientId = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
    uniqueId = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
    referenceIdList = "urn:ihe:iti:xds:2013:referenceIdList"


class SS:
    """SubmissionSet node and schemes (§3.4)."""

    classificationNode = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
    author = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
    contentTypeCode = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
    patientId = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
    sourceId = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
    uniqueId = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"


class FD:
    """Folder node and schemes (§3.5)."""

    classificationNode = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
    codeList = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
    patientId = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
    uniqueId = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"


#: Short names accepted by ``association(type=...)`` (§3.6); a full URN is accepted as well.
ASSOCIATION_TYPES = {
    "HasMember": "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
    "RPLC": "urn:ihe:iti:2007:AssociationType:RPLC",
    "XFRM": "urn:ihe:iti:2007:AssociationType:XFRM",
    "APND": "urn:ihe:iti:2007:AssociationType:APND",
    "XFRM_RPLC": "urn:ihe:iti:2007:AssociationType:XFRM_RPLC",
    "signs": "urn:ihe:iti:2007:AssociationType:signs",
    "IsSnapshotOf": "urn:ihe:iti:2010:AssociationType:IsSnapshotOf",
}

#: Stored query names -> ids (ITI TF-2 §3.18.4.1.2.3.7, §3.51); ``stored_query`` takes either.
STORED_QUERIES = {
    "FindDocuments": "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
    "FindSubmissionSets": "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9",
    "FindFolders": "urn:uuid:958f3006-baad-4929-a4de-ff1114824431",
    "GetAll": "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3",
    "GetDocuments": "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
    "GetFolders": "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4",
    "GetAssociations": "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155",
    "GetDocumentsAndAssociations": "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a",
    "GetSubmissionSets": "urn:uuid:51224314-5390-4169-9b91-b1980040715a",
    "GetSubmissionSetAndContents": "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83",
    "GetFolderAndContents": "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7",
    "GetFoldersForDocument": "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578",
    "GetRelatedDocuments": "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6",
    "FindDocumentsByReferenceId": "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492",
    "FindDocumentsForMultiplePatients": "urn:uuid:3d1bdb10-39a2-11de-89c2-2f44d94eaa9f",
    "FindFoldersForMultiplePatients": "urn:uuid:50d3f5ac-39a2-11de-a1ca-b366239e58df",
}


# -- values ---------------------------------------------------------------------------------------


class Code(NamedTuple):
    """A coded value: code (nodeRepresentation), codingScheme, displayName."""

    code: str
    scheme: str
    display: str

    @property
    def param(self) -> str:
        """The ITI-18 query form ``code^^scheme``."""
        return f"{self.code}^^{self.scheme}"


LOINC = "2.16.840.1.113883.6.1"
SNOMED = "2.16.840.1.113883.6.96"

CLASS_CODE = Code("34133-9", LOINC, "Summarization of episode note")
TYPE_CODE = Code("18842-5", LOINC, "Discharge summary")
CONFIDENTIALITY_CODE = Code("N", "2.16.840.1.113883.5.25", "normal")
FORMAT_CODE = Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3",
                   "mimeType Sufficient")
HEALTHCARE_FACILITY_TYPE_CODE = Code("22232009", SNOMED, "Hospital")
PRACTICE_SETTING_CODE = Code("394802001", SNOMED, "General medicine")
CONTENT_TYPE_CODE = Code("34133-9", LOINC, "Summarization of episode note")
FOLDER_CODE = Code("57133-1", LOINC, "Referral note")
#: Not used by default (eventCodeList is optional); handy for event-code tests.
EVENT_CODE = Code("CT", "1.2.840.10008.2.16.4", "Computed Tomography")


@dataclass(frozen=True, slots=True, kw_only=True)
class Author:
    """An author (§3.1): one Classification with nodeRepresentation "" and these Slots.

    Empty sequences and ``None`` leave the slot out.
    """

    person: str | None = "^Welby^Marcus^^^Dr^MD"
    institutions: Sequence[str] = ("Some Hospital^^^^^^^^^1.2.3.9.1789.45",)
    roles: Sequence[str] = ("Attending",)
    specialties: Sequence[str] = ("Orthopedic",)
    telecommunications: Sequence[str] = ("^^Internet^marcus.welby@example.org",)


DEFAULT_AUTHOR = Author()


def new_uuid() -> str:
    """A fresh lowercase ``urn:uuid:`` id."""
    return f"urn:uuid:{uuid.uuid4()}"


def new_oid() -> str:
    """A fresh OID under the UUID arc (``2.25.<128-bit integer>``)."""
    return f"2.25.{uuid.uuid4().int}"


def new_patient_id(domain: str = AFFINITY_DOMAIN) -> str:
    """A random patient id in CX form ``<digits>^^^&<domain>&ISO``."""
    return f"{random.randrange(10**11, 10**12)}^^^&{domain}&ISO"


def now_dtm() -> str:
    """The current UTC time as DTM with second precision (``YYYYMMDDhhmmss``)."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


# -- building blocks ------------------------------------------------------------------------------


def slot(slot_name: str, values: str | Iterable[str]) -> etree._Element:
    """``<rim:Slot name=...><rim:ValueList><rim:Value>...`` (one Value per item)."""
    el = etree.Element(_R + "Slot", name=slot_name, nsmap={"rim": NS_RIM})
    value_list = etree.SubElement(el, _R + "ValueList")
    for v in [values] if isinstance(values, str) else values:
        etree.SubElement(value_list, _R + "Value").text = v
    return el


def name(text: str) -> etree._Element:
    """``<rim:Name><rim:LocalizedString value=.../></rim:Name>``."""
    el = etree.Element(_R + "Name", nsmap={"rim": NS_RIM})
    etree.SubElement(el, _R + "LocalizedString", value=text)
    return el


def description(text: str) -> etree._Element:
    """``<rim:Description><rim:LocalizedString value=.../></rim:Description>``."""
    el = etree.Element(_R + "Description", nsmap={"rim": NS_RIM})
    etree.SubElement(el, _R + "LocalizedString", value=text)
    return el


def classification(
    scheme: str, classified_object: str, code: Code, *, id: str | None = None
) -> etree._Element:
    """A coded attribute (§3.1): nodeRepresentation, one ``codingScheme`` Slot, Name = display."""
    el = etree.Element(_R + "Classification", nsmap={"rim": NS_RIM})
    el.set("id", id or new_uuid())
    el.set("classificationScheme", scheme)
    el.set("classifiedObject", classified_object)
    el.set("nodeRepresentation", code.code)
    el.append(slot("codingScheme", code.scheme))
    el.append(name(code.display))
    return el


def author_classification(
    scheme: str, classified_object: str, author: Author, *, id: str | None = None
) -> etree._Element:
    """An author Classification (§3.1): empty nodeRepresentation, sub-attributes as Slots."""
    el = etree.Element(_R + "Classification", nsmap={"rim": NS_RIM})
    el.set("id", id or new_uuid())
    el.set("classificationScheme", scheme)
    el.set("classifiedObject", classified_object)
    el.set("nodeRepresentation", "")
    if author.person is not None:
        el.append(slot("authorPerson", author.person))
    for slot_name, values in (
        ("authorInstitution", author.institutions),
        ("authorRole", author.roles),
        ("authorSpecialty", author.specialties),
        ("authorTelecommunication", author.telecommunications),
    ):
        if values:
            el.append(slot(slot_name, values))
    return el


def node_classification(
    node: str, classified_object: str, *, id: str | None = None
) -> etree._Element:
    """The Classification that labels a RegistryPackage as SubmissionSet or Folder."""
    el = etree.Element(_R + "Classification", nsmap={"rim": NS_RIM})
    el.set("id", id or new_uuid())
    el.set("classificationNode", node)
    el.set("classifiedObject", classified_object)
    return el


def external_identifier(
    scheme: str, registry_object: str, value: str, readable_name: str, *, id: str | None = None
) -> etree._Element:
    """An ExternalIdentifier (§3.1) with its fixed readable Name (``XDSFolder.uniqueId``...)."""
    el = etree.Element(_R + "ExternalIdentifier", nsmap={"rim": NS_RIM})
    el.set("id", id or new_uuid())
    el.set("identificationScheme", scheme)
    el.set("registryObject", registry_object)
    el.set("value", value)
    el.append(name(readable_name))
    return el


class _Ids:
    """Ids for the helper objects of one registry object.

    Symbolic parents get symbolic children (``Document01.cl3``); a parent with a UUID id gets UUID
    children, since a ``urn:uuid:`` prefix on a non-UUID would be malformed.
    """

    def __init__(self, parent: str) -> None:
        self.parent = parent
        self.n = 0

    def __call__(self, kind: str) -> str:
        if self.parent.startswith("urn:uuid:"):
            return new_uuid()
        self.n += 1
        return f"{self.parent}.{kind}{self.n}"


def _extra(el: etree._Element, extra_slots: Mapping[str, str | Sequence[str]] | None) -> None:
    for slot_name, values in (extra_slots or {}).items():
        el.append(slot(slot_name, values))


def _common(
    el: etree._Element, title: str | None, comments: str | None, home: str | None,
    status: str | None, lid: str | None,
) -> None:
    if title is not None:
        el.append(name(title))
    if comments is not None:
        el.append(description(comments))
    if home is not None:
        el.set("home", home)
    if status is not None:
        el.set("status", status)
    if lid is not None:
        el.set("lid", lid)


# -- registry objects -----------------------------------------------------------------------------


def document_entry(
    id: str = "Document01",
    *,
    patient_id: str,
    unique_id: str | None = None,
    content: bytes | None = None,
    hash: str | None = None,
    size: int | None = None,
    mime_type: str = "text/plain",
    object_type: str = STABLE,
    status: str | None = None,
    lid: str | None = None,
    home: str | None = None,
    title: str | None = "Discharge summary",
    comments: str | None = None,
    class_code: Code | None = CLASS_CODE,
    type_code: Code | None = TYPE_CODE,
    format_code: Code | None = FORMAT_CODE,
    healthcare_facility_type_code: Code | None = HEALTHCARE_FACILITY_TYPE_CODE,
    practice_setting_code: Code | None = PRACTICE_SETTING_CODE,
    confidentiality_codes: Sequence[Code] = (CONFIDENTIALITY_CODE,),
    event_codes: Sequence[Code] = (),
    authors: Sequence[Author] = (DEFAULT_AUTHOR,),
    creation_time: str | None = "20240102030405",
    service_start_time: str | None = "20240101080000",
    service_stop_time: str | None = "20240101090000",
    language_code: str | None = "en-US",
    source_patient_id: str | None = None,
    source_patient_info: Sequence[str] | None = None,
    legal_authenticator: str | None = None,
    repository_unique_id: str | None = REPOSITORY_UNIQUE_ID,
    reference_ids: Sequence[str] = (),
    uri: str | None = None,
    extra_slots: Mapping[str, str | Sequence[str]] | None = None,
) -> etree._Element:
    """A DocumentEntry ``rim:ExtrinsicObject`` (§3.3) with every attribute ITI-42 requires.

    ``unique_id`` defaults to a fresh OID; ``hash``/``size`` default to the SHA-1 and length of
    ``content`` (default: bytes derived from the uniqueId, so distinct entries differ).
    ``source_patient_id`` defaults to ``patient_id``; ``source_patient_info`` to PID-3/5/7/8.
    ``None`` (or an empty sequence) leaves an attribute out.
    """
    unique_id = unique_id if unique_id is not None else new_oid()
    data = content if content is not None else f"Document {unique_id}\n".encode()
    hash = hash if hash is not None else hashlib.sha1(data).hexdigest()
    size = size if size is not None else len(data)
    source_patient_id = source_patient_id if source_patient_id is not None else patient_id
    if source_patient_info is None:
        source_patient_info = [
            f"PID-3|{source_patient_id}", "PID-5|Doe^John^^^", "PID-7|19560527", "PID-8|M",
        ]
    ids = _Ids(id)

    el = etree.Element(_R + "ExtrinsicObject", nsmap={"rim": NS_RIM})
    el.set("id", id)
    el.set("mimeType", mime_type)
    el.set("objectType", object_type)
    single = {
        "creationTime": creation_time, "hash": hash, "languageCode": language_code,
        "legalAuthenticator": legal_authenticator, "repositoryUniqueId": repository_unique_id,
        "serviceStartTime": service_start_time, "serviceStopTime": service_stop_time,
        "size": str(size), "sourcePatientId": source_patient_id, "URI": uri,
    }
    for slot_name, value in single.items():
        if value is not None:
            el.append(slot(slot_name, value))
    if source_patient_info:
        el.append(slot("sourcePatientInfo", source_patient_info))
    if reference_ids:
        el.append(slot(DE.referenceIdList, reference_ids))
    _extra(el, extra_slots)
    _common(el, title, comments, home, status, lid)
    for a in authors:
        el.append(author_classification(DE.author, id, a, id=ids("cl")))
    coded: list[tuple[str, Code | None]] = [
        (DE.classCode, class_code),
        *((DE.confidentialityCode, c) for c in confidentiality_codes),
        *((DE.eventCodeList, c) for c in event_codes),
        (DE.formatCode, format_code),
        (DE.healthcareFacilityTypeCode, healthcare_facility_type_code),
        (DE.practiceSettingCode, practice_setting_code),
        (DE.typeCode, type_code),
    ]
    for scheme, code in coded:
        if code is not None:
            el.append(classification(scheme, id, code, id=ids("cl")))
    el.append(external_identifier(DE.patientId, id, patient_id, "XDSDocumentEntry.patientId",
                                  id=ids("ei")))
    el.append(external_identifier(DE.uniqueId, id, unique_id, "XDSDocumentEntry.uniqueId",
                                  id=ids("ei")))
    return el


@overload
def submission_set(
    id: str = ..., *, patient_id: str, classification_inside: Literal[True] = ...,
    unique_id: str | None = ..., source_id: str = ..., submission_time: str | None = ...,
    content_type_code: Code | None = ..., authors: Sequence[Author] = ...,
    intended_recipients: Sequence[str] = ..., title: str | None = ..., comments: str | None = ...,
    home: str | None = ..., extra_slots: Mapping[str, str | Sequence[str]] | None = ...,
) -> etree._Element: ...
@overload
def submission_set(
    id: str = ..., *, patient_id: str, classification_inside: Literal[False],
    unique_id: str | None = ..., source_id: str = ..., submission_time: str | None = ...,
    content_type_code: Code | None = ..., authors: Sequence[Author] = ...,
    intended_recipients: Sequence[str] = ..., title: str | None = ..., comments: str | None = ...,
    home: str | None = ..., extra_slots: Mapping[str, str | Sequence[str]] | None = ...,
) -> list[etree._Element]: ...
def submission_set(
    id: str = "SubmissionSet01",
    *,
    patient_id: str,
    classification_inside: bool = True,
    unique_id: str | None = None,
    source_id: str = SOURCE_ID,
    submission_time: str | None = None,
    content_type_code: Code | None = CONTENT_TYPE_CODE,
    authors: Sequence[Author] = (DEFAULT_AUTHOR,),
    intended_recipients: Sequence[str] = (),
    title: str | None = "Sample submission",
    comments: str | None = None,
    home: str | None = None,
    extra_slots: Mapping[str, str | Sequence[str]] | None = None,
) -> etree._Element | list[etree._Element]:
    """A SubmissionSet ``rim:RegistryPackage`` (§3.4).

    ``unique_id`` defaults to a fresh OID, ``submission_time`` to now (UTC). With
    ``classification_inside=False`` the SubmissionSet Classification is returned as a sibling:
    ``[RegistryPackage, Classification]`` (both go into the RegistryObjectList; §4.2.1.2.1).
    """
    ids = _Ids(id)
    el = etree.Element(_R + "RegistryPackage", nsmap={"rim": NS_RIM})
    el.set("id", id)
    el.set("objectType",
           "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage")
    submission_time = submission_time if submission_time is not None else now_dtm()
    el.append(slot("submissionTime", submission_time))
    if intended_recipients:
        el.append(slot("intendedRecipient", intended_recipients))
    _extra(el, extra_slots)
    _common(el, title, comments, home, None, None)
    for a in authors:
        el.append(author_classification(SS.author, id, a, id=ids("cl")))
    if content_type_code is not None:
        el.append(classification(SS.contentTypeCode, id, content_type_code, id=ids("cl")))
    node = node_classification(SS.classificationNode, id, id=ids("cl"))
    if classification_inside:
        el.append(node)
    unique_id = unique_id if unique_id is not None else new_oid()
    el.append(external_identifier(SS.uniqueId, id, unique_id, "XDSSubmissionSet.uniqueId",
                                  id=ids("ei")))
    el.append(external_identifier(SS.sourceId, id, source_id, "XDSSubmissionSet.sourceId",
                                  id=ids("ei")))
    el.append(external_identifier(SS.patientId, id, patient_id, "XDSSubmissionSet.patientId",
                                  id=ids("ei")))
    return el if classification_inside else [el, node]


@overload
def folder(
    id: str = ..., *, patient_id: str, classification_inside: Literal[True] = ...,
    unique_id: str | None = ..., title: str = ..., codes: Sequence[Code] = ...,
    comments: str | None = ..., last_update_time: str | None = ..., home: str | None = ...,
    extra_slots: Mapping[str, str | Sequence[str]] | None = ...,
) -> etree._Element: ...
@overload
def folder(
    id: str = ..., *, patient_id: str, classification_inside: Literal[False],
    unique_id: str | None = ..., title: str = ..., codes: Sequence[Code] = ...,
    comments: str | None = ..., last_update_time: str | None = ..., home: str | None = ...,
    extra_slots: Mapping[str, str | Sequence[str]] | None = ...,
) -> list[etree._Element]: ...
def folder(
    id: str = "Folder01",
    *,
    patient_id: str,
    classification_inside: bool = True,
    unique_id: str | None = None,
    title: str = "Sample folder",
    codes: Sequence[Code] = (FOLDER_CODE,),
    comments: str | None = None,
    last_update_time: str | None = None,
    home: str | None = None,
    extra_slots: Mapping[str, str | Sequence[str]] | None = None,
) -> etree._Element | list[etree._Element]:
    """A Folder ``rim:RegistryPackage`` (§3.5) with codeList ``codes``.

    ``last_update_time`` is registry-set and so left out by default. ``classification_inside``
    works as for ``submission_set``.
    """
    ids = _Ids(id)
    el = etree.Element(_R + "RegistryPackage", nsmap={"rim": NS_RIM})
    el.set("id", id)
    el.set("objectType",
           "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage")
    if last_update_time is not None:
        el.append(slot("lastUpdateTime", last_update_time))
    _extra(el, extra_slots)
    _common(el, title, comments, home, None, None)
    for code in codes:
        el.append(classification(FD.codeList, id, code, id=ids("cl")))
    node = node_classification(FD.classificationNode, id, id=ids("cl"))
    if classification_inside:
        el.append(node)
    unique_id = unique_id if unique_id is not None else new_oid()
    el.append(external_identifier(FD.patientId, id, patient_id, "XDSFolder.patientId",
                                  id=ids("ei")))
    el.append(external_identifier(FD.uniqueId, id, unique_id, "XDSFolder.uniqueId",
                                  id=ids("ei")))
    return el if classification_inside else [el, node]


def association(
    id: str,
    type: str,
    source: str,
    target: str,
    *,
    submission_set_status: str | None = None,
    slots: Mapping[str, str | Sequence[str]] | None = None,
) -> etree._Element:
    """A ``rim:Association`` (§3.6). ``type`` is a short name of ``ASSOCIATION_TYPES`` or a URN;
    ``submission_set_status`` ("Original"/"Reference") adds the SubmissionSetStatus Slot."""
    el = etree.Element(_R + "Association", nsmap={"rim": NS_RIM})
    el.set("id", id)
    el.set("objectType", "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association")
    el.set("associationType", ASSOCIATION_TYPES.get(type, type))
    el.set("sourceObject", source)
    el.set("targetObject", target)
    if submission_set_status is not None:
        el.append(slot("SubmissionSetStatus", submission_set_status))
    _extra(el, slots)
    return el


def has_member(
    id: str, source: str, target: str, submission_set_status: str | None = None
) -> etree._Element:
    """A HasMember Association; give ``submission_set_status`` for SS -> DocumentEntry."""
    return association(id, "HasMember", source, target,
                       submission_set_status=submission_set_status)


# -- requests -------------------------------------------------------------------------------------


def _flatten(objects: Iterable[etree._Element | Iterable[etree._Element]]) -> list[etree._Element]:
    out: list[etree._Element] = []
    for obj in objects:
        if isinstance(obj, etree._Element):
            out.append(obj)
        else:
            out.extend(obj)
    return out


def submit_objects_request(
    objects: Iterable[etree._Element | Iterable[etree._Element]],
) -> etree._Element:
    """``lcm:SubmitObjectsRequest`` with the objects (lists flattened) in its RegistryObjectList."""
    root = etree.Element(f"{{{NS_LCM}}}SubmitObjectsRequest", nsmap={"lcm": NS_LCM, "rim": NS_RIM})
    registry_object_list = etree.SubElement(root, _R + "RegistryObjectList")
    for obj in _flatten(objects):
        registry_object_list.append(obj)
    return root


def submission(*objects: etree._Element | Iterable[etree._Element]) -> bytes:
    """The serialised SubmitObjectsRequest of ``objects``."""
    return to_bytes(submit_objects_request(objects))


def single_document_submission(
    patient_id: str,
    *,
    submission_set_options: Mapping[str, object] | None = None,
    **document_options: object,
) -> etree._Element:
    """SubmitObjectsRequest: SubmissionSet01 + Document01 + HasMember Association01 (Original).

    ``document_options`` go to ``document_entry``, ``submission_set_options`` to
    ``submission_set`` (both get ``patient_id`` unless overridden).
    """
    doc_id = str(document_options.pop("id", "Document01"))
    ss_opts = dict(submission_set_options or {})
    ss_id = str(ss_opts.pop("id", "SubmissionSet01"))
    ss_opts.setdefault("patient_id", patient_id)
    document_options.setdefault("patient_id", patient_id)
    ss = submission_set(ss_id, **ss_opts)  # type: ignore[call-overload]
    de = document_entry(doc_id, **document_options)  # type: ignore[arg-type]
    return submit_objects_request(
        [ss, de, has_member("Association01", ss_id, doc_id, "Original")]
    )


def stored_query(
    query_id: str,
    params: Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str | Sequence[str]]],
    return_type: str = "LeafClass",
    *,
    home: str | None = None,
    return_composed_objects: bool = True,
) -> etree._Element:
    """``query:AdhocQueryRequest`` for a stored query (ITI-18 §3.18.4.1.2).

    ``query_id`` is a name of ``STORED_QUERIES`` or a UUID. Each parameter value is the raw
    ``rim:Value`` text (already quoted: see ``quoted``, ``quoted_list``, ``code_list``), or a list
    of them for one Slot with several Values. Pass ``(name, value)`` pairs instead of a dict to
    repeat a Slot (AND semantics, §3.18.4.1.2.3.6).
    """
    root = etree.Element(f"{{{NS_QUERY}}}AdhocQueryRequest",
                         nsmap={"query": NS_QUERY, "rim": NS_RIM})
    etree.SubElement(root, f"{{{NS_QUERY}}}ResponseOption", returnType=return_type,
                     returnComposedObjects="true" if return_composed_objects else "false")
    query = etree.SubElement(root, _R + "AdhocQuery", id=STORED_QUERIES.get(query_id, query_id))
    if home is not None:
        query.set("home", home)
    items = params.items() if isinstance(params, Mapping) else params
    for param, values in items:
        query.append(slot(param, values))
    return root


def to_bytes(el: etree._Element) -> bytes:
    """UTF-8 XML with declaration."""
    return etree.tostring(el, xml_declaration=True, encoding="UTF-8")


# -- query parameter values (§3.18.4.1.2.3.5) ----------------------------------------------------


def quoted(value: str) -> str:
    """``'value'`` with embedded quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def quoted_list(values: Iterable[str]) -> str:
    """``('a','b')``."""
    return "(" + ",".join(quoted(v) for v in values) + ")"


def code_list(codes: Iterable[Code | str]) -> str:
    """``('code^^scheme',...)`` from Codes (or ready ``code^^scheme`` strings)."""
    return quoted_list(c.param if isinstance(c, Code) else c for c in codes)
