"""What the stored queries share: QueryResult, the capped fetch, SQL filters (ITI TF-2 §3.18)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement, CompoundSelect, Connection, Select, String, Table, and_, literal, or_, select,
    union,
)

from xds.ebrim.vocabulary import DocumentEntryType
from xds.model.errors import ErrorCode, XdsError
from xds.registry.context import Registry
from xds.registry.queryparams import QueryParams
from xds.store.patients import survivors
from xds.store.tables import (
    association, document_author, document_code, document_entry, folder, folder_code,
    submission_set,
)

__all__ = [
    "Hit", "QueryResult", "StoredQueryFn", "StoredRow", "fetch", "fetch_xml", "too_many",
    "time_range", "like", "document_filters", "content_filters", "entry_types",
    "associations_touching", "folder_filters", "chunks", "patient_is", "answered_under",
    "to_survivors",
]

_CHUNK = 500  # ids per IN list: well under SQLite's bound-parameter limit


class Hit(NamedTuple):
    """One object of a result: its id and patient id (for the single-patient rule); once merges
    are resolved, the surviving patient id it is answered under."""

    id: str
    patient_id: str


@dataclass(slots=True)
class QueryResult:
    """The objects a stored query found, per type, without their XML.

    ``ordered()`` gives the stable answer order: within each type by entryUUID (ids are
    immutable and unique, so the order is the same on every backend and every call).
    """

    document_entries: list[Hit] = field(default_factory=list)
    submission_sets: list[Hit] = field(default_factory=list)
    folders: list[Hit] = field(default_factory=list)
    associations: list[Hit] = field(default_factory=list)

    def count(self) -> int:
        """How many objects the answer holds."""
        return (len(self.document_entries) + len(self.submission_sets) + len(self.folders)
                + len(self.associations))

    def patient_ids(self) -> set[str]:
        """Patient ids of the DocumentEntries, SubmissionSets and Folders (not Associations,
        which have no patientId attribute)."""
        return {h.patient_id for h in (*self.document_entries, *self.submission_sets,
                                       *self.folders)}

    def ordered(self) -> QueryResult:
        """Duplicates removed, each type sorted by id."""
        def clean(hits: list[Hit]) -> list[Hit]:
            return sorted({h.id: h for h in hits}.values(), key=lambda h: h.id)
        return QueryResult(
            document_entries=clean(self.document_entries),
            submission_sets=clean(self.submission_sets), folders=clean(self.folders),
            associations=clean(self.associations))


#: A stored query: (checked parameters, read connection, registry) -> result.
StoredQueryFn = Callable[[QueryParams, Connection, Registry], QueryResult]


def too_many(cap: int) -> XdsError:
    """XDSTooManyResults for a result larger than ``cap`` objects."""
    return XdsError(ErrorCode.XDSTooManyResults,
                    f"the query matches more than {cap} objects; narrow it down (or query "
                    "ObjectRef and fetch the objects in parts with GetDocuments)")


def fetch(conn: Connection, stmt: Select[str, str] | CompoundSelect[str, str],
          registry: Registry) -> list[Hit]:
    """Rows (id, patient_id) of ``stmt``, at most ``max_query_results`` of them.

    Fetches one row past the cap so a too-large result is found without counting it all.
    Raises XdsError ``XDSTooManyResults``.
    """
    cap = registry.settings.max_query_results
    rows = conn.execute(stmt.limit(cap + 1)).all()
    if len(rows) > cap:
        raise too_many(cap)
    return [Hit(r[0], r[1]) for r in rows]


def chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    """``ids`` in pieces small enough for one IN list."""
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start:start + _CHUNK])


# -- patient merges (ITI TF-2 §3.18.4.1.2.3.9) ---------------------------------------------------


def patient_is(column: ColumnElement[str], scope: Mapping[str, str]) -> ColumnElement[bool]:
    """``column`` is one of the ids of ``scope`` (see ``patient_scope``): a plain equality
    when no merge is involved, so the usual plan is kept."""
    if len(scope) == 1:
        return column == next(iter(scope))
    return column.in_(sorted(scope))


def answered_under(hits: list[Hit], scope: Mapping[str, str]) -> list[Hit]:
    """``hits`` with each patient id replaced by the id ``scope`` answers it under."""
    return [Hit(h.id, scope.get(h.patient_id, h.patient_id)) for h in hits]


def to_survivors(conn: Connection, result: QueryResult) -> QueryResult:
    """``result`` with the DocumentEntries, SubmissionSets and Folders under their surviving
    patient ids (one primary-key query; Associations keep theirs, they have no patientId)."""
    surviving = survivors(conn, result.patient_ids())
    return QueryResult(
        document_entries=answered_under(result.document_entries, surviving),
        submission_sets=answered_under(result.submission_sets, surviving),
        folders=answered_under(result.folders, surviving), associations=result.associations)


# -- filters -----------------------------------------------------------------------------------


def time_range(column: ColumnElement[str], low: str | None,
               high: str | None) -> list[ColumnElement[bool]]:
    """``low <= column < high`` for the bounds given (§3.18.4.1.2.3.6.1)."""
    conditions: list[ColumnElement[bool]] = []
    if low is not None:
        conditions.append(column >= low)
    if high is not None:
        conditions.append(column < high)
    return conditions


def like(column: ColumnElement[str], pattern: str, dialect: str) -> ColumnElement[bool]:
    """``column`` matches the ITI-18 pattern (``%`` any string, ``_`` one character), case
    sensitively on every backend.

    SQLite's LIKE ignores ASCII case and PostgreSQL's does not, so SQLite gets GLOB, whose other
    wildcards (``*``, ``?``, ``[``) are bracketed to stand for themselves. Elsewhere LIKE with
    an explicit escape character ``!`` (PostgreSQL's default escape is the backslash, which a
    pattern may legitimately contain).
    """
    if dialect == "sqlite":
        glob = "".join({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(ch, ch)
                       for ch in pattern)
        return column.op("GLOB", is_comparison=True)(glob)
    return column.like(pattern.replace("!", "!!"), escape="!")


def entry_types(params: QueryParams) -> tuple[str, ...]:
    """``$XDSDocumentEntryType`` values; Stable only when absent (§3.18.4.1.2.3.6.3)."""
    return params.values("$XDSDocumentEntryType") or (DocumentEntryType.Stable.value,)


def _code_groups(attribute: str, groups: Iterable[Sequence[str]]) -> list[ColumnElement[bool]]:
    # One EXISTS per Slot: the values of a Slot are ORed, repeated Slots ANDed (§3.18.4.1.2.3.6).
    conditions: list[ColumnElement[bool]] = []
    for group in groups:
        dc = document_code.alias()
        conditions.append(select(dc.c.entry_id).where(
            dc.c.entry_id == document_entry.c.id, dc.c.attribute == attribute,
            dc.c.code.in_(group)).exists())
    return conditions


def content_filters(params: QueryParams) -> list[ColumnElement[bool]]:
    """DocumentEntry filters of GetAll and Get...AndContents: format, confidentiality, type."""
    de = document_entry.c
    conditions: list[ColumnElement[bool]] = [de.object_type.in_(entry_types(params))]
    if formats := params.values("$XDSDocumentEntryFormatCode"):
        conditions.append(de.format_code.in_(formats))
    conditions += _code_groups("confidentialityCode",
                               params.groups("$XDSDocumentEntryConfidentialityCode"))
    return conditions


def document_filters(params: QueryParams, dialect: str) -> list[ColumnElement[bool]]:
    """Every FindDocuments filter but the patient id (FindDocuments, ITI-51, ByReferenceId)."""
    de = document_entry.c
    conditions: list[ColumnElement[bool]] = [
        de.status.in_(params.values("$XDSDocumentEntryStatus")), *content_filters(params)]
    for name, column in (
        ("$XDSDocumentEntryClassCode", de.class_code),
        ("$XDSDocumentEntryTypeCode", de.type_code),
        ("$XDSDocumentEntryPracticeSettingCode", de.practice_setting_code),
        ("$XDSDocumentEntryHealthcareFacilityTypeCode", de.healthcare_facility_type_code),
    ):
        if codes := params.values(name):
            conditions.append(column.in_(codes))
    created = time_range(de.creation_time, params.single("$XDSDocumentEntryCreationTimeFrom"),
                         params.single("$XDSDocumentEntryCreationTimeTo"))
    if created:
        # On-Demand entries have no creationTime; the bounds skip them (§3.18.4.1.2.3.6.1).
        conditions.append(or_(de.object_type == DocumentEntryType.OnDemand, and_(*created)))
    for prefix, column in (("$XDSDocumentEntryServiceStartTime", de.service_start_time),
                           ("$XDSDocumentEntryServiceStopTime", de.service_stop_time)):
        bounds = time_range(column, params.single(prefix + "From"), params.single(prefix + "To"))
        if bounds:
            # An entry lacking the attribute is not excluded by its bounds (§3.18.4.1.2.3.7.1).
            conditions.append(or_(column.is_(None), and_(*bounds)))
    conditions += _code_groups("eventCodeList", params.groups("$XDSDocumentEntryEventCodeList"))
    if patterns := params.values("$XDSDocumentEntryAuthorPerson"):
        da = document_author.alias()
        conditions.append(select(da.c.entry_id).where(
            da.c.entry_id == de.id,
            or_(*(like(da.c.author_person, p, dialect) for p in patterns))).exists())
    return conditions


def folder_filters(params: QueryParams) -> list[ColumnElement[bool]]:
    """FindFolders filters but the patient id: status, lastUpdateTime, codeList (AND/OR)."""
    fd = folder.c
    conditions: list[ColumnElement[bool]] = [
        fd.status.in_(params.values("$XDSFolderStatus")),
        *time_range(fd.last_update_time, params.single("$XDSFolderLastUpdateTimeFrom"),
                    params.single("$XDSFolderLastUpdateTimeTo"))]
    for group in params.groups("$XDSFolderCodeList"):
        fc = folder_code.alias()
        conditions.append(select(fc.c.folder_id).where(
            fc.c.folder_id == fd.id, fc.c.code.in_(group)).exists())
    return conditions


def associations_touching(
    ids: Select[str] | Sequence[str], *conditions: ColumnElement[bool],
) -> CompoundSelect[str, str]:
    """(id, patient_id) of Associations whose source or target is in ``ids`` (a subquery or a
    list); a UNION of two index lookups rather than one OR the planner may scan for."""
    a = association.c
    return union(
        select(a.id, a.patient_id).where(a.source_id.in_(ids), *conditions),
        select(a.id, a.patient_id).where(a.target_id.in_(ids), *conditions),
    )


# -- loading -----------------------------------------------------------------------------------


class StoredRow(NamedTuple):
    """A returned object's stored XML and current status (and a Folder's lastUpdateTime), and
    the surviving patient id to show when it differs from the stored one (after a merge)."""

    xml: bytes
    status: str
    last_update_time: str | None
    patient_id: str | None = None


def fetch_xml(conn: Connection, result: QueryResult) -> list[StoredRow]:
    """The stored objects of ``result`` in answer order: DocumentEntries, SubmissionSets,
    Folders, Associations (objects before the Associations that link them)."""
    out: list[StoredRow] = []
    for table, hits in ((document_entry, result.document_entries),
                        (submission_set, result.submission_sets),
                        (folder, result.folders), (association, result.associations)):
        out.extend(_load(conn, table, hits))
    return out


def _load(conn: Connection, table: Table, hits: list[Hit]) -> list[StoredRow]:
    lut: ColumnElement[str] = (
        folder.c.last_update_time if table is folder
        else literal(None, String).label("last_update_time"))
    # An Association's patient_id column is only the registry's sharding key, never shown.
    shown = {} if table is association else {h.id: h.patient_id for h in hits}
    rows: dict[str, StoredRow] = {}
    for part in chunks([h.id for h in hits]):
        stmt = select(table.c.id, table.c.xml, table.c.status, lut, table.c.patient_id).where(
            table.c.id.in_(part))
        for r in conn.execute(stmt):
            label = shown.get(r[0], r[4])
            rows[r[0]] = StoredRow(bytes(r[1]), r[2], r[3], label if label != r[4] else None)
    return [rows[h.id] for h in hits if h.id in rows]
