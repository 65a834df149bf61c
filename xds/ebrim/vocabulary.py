"""Every IHE / ebXML identifier of XDS.b metadata: namespaces, UUIDs, URNs (ITI TF-3 §4.2.5).

This module is the only place where a ``urn:uuid:`` literal of the vocabulary appears.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "NS_RIM", "NS_RS", "NS_LCM", "NS_QUERY", "NS_XDS", "NS_RAD", "NS_XML", "NSMAP", "EBRIM_21_NAMESPACES",
    "Status", "ResponseStatus", "DocumentEntryType", "AssociationType", "ObjectType",
    "ReturnType", "StoredQuery", "DE", "SS", "FD", "ASSOCIATION_DOCUMENTATION",
    "SUBMISSION_SET_STATUS", "EMPTY_SHA1",
]

NS_RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
NS_RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
NS_LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
NS_QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
NS_XDS = "urn:ihe:iti:xds-b:2007"
#: XDS-I.b RAD-69 request elements (StudyRequest, SeriesRequest, TransferSyntaxUIDList).
NS_RAD = "urn:ihe:rad:xdsi-b:2009"
NS_XML = "http://www.w3.org/XML/1998/namespace"
NSMAP = {"rim": NS_RIM, "rs": NS_RS, "lcm": NS_LCM, "query": NS_QUERY, "xds": NS_XDS}

#: Retired XDS.a (ebRIM/ebRS 2.1) namespaces: a request in one of these is refused.
EBRIM_21_NAMESPACES = frozenset({
    "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1",
    "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1",
    "urn:oasis:names:tc:ebxml-regrep:query:xsd:2.1",
})

#: SHA-1 of empty content, used with size 0 by Delayed Document Assembly (ITI TF-2 §3.43).
EMPTY_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"

#: Slot on a SubmissionSet -> DocumentEntry HasMember (ITI TF-3 §4.2.2.1.1).
SUBMISSION_SET_STATUS = "SubmissionSetStatus"

#: classificationScheme of an optional Association Documentation classification.
ASSOCIATION_DOCUMENTATION = "urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3"


class Status(StrEnum):
    """availabilityStatus of registry objects."""

    Approved = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    Deprecated = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
    Submitted = "urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted"


class ResponseStatus(StrEnum):
    """``@status`` of RegistryResponse / AdhocQueryResponse."""

    Success = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    Failure = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
    PartialSuccess = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"


class DocumentEntryType(StrEnum):
    """ExtrinsicObject ``@objectType`` of a DocumentEntry."""

    Stable = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
    OnDemand = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"


class AssociationType(StrEnum):
    """``rim:Association/@associationType`` values (ITI TF-3 §4.2.2)."""

    HasMember = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
    RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
    XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"
    APND = "urn:ihe:iti:2007:AssociationType:APND"
    XFRM_RPLC = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
    signs = "urn:ihe:iti:2007:AssociationType:signs"
    IsSnapshotOf = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"
    UpdateAvailabilityStatus = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
    SubmitAssociation = "urn:ihe:iti:2010:AssociationType:SubmitAssociation"


#: Relationship types that deprecate their target on commit.
REPLACING_TYPES = frozenset({AssociationType.RPLC, AssociationType.XFRM_RPLC})
#: Relationship types between two DocumentEntries (ITI TF-3 §4.2.2.2).
RELATIONSHIP_TYPES = frozenset({
    AssociationType.RPLC, AssociationType.XFRM, AssociationType.APND,
    AssociationType.XFRM_RPLC, AssociationType.signs, AssociationType.IsSnapshotOf,
})
__all__ += ["REPLACING_TYPES", "RELATIONSHIP_TYPES"]


class ObjectType(StrEnum):
    """objectType of helper objects; required on retrieval (ITI TF-3 §4.2.3.1.2)."""

    Classification = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
    ExternalIdentifier = (
        "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
    )
    RegistryPackage = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
    Association = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"


class ReturnType(StrEnum):
    """``query:ResponseOption/@returnType`` values a stored query answers."""

    LeafClass = "LeafClass"
    ObjectRef = "ObjectRef"


class StoredQuery(StrEnum):
    """Stored query ids (ITI TF-2 §3.18.4.1.2.3.7, ITI-51)."""

    FindDocuments = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    FindSubmissionSets = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
    FindFolders = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
    GetAll = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
    GetDocuments = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
    GetFolders = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
    GetAssociations = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
    GetDocumentsAndAssociations = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
    GetSubmissionSets = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
    GetSubmissionSetAndContents = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
    GetFolderAndContents = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
    GetFoldersForDocument = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
    GetRelatedDocuments = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
    FindDocumentsByReferenceId = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
    FindDocumentsForMultiplePatients = "urn:uuid:3d1bdb10-39a2-11de-89c2-2f44d94eaa9f"
    FindFoldersForMultiplePatients = "urn:uuid:50d3f5ac-39a2-11de-a1ca-b366239e58df"


class DE:
    """DocumentEntry vocabulary (ITI TF-3 Table 4.2.5-1)."""

    author = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
    classCode = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
    confidentialityCode = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
    eventCodeList = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
    formatCode = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
    healthcareFacilityTypeCode = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
    practiceSettingCode = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
    typeCode = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
    limitedMetadata = "urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85"
    patientId = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
    uniqueId = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
    patientId_name = "XDSDocumentEntry.patientId"
    uniqueId_name = "XDSDocumentEntry.uniqueId"
    referenceIdList = "urn:ihe:iti:xds:2013:referenceIdList"


class SS:
    """SubmissionSet vocabulary (ITI TF-3 Table 4.2.5-1)."""

    classificationNode = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
    author = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
    contentTypeCode = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
    limitedMetadata = "urn:uuid:5003a9db-8d8d-49e6-bf0c-990e34ac7707"
    patientId = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
    sourceId = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
    uniqueId = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
    patientId_name = "XDSSubmissionSet.patientId"
    sourceId_name = "XDSSubmissionSet.sourceId"
    uniqueId_name = "XDSSubmissionSet.uniqueId"


class FD:
    """Folder vocabulary (ITI TF-3 Table 4.2.5-1)."""

    classificationNode = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
    codeList = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
    limitedMetadata = "urn:uuid:2c144a76-29a9-4b7c-af54-b25409fe7d03"
    patientId = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
    uniqueId = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"
    patientId_name = "XDSFolder.patientId"
    uniqueId_name = "XDSFolder.uniqueId"
