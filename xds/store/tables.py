"""Registry tables: each object's XML beside indexed columns for every stored-query filter.

Every table carries ``patient_id`` so a PostgreSQL cluster can shard by patient (DESIGN.md).
Times are kept as 14-digit UTC strings (``normalize_dtm``) that sort like instants.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger, Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text, text,
)

__all__ = [
    "metadata", "patient", "document_entry", "document_code", "document_author",
    "document_reference_id", "submission_set", "submission_set_author", "folder", "folder_code",
    "association", "unique_id_claim", "repository_document", "mpi_person", "mpi_identifier",
    "mpi_event", "mpi_notification", "dicom_instance", "imaging_study", "audit_outbox",
    "xua_assertion",
]

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
})

_ID = 64  # urn:uuid: + 36
_PID = 256  # rim:LongName

patient = Table(
    "patient", metadata,
    Column("patient_id", String(_PID), primary_key=True),
    #: The surviving patient id after a merge (ITI-8 A40 / ITI-44), else NULL.
    Column("merged_into", String(_PID), nullable=True),
    Column("created", String(14), nullable=False),
    # Partial: almost every row is NULL, and stored queries look up "merged into P" each time.
    Index("ix_patient_merged_into", "merged_into",
          sqlite_where=text("merged_into IS NOT NULL"),
          postgresql_where=text("merged_into IS NOT NULL")),
)

document_entry = Table(
    "document_entry", metadata,
    Column("id", String(_ID), primary_key=True),
    Column("patient_id", String(_PID), nullable=False),
    Column("status", String(64), nullable=False),
    Column("object_type", String(_ID), nullable=False),
    Column("unique_id", String(_PID), nullable=False),
    Column("lid", String(_ID), nullable=False),
    Column("version", Integer, nullable=False),
    Column("hash", String(40)),
    Column("size", BigInteger),
    Column("repository_unique_id", String(64)),
    Column("mime_type", String(_PID), nullable=False),
    Column("home", String(_PID)),
    Column("creation_time", String(14)),
    Column("service_start_time", String(14)),
    Column("service_stop_time", String(14)),
    Column("class_code", String(512)),
    Column("type_code", String(512)),
    Column("format_code", String(512)),
    Column("practice_setting_code", String(512)),
    Column("healthcare_facility_type_code", String(512)),
    Column("submission_set_id", String(_ID), nullable=False),
    Column("xml", LargeBinary, nullable=False),
    Index(None, "patient_id", "status", "creation_time"),
    Index(None, "unique_id"),
    Index(None, "lid"),
)

#: Multi-valued coded attributes of DocumentEntries: confidentialityCode, eventCodeList.
document_code = Table(
    "document_code", metadata,
    Column("entry_id", String(_ID), primary_key=True),
    Column("attribute", String(32), primary_key=True),
    Column("code", String(512), primary_key=True),
    Column("patient_id", String(_PID), nullable=False),
)

document_author = Table(
    "document_author", metadata,
    Column("entry_id", String(_ID), nullable=False),
    Column("patient_id", String(_PID), nullable=False),
    Column("author_person", Text, nullable=False),
    Index(None, "entry_id"),
)

document_reference_id = Table(
    "document_reference_id", metadata,
    Column("entry_id", String(_ID), nullable=False),
    Column("patient_id", String(_PID), nullable=False),
    Column("value", String(_PID), nullable=False),
    Index(None, "entry_id"),
    Index(None, "value"),
)

submission_set = Table(
    "submission_set", metadata,
    Column("id", String(_ID), primary_key=True),
    Column("patient_id", String(_PID), nullable=False),
    Column("status", String(64), nullable=False),
    Column("unique_id", String(_PID), nullable=False),
    Column("source_id", String(_PID), nullable=False),
    Column("submission_time", String(14), nullable=False),
    Column("content_type_code", String(512)),
    Column("home", String(_PID)),
    Column("xml", LargeBinary, nullable=False),
    Index(None, "patient_id", "submission_time"),
    Index(None, "unique_id", unique=True),
)

submission_set_author = Table(
    "submission_set_author", metadata,
    Column("submission_set_id", String(_ID), nullable=False),
    Column("patient_id", String(_PID), nullable=False),
    Column("author_person", Text, nullable=False),
    Index(None, "submission_set_id"),
)

folder = Table(
    "folder", metadata,
    Column("id", String(_ID), primary_key=True),
    Column("patient_id", String(_PID), nullable=False),
    Column("status", String(64), nullable=False),
    Column("unique_id", String(_PID), nullable=False),
    Column("lid", String(_ID), nullable=False),
    Column("version", Integer, nullable=False),
    #: Registry-set; kept out of ``xml`` and written into the Slot when the Folder is returned.
    Column("last_update_time", String(14), nullable=False),
    Column("home", String(_PID)),
    Column("xml", LargeBinary, nullable=False),
    Index(None, "patient_id", "last_update_time"),
    Index(None, "unique_id", unique=True),
)

folder_code = Table(
    "folder_code", metadata,
    Column("folder_id", String(_ID), primary_key=True),
    Column("code", String(512), primary_key=True),
    Column("patient_id", String(_PID), nullable=False),
)

association = Table(
    "association", metadata,
    Column("id", String(_ID), primary_key=True),
    Column("patient_id", String(_PID), nullable=False),
    Column("association_type", String(_PID), nullable=False),
    Column("source_id", String(_ID), nullable=False),
    Column("target_id", String(_ID), nullable=False),
    Column("status", String(64), nullable=False),
    Column("xml", LargeBinary, nullable=False),
    Index(None, "source_id"),
    Index(None, "target_id"),
)

#: One row per uniqueId in use: serialises concurrent submissions of the same uniqueId
#: (the primary key makes exactly one of them win) and remembers a DocumentEntry's hash/size.
unique_id_claim = Table(
    "unique_id_claim", metadata,
    Column("unique_id", String(_PID), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("hash", String(40)),
    Column("size", BigInteger),
)


#: The Document Repository's map from (repositoryUniqueId, uniqueId) to stored bytes (ITI-41/43).
repository_document = Table(
    "repository_document", metadata,
    Column("repository_unique_id", String(64), primary_key=True),
    Column("document_unique_id", String(_PID), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("sha1", String(40), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mime_type", String(_PID), nullable=False),
    Column("created", String(14), nullable=False),
    Index(None, "sha256"),
)


#: PIX Manager link groups: one row per person; the identifiers below point at it.
mpi_person = Table(
    "mpi_person", metadata,
    Column("person_id", String(_ID), primary_key=True),
    Column("created", String(14), nullable=False),
)

#: Patient identifiers per assigning authority (domain OID) with their latest demographics.
mpi_identifier = Table(
    "mpi_identifier", metadata,
    Column("domain", String(64), primary_key=True),
    Column("value", String(_PID), primary_key=True),
    #: The link group; NULL once the identifier was merged away.
    Column("person_id", String(_ID), nullable=True),
    #: The surviving identifier's value (same domain) after a merge, else NULL.
    Column("merged_into", String(_PID), nullable=True),
    Column("family", String(_PID)),
    Column("given", String(_PID)),
    Column("birth_date", String(14)),
    Column("sex", String(8)),
    Column("address", Text),
    Column("phone", String(_PID)),
    Column("mothers_maiden_name", String(_PID)),
    #: Normalised family|given|birth date|sex, for deterministic demographic matching.
    Column("match_key", String(_PID)),
    Column("updated", String(14), nullable=False),
    Index(None, "person_id"),
    Index(None, "match_key"),
)

#: History of the index: created, updated, linked, merged (never rewritten).
mpi_event = Table(
    "mpi_event", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(14), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("domain", String(64), nullable=False),
    Column("value", String(_PID), nullable=False),
    Column("person_id", String(_ID)),
    Column("other_domain", String(64)),
    Column("other_value", String(_PID)),
    Column("detail", Text),
    Index(None, "domain", "value"),
)

#: Outbox of PIX update notifications (ITI-10 / ITI-46): written with the change, sent later.
mpi_notification = Table(
    "mpi_notification", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber", String(512), nullable=False),
    Column("person_id", String(_ID), nullable=False),
    Column("created", String(14), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", String(14), nullable=False),
    Column("delivered", String(14)),
    Column("last_error", Text),
    Index(None, "delivered", "next_attempt"),
)


#: Imaging Document Source instance index: one row per SOP Instance held here or in the
#: external archive, with what KOS manifests, RAD-69, WADO and the FHIR facade need.
dicom_instance = Table(
    "dicom_instance", metadata,
    Column("sop_instance_uid", String(64), primary_key=True),
    Column("study_instance_uid", String(64), nullable=False),
    Column("series_instance_uid", String(64), nullable=False),
    Column("sop_class_uid", String(64), nullable=False),
    Column("transfer_syntax_uid", String(64), nullable=False),
    Column("instance_number", Integer),
    #: (0010,0020) and the OID of its assigning authority (instance's own, else configured).
    Column("patient_id", String(64), nullable=False),
    Column("patient_issuer", String(64), nullable=False),
    Column("patient_name", String(_PID)),
    Column("patient_birth_date", String(8)),
    Column("patient_sex", String(16)),
    Column("accession_number", String(64)),
    Column("accession_issuer", String(64)),
    Column("study_id", String(16)),
    Column("study_date", String(8)),
    Column("study_time", String(16)),
    Column("study_description", String(_PID)),
    Column("referring_physician", String(_PID)),
    Column("modality", String(16)),
    Column("series_number", Integer),
    Column("series_description", String(_PID)),
    Column("body_part", String(16)),
    Column("laterality", String(16)),
    #: Part-10 bytes in the blob store (NULL when they live in the external archive).
    Column("sha256", String(64)),
    Column("size", BigInteger),
    #: WADO-RS URL of the instance in the external archive, else NULL.
    Column("archive_url", String(1024)),
    Column("received", String(14), nullable=False),
    Index(None, "study_instance_uid", "series_instance_uid"),
    Index(None, "patient_issuer", "patient_id"),
    Index(None, "accession_number"),
    Index(None, "sha256"),
)

#: Per study: when it last changed and the manifest (KOS) currently published for it (RAD-68).
imaging_study = Table(
    "imaging_study", metadata,
    Column("study_instance_uid", String(64), primary_key=True),
    #: Seconds since the epoch of the last instance received (drives the quiet-period publish).
    Column("updated", Float, nullable=False),
    #: Bumped with every change to the study's instances; a manifest records the one it shows.
    Column("revision", Integer, nullable=False),
    Column("published_revision", Integer),
    #: The current manifest: KOS SOP Instance UID (= DocumentEntry uniqueId) and entryUUID.
    Column("kos_sop_instance_uid", String(64)),
    Column("kos_entry_uuid", String(_ID)),
    Column("published", String(14)),
    #: The affinity-domain patient id (CX) the manifest was registered under.
    Column("patient_cx", String(_PID)),
    Column("last_error", Text),
)

#: ATNA audit trail (ITI-20): one row per DICOM audit message, written in the same database
#: transaction as the change it describes; the sender stamps ``sent`` once the Audit Record
#: Repository has taken it. The rows are also the local trail ``xds audit list`` shows.
audit_outbox = Table(
    "audit_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: EventDateTime as seconds since the epoch (UTC).
    Column("created", Float, nullable=False),
    #: EventID code (DCM), e.g. 110112, and the EventTypeCode (the transaction), e.g. ITI-18.
    Column("event_id", String(16), nullable=False),
    Column("event_type", String(32)),
    #: EventOutcomeIndicator: 0 success, 4 minor, 8 serious, 12 major failure.
    Column("outcome", Integer, nullable=False),
    #: The patient the event is about (CX), when there is one.
    Column("patient", String(_PID)),
    #: The whole AuditMessage XML, as sent.
    Column("message", Text, nullable=False),
    Column("sent", Float),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Index(None, "sent", "id"),
    Index(None, "created"),
    Index(None, "patient"),
)

#: XUA: SAML assertion IDs already accepted, kept until the assertion expires (replay check
#: shared by every worker).
xua_assertion = Table(
    "xua_assertion", metadata,
    Column("id", String(_PID), primary_key=True),
    Column("expires", Float, nullable=False),
    Index(None, "expires"),
)
