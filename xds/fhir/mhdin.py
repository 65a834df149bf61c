"""MHD -> XDS: the resources of an ITI-65 transaction Bundle read into XDS metadata.

``read_bundle`` sorts the entries (SubmissionSet List, folder Lists, DocumentReferences,
Binaries) and resolves the references between them by ``fullUrl`` (``urn:uuid:...``) or
``Type/id``; ``submission_of`` maps them to a ``Submission`` (MHD DocumentReference /
SubmissionSet / Folder mappings, ITI TF-3 §4.5 of the digest). Nothing is validated here beyond
what the mapping needs: the required-attribute rules are the registry's (ITI-42) and answer as
its XDSRegistryMetadataError.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from xds.ebrim.vocabulary import AssociationType, DocumentEntryType
from xds.fhir.errors import FhirError, Issue
from xds.fhir.ids import OID_URN
from xds.model.metadata import Association, Author, DocumentEntry, Folder, Submission, SubmissionSet
from xds.model.values import Code, LocalizedString

__all__ = ["MHD_LIST_TYPES", "SOURCE_ID_URL", "DESIGNATION_TYPE_URL", "Parsed", "Document",
           "MhdList", "read_bundle", "submission_of", "PatientResolver", "Json"]

Json = dict[str, Any]
#: Resolves a ``subject`` Reference (of the resource at ``where``) to the affinity-domain CX.
PatientResolver = Callable[[Json, str], str]

MHD_LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
SOURCE_ID_URL = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId"
DESIGNATION_TYPE_URL = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType"
_UUID_URN = "urn:uuid:"
_RELATIONS = {"replaces": AssociationType.RPLC, "transforms": AssociationType.XFRM,
              "appends": AssociationType.APND, "signs": AssociationType.signs}


def bad(diagnostics: str, expression: str | None = None, *, status: int = 400,
        ihe_code: str | None = None) -> FhirError:
    """A FhirError ``invalid`` for a Bundle this recipient cannot map."""
    return FhirError(status, Issue("invalid", diagnostics, expression=expression,
                                   ihe_code=ihe_code))


@dataclass(slots=True)
class MhdList:
    """A SubmissionSet or folder List with its entryUUID and the entryUUIDs it lists."""

    index: int
    resource: Json
    entry_uuid: str
    items: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Document:
    """A DocumentReference, its entryUUID and the base64 of its bytes (Binary or inline)."""

    index: int
    resource: Json
    entry_uuid: str
    data: str
    content_type: str
    binary_index: int | None = None


@dataclass(slots=True)
class Parsed:
    """The sorted entries of a Provide Document Bundle."""

    submission_set: MhdList
    folders: list[MhdList]
    documents: list[Document]
    #: Per request entry (in order): the response location ``Type/id``.
    locations: list[str]


def _entry_uuid(entry: Json) -> str:
    """The entryUUID of an entry: its ``urn:uuid:`` fullUrl, else a ``urn:uuid:`` identifier
    of the resource, else a new one."""
    candidates = [entry.get("fullUrl") or ""]
    candidates += [i.get("value") or "" for i in entry["resource"].get("identifier") or []
                   if isinstance(i, dict)]
    for value in candidates:
        if value.startswith(_UUID_URN):
            try:
                return _UUID_URN + str(uuid.UUID(value[len(_UUID_URN):]))
            except ValueError:
                continue
    return f"{_UUID_URN}{uuid.uuid4()}"


def _keys(entry: Json) -> list[str]:
    """The names a reference may use for ``entry``: fullUrl, ``Type/id`` and ``.../Type/id``."""
    resource = entry["resource"]
    keys = [entry["fullUrl"]] if entry.get("fullUrl") else []
    if resource.get("id"):
        keys.append(f"{resource['resourceType']}/{resource['id']}")
    full_url = entry.get("fullUrl") or ""
    parts = full_url.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource["resourceType"]:
        keys.append(f"{parts[-2]}/{parts[-1]}")
    return keys


def _list_code(resource: Json) -> str | None:
    for coding in (resource.get("code") or {}).get("coding") or []:
        if coding.get("system") == MHD_LIST_TYPES:
            return str(coding.get("code"))
    return None


def read_bundle(bundle: Json) -> Parsed:
    """The entries of a transaction Bundle sorted and their references resolved.

    Raises FhirError 400 for anything but one SubmissionSet List, >= 1 DocumentReference,
    folder Lists and Binaries, or a document whose bytes cannot be found.
    """
    if bundle.get("type") != "transaction":
        raise bad(f"ITI-65 takes a Bundle of type transaction, not {bundle.get('type')}",
                  "Bundle.type")
    entries: list[Json] = bundle.get("entry") or []
    by_key: dict[str, int] = {}
    uuids: list[str] = []
    for n, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            raise bad(f"Bundle.entry[{n}] has no resource", f"Bundle.entry[{n}]")
        uuids.append(_entry_uuid(entry))
        for key in _keys(entry):
            by_key[key] = n
    lists: list[MhdList] = []
    submission_sets: list[MhdList] = []
    docs: list[Document] = []
    binaries: dict[int, Json] = {}
    for n, entry in enumerate(entries):
        resource, kind = entry["resource"], entry["resource"]["resourceType"]
        if kind == "List":
            code = _list_code(resource)
            target = submission_sets if code == "submissionset" else lists
            if code not in ("submissionset", "folder"):
                raise bad(f"Bundle.entry[{n}]: a List must be coded submissionset or folder "
                          f"({MHD_LIST_TYPES})", f"Bundle.entry[{n}].resource.code")
            target.append(MhdList(n, resource, uuids[n]))
        elif kind == "DocumentReference":
            docs.append(Document(n, resource, uuids[n], "", ""))
        elif kind == "Binary":
            binaries[n] = resource
        else:
            raise bad(f"Bundle.entry[{n}]: a Provide Document Bundle holds Lists, "
                      f"DocumentReferences and Binaries, not {kind}", f"Bundle.entry[{n}]")
    if len(submission_sets) != 1:
        raise bad(f"the Bundle must hold exactly one SubmissionSet List, not "
                  f"{len(submission_sets)}", "Bundle.entry")
    if not docs:
        raise bad("the Bundle holds no DocumentReference", "Bundle.entry")
    for mhd_list in (*submission_sets, *lists):
        for i, item in enumerate(mhd_list.resource.get("entry") or []):
            ref = (item.get("item") or {}).get("reference") or ""
            target_index = by_key.get(ref)
            if target_index is None:
                raise bad(f"List entry {ref!r} refers to no entry of the Bundle",
                          f"Bundle.entry[{mhd_list.index}].resource.entry[{i}]")
            mhd_list.items.append(uuids[target_index])
    used: dict[int, int] = {}
    for doc in docs:
        _attach_content(doc, by_key, binaries, used)
    locations = []
    for n, entry in enumerate(entries):
        kind = entry["resource"]["resourceType"]
        owner = uuids[used[n]] if kind == "Binary" and n in used else uuids[n]
        locations.append(f"{kind}/{owner[len(_UUID_URN):]}")
    unused = sorted(set(binaries) - set(used))
    if unused:
        raise bad(f"Bundle.entry[{unused[0]}]: a Binary that no DocumentReference refers to",
                  f"Bundle.entry[{unused[0]}]", ihe_code="XDSMissingDocumentMetadata")
    return Parsed(submission_sets[0], lists, docs, locations)


def _attach_content(doc: Document, by_key: dict[str, int], binaries: dict[int, Json],
                    used: dict[int, int]) -> None:
    """Find the bytes of ``doc``: attachment.data, or the Binary attachment.url names."""
    where = f"Bundle.entry[{doc.index}].resource.content"
    contents = doc.resource.get("content") or []
    if len(contents) != 1:
        raise bad(f"DocumentReference must have exactly one content, not {len(contents)}", where)
    attachment = contents[0].get("attachment") or {}
    doc.content_type = attachment.get("contentType") or ""
    if attachment.get("data"):
        doc.data = attachment["data"]
        return
    url = attachment.get("url") or ""
    n = by_key.get(url)
    if n is None or n not in binaries:
        raise bad(f"attachment.url {url!r} names no Binary of the Bundle (and there is no "
                  "attachment.data)", f"{where}[0].attachment.url",
                  ihe_code="XDSMissingDocument")
    if n in used:
        raise bad(f"Binary {url} is the content of two DocumentReferences", f"{where}[0]")
    used[n] = doc.index
    binary = binaries[n]
    doc.binary_index = n
    doc.data = binary.get("data") or ""
    doc.content_type = doc.content_type or binary.get("contentType") or ""
    if not doc.data:
        raise bad(f"Binary {url} has no data", f"Bundle.entry[{n}].resource.data",
                  ihe_code="XDSMissingDocument")


# -- values ---------------------------------------------------------------------------------------


def strip_oid(value: str | None) -> str | None:
    """``value`` without its ``urn:oid:`` prefix."""
    if value is None:
        return None
    return value[len(OID_URN):] if value.startswith(OID_URN) else value


def dtm(value: str | None) -> str | None:
    """A FHIR date/dateTime/instant as an XDS DTM (UTC when it has a time)."""
    if not value:
        return None
    if "T" not in value:
        return value.replace("-", "")
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value  # the registry answers for a value it cannot take
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC)
    return instant.strftime("%Y%m%d%H%M%S")


def code_of(coding: Json | None) -> Code | None:
    """A Coding as an XDS code: system ``urn:oid:X`` becomes scheme X."""
    if not coding or not coding.get("code"):
        return None
    display = coding.get("display") or coding["code"]
    return Code(str(coding["code"]), strip_oid(coding.get("system")) or "",
                LocalizedString(display))


def concept_code(concept: Json | None) -> Code | None:
    """The first coding of a CodeableConcept as an XDS code."""
    codings = (concept or {}).get("coding") or []
    return code_of(codings[0]) if codings else None


def concept_codes(concepts: list[Json] | None) -> list[Code]:
    """Every first coding of ``concepts``."""
    return [c for c in (concept_code(x) for x in concepts or []) if c is not None]


def hash_hex(value: str | None, where: str) -> str | None:
    """attachment.hash (base64 of the SHA-1) as XDS hex; 400 when it is no SHA-1."""
    if value is None:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"attachment.hash {value!r} is not base64", where,
                  ihe_code="XDSRepositoryMetadataError") from None
    if len(raw) != 20:
        raise bad(f"attachment.hash is {len(raw)} octets, not a SHA-1", where,
                  ihe_code="XDSRepositoryMetadataError")
    return raw.hex()


def _identifier_cx(identifier: Json) -> str | None:
    system, value = strip_oid(identifier.get("system")), identifier.get("value")
    return f"{value}^^^&{system}&ISO" if system and value else None


def _contained(resource: Json, reference: Json) -> Json | None:
    ref = reference.get("reference") or ""
    if not ref.startswith("#"):
        return None
    for item in resource.get("contained") or []:
        if item.get("id") == ref[1:]:
            return dict(item)
    return None


def _xcn(person: Json) -> str:
    name = (person.get("name") or [{}])[0]
    ids = person.get("identifier") or []
    ident = ids[0] if ids else {}
    given = name.get("given") or []
    parts = [ident.get("value") or "", name.get("family") or "", given[0] if given else "",
             " ".join(given[1:]), "", "".join(name.get("prefix") or []), "", "",
             ""]
    if ident.get("value") and strip_oid(ident.get("system")):
        parts[8] = f"&{strip_oid(ident.get('system'))}&ISO"
    return "^".join(parts).rstrip("^")


def _xon(org: Json) -> str:
    ids = org.get("identifier") or []
    oid = strip_oid(ids[0].get("value")) if ids else None
    return f"{org.get('name') or ''}^^^^^^^^^{oid}" if oid else str(org.get("name") or "")


def _xtns(person: Json) -> list[str]:
    out = []
    for telecom in person.get("telecom") or []:
        if telecom.get("system") == "email" and telecom.get("value"):
            out.append(f"^^Internet^{telecom['value']}")
        elif telecom.get("system") == "phone" and telecom.get("value"):
            out.append(f"^PRN^PH^^^^^^^^^{telecom['value']}")
    return out


def _person_author(resource: Json, found: Json) -> Author:
    """An Author of a contained Practitioner, or of a PractitionerRole (its practitioner,
    organization, code as role and specialty)."""
    if found.get("resourceType") != "PractitionerRole":
        return Author(person=_xcn(found), telecommunications=_xtns(found))
    practitioner = _contained(resource, found.get("practitioner") or {})
    organization = _contained(resource, found.get("organization") or {})
    return Author(
        person=_xcn(practitioner) if practitioner else None,
        institutions=[_xon(organization)] if organization else [],
        roles=[c.code for c in concept_codes(found.get("code"))],
        specialties=[c.code for c in concept_codes(found.get("specialty"))],
        telecommunications=_xtns(practitioner or found))


def authors_of(resource: Json, references: list[Json]) -> list[Author]:
    """Authors from Practitioner / PractitionerRole references (contained, else the display as
    the person's family name); contained Organizations are the first author's institutions."""
    institutions: list[str] = []
    out: list[Author] = []
    for ref in references:
        found = _contained(resource, ref)
        kind = (found or {}).get("resourceType")
        if found is not None and kind == "Organization":
            institutions.append(_xon(found))
        elif found is not None and kind in ("Practitioner", "PractitionerRole"):
            out.append(_person_author(resource, found))
        elif ref.get("display"):
            out.append(Author(person=f"^{ref['display']}"))
    if institutions:
        if not out:
            out.append(Author())
        out[0].institutions += institutions
    return out


# -- the mapping ----------------------------------------------------------------------------------


def _source_patient(resource: Json) -> tuple[str | None, list[str]]:
    """sourcePatientId and sourcePatientInfo from context.sourcePatientInfo (contained)."""
    ref = (resource.get("context") or {}).get("sourcePatientInfo")
    patient = _contained(resource, ref) if ref else None
    if patient is None:
        return None, []
    cxs = [c for c in (_identifier_cx(i) for i in patient.get("identifier") or []) if c]
    info = [f"PID-3|{cx}" for cx in cxs]
    for name in patient.get("name") or []:
        info.append(f"PID-5|{name.get('family') or ''}^{'^'.join(name.get('given') or [])}")
    if patient.get("birthDate"):
        info.append(f"PID-7|{patient['birthDate'].replace('-', '')}")
    gender = {"male": "M", "female": "F", "other": "A", "unknown": "U"}.get(
        patient.get("gender") or "")
    if gender:
        info.append(f"PID-8|{gender}")
    return (cxs[0] if cxs else None), info


def document_entry(doc: Document, patient_id: str, hash_: str | None) -> DocumentEntry:
    """The DocumentEntry of ``doc`` (hash/size as attachment gives them)."""
    res = doc.resource
    content = (res.get("content") or [{}])[0]
    attachment = content.get("attachment") or {}
    context = res.get("context") or {}
    period = context.get("period") or {}
    source_id, source_info = _source_patient(res)
    authenticator = res.get("authenticator")
    legal = _contained(res, authenticator) if authenticator else None
    size = attachment.get("size")
    return DocumentEntry(
        entry_uuid=doc.entry_uuid,
        object_type=DocumentEntryType.Stable,
        mime_type=doc.content_type or None,
        title=LocalizedString(attachment["title"]) if attachment.get("title") else None,
        comments=LocalizedString(res["description"]) if res.get("description") else None,
        unique_id=strip_oid((res.get("masterIdentifier") or {}).get("value")),
        patient_id=patient_id,
        source_patient_id=source_id,
        source_patient_info=source_info,
        creation_time=dtm(attachment.get("creation")),
        service_start_time=dtm(period.get("start")),
        service_stop_time=dtm(period.get("end")),
        hash=hash_,
        size=str(size) if size is not None else None,
        language_code=attachment.get("language"),
        legal_authenticator=_xcn(legal) if legal else None,
        authors=authors_of(res, res.get("author") or []),
        class_code=concept_code((res.get("category") or [None])[0]),
        type_code=concept_code(res.get("type")),
        format_code=code_of(content.get("format")),
        confidentiality_codes=concept_codes(res.get("securityLabel")),
        event_codes=concept_codes(context.get("event")),
        healthcare_facility_type_code=concept_code(context.get("facilityType")),
        practice_setting_code=concept_code(context.get("practiceSetting")),
    )


def _extension(resource: Json, url: str) -> Json | None:
    for ext in resource.get("extension") or []:
        if ext.get("url") == url:
            return dict(ext)
    return None


def _list_unique_id(resource: Json) -> str | None:
    ids = resource.get("identifier") or []
    ranked = sorted(ids, key=lambda i: {"usual": 0, "official": 1}.get(i.get("use"), 2))
    for ident in ranked:
        value = ident.get("value") or ""
        if not value.startswith(_UUID_URN):
            return strip_oid(value)
    return None


def _note(resource: Json) -> LocalizedString | None:
    notes = resource.get("note") or []
    return LocalizedString(notes[0]["text"]) if notes and notes[0].get("text") else None


def submission_set(ss: MhdList, patient_id: str) -> SubmissionSet:
    """The SubmissionSet of the SubmissionSet List."""
    res = ss.resource
    source = _extension(res, SOURCE_ID_URL)
    designation = _extension(res, DESIGNATION_TYPE_URL)
    source_ref = res.get("source")
    return SubmissionSet(
        entry_uuid=ss.entry_uuid,
        title=LocalizedString(res["title"]) if res.get("title") else None,
        comments=_note(res),
        unique_id=_list_unique_id(res),
        patient_id=patient_id,
        source_id=strip_oid(((source or {}).get("valueIdentifier") or {}).get("value")),
        submission_time=dtm(res.get("date")),
        authors=authors_of(res, [source_ref]) if source_ref else [],
        content_type_code=concept_code((designation or {}).get("valueCodeableConcept")),
    )


def folder(fd: MhdList, patient_id: str) -> Folder:
    """The Folder of a folder List (codes from ihe-designationType)."""
    res = fd.resource
    designation = _extension(res, DESIGNATION_TYPE_URL)
    codes = concept_codes([designation["valueCodeableConcept"]]) if designation and \
        designation.get("valueCodeableConcept") else []
    return Folder(entry_uuid=fd.entry_uuid, unique_id=_list_unique_id(res),
                  patient_id=patient_id, codes=codes,
                  title=LocalizedString(res["title"]) if res.get("title") else None,
                  comments=_note(res))


def _has_member(source: str, target: str, status: list[str] | None = None) -> Association:
    return Association(entry_uuid=f"{_UUID_URN}{uuid.uuid4()}",
                       association_type=AssociationType.HasMember, source_object=source,
                       target_object=target, submission_set_status=status)


def _relations(doc: Document) -> list[Association]:
    out = []
    for n, relation in enumerate(doc.resource.get("relatesTo") or []):
        where = f"Bundle.entry[{doc.index}].resource.relatesTo[{n}]"
        kind = _RELATIONS.get(relation.get("code") or "")
        ref = (relation.get("target") or {}).get("reference") or ""
        target = ref.rsplit("/", 1)[-1] if ref.rsplit("/", 2)[-2:-1] == ["DocumentReference"] \
            else ""
        if kind is None or not target:
            raise bad(f"relatesTo {relation.get('code')} -> {ref!r}: give replaces, transforms, "
                      "appends or signs and DocumentReference/<id>", where)
        out.append(Association(entry_uuid=f"{_UUID_URN}{uuid.uuid4()}", association_type=kind,
                               source_object=doc.entry_uuid, target_object=_UUID_URN + target))
    return out


def submission_of(parsed: Parsed, patient: PatientResolver,
                  hashes: dict[str, str | None]) -> Submission:
    """The Submission of ``parsed``: SS, DocumentEntries, Folders and their associations
    (SS -> DE Original, SS -> Folder, Folder -> DE with its SS -> association HasMember, and
    the relatesTo relationships)."""
    docs = parsed.documents
    entries = [document_entry(d, patient(d.resource, f"Bundle.entry[{d.index}].resource"),
                              hashes.get(d.entry_uuid)) for d in docs]
    ss_res = parsed.submission_set.resource
    ss_patient = patient(ss_res, f"Bundle.entry[{parsed.submission_set.index}].resource") \
        if ss_res.get("subject") else entries[0].patient_id or ""
    ss = submission_set(parsed.submission_set, ss_patient)
    folders = [folder(f, patient(f.resource, f"Bundle.entry[{f.index}].resource")
                      if f.resource.get("subject") else ss_patient) for f in parsed.folders]
    assocs = [_has_member(ss.entry_uuid, d.entry_uuid, ["Original"]) for d in docs]
    doc_ids = {d.entry_uuid for d in docs}
    for fd in parsed.folders:
        assocs.append(_has_member(ss.entry_uuid, fd.entry_uuid))
        for item in fd.items:
            if item not in doc_ids:
                raise bad("a folder List may only list DocumentReferences of the Bundle",
                          f"Bundle.entry[{fd.index}].resource.entry")
            member = _has_member(fd.entry_uuid, item)
            assocs += [member, _has_member(ss.entry_uuid, member.entry_uuid)]
    for doc in docs:
        assocs += _relations(doc)
    return Submission(submission_sets=[ss], document_entries=entries, folders=folders,
                      associations=assocs)
