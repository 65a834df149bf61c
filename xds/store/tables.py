"""Registry tables: each object's XML beside indexed columns for every stored-query filter.

Every table carries ``patient_id`` so a PostgreSQL cluster can shard by patient (DESIGN.md).
Times are kept as 14-digit UTC strings (``normalize_dtm``) that sort like instants.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text, text,
)

__all__ = [
    "metadata", "patient", "document_entry", "document_code", "document_author",
    "document_reference_id", "submission_set", "submission_set_author", "folder", "folder_code",
    "association", "unique_id_claim", "repository_document", "mpi_person", "mpi_identifier",
    "mpi_event", "mpi_notification",
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
