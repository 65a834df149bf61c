"""Stored-query parameters as data, and their checks (ITI TF-2 §3.18.4.1.2.3.7, §3.51.4.1.2)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from xds.ebrim.query import QuerySlot
from xds.ebrim.vocabulary import Status, StoredQuery
from xds.model.errors import ErrorCode, RegistryError, XdsError
from xds.model.values import CX, normalize_dtm

__all__ = ["Kind", "Param", "QuerySpec", "QueryParams", "QUERIES", "MULTI_PATIENT_QUERIES",
           "query_spec", "check_params", "parse_code"]

log = logging.getLogger("xds.registry.iti18")


class Kind(Enum):
    """How a parameter's values are checked and normalised."""

    TEXT = "text"          # taken as given (ids, uniqueIds, sourceIds, objectTypes, URNs)
    PATIENT = "patient"    # CX ``id^^^&OID&ISO``
    CODE = "code"          # ``code^^scheme`` (§3.18.4.1.2.3.4)
    TIME = "time"          # DTM, normalised to 14-digit UTC (lower-bound form)
    STATUS = "status"      # StatusType URN; unknown values dropped (§3.18.4.1.2.3.6.2)
    LIKE = "like"          # SQL LIKE pattern with % and _ (§3.18.4.1.2.3.5)


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a stored query: (name, kind, required, multiple, AND/OR)."""

    name: str
    kind: Kind = Kind.TEXT
    required: bool = False
    multiple: bool = False
    and_or: bool = False


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """The parameter table of one stored query.

    ``one_of``: groups of which exactly one parameter must be given (both ->
    XDSStoredQueryParamNumber, none -> XDSStoredQueryMissingParam). ``any_of``: at least one of
    these (ITI-51). ``by_id``: the query selects by entryUUID/uniqueId, so a LeafClass result must
    be single-patient (XDSResultNotSinglePatient).
    """

    query: StoredQuery
    params: tuple[Param, ...]
    one_of: tuple[tuple[str, ...], ...] = ()
    any_of: tuple[str, ...] = ()
    by_id: bool = False
    by_name: Mapping[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})


def _p(name: str, kind: Kind = Kind.TEXT, *, r: bool = False, m: bool = False,
       ao: bool = False) -> Param:
    return Param(name=name, kind=kind, required=r, multiple=m, and_or=ao)


_C, _T, _L, _S, _PID = Kind.CODE, Kind.TIME, Kind.LIKE, Kind.STATUS, Kind.PATIENT
_HOME = _p("$homeCommunityId")  # normally AdhocQuery/@home (CP-ITI-429); tolerated as a Slot

#: FindDocuments without its patient id (shared with ITI-51 and FindDocumentsByReferenceId).
_DOCUMENT_FILTERS = (
    _p("$XDSDocumentEntryClassCode", _C, m=True),
    _p("$XDSDocumentEntryTypeCode", _C, m=True),
    _p("$XDSDocumentEntryPracticeSettingCode", _C, m=True),
    _p("$XDSDocumentEntryCreationTimeFrom", _T),
    _p("$XDSDocumentEntryCreationTimeTo", _T),
    _p("$XDSDocumentEntryServiceStartTimeFrom", _T),
    _p("$XDSDocumentEntryServiceStartTimeTo", _T),
    _p("$XDSDocumentEntryServiceStopTimeFrom", _T),
    _p("$XDSDocumentEntryServiceStopTimeTo", _T),
    _p("$XDSDocumentEntryHealthcareFacilityTypeCode", _C, m=True),
    _p("$XDSDocumentEntryEventCodeList", _C, m=True, ao=True),
    _p("$XDSDocumentEntryConfidentialityCode", _C, m=True, ao=True),
    _p("$XDSDocumentEntryAuthorPerson", _L, m=True),
    _p("$XDSDocumentEntryFormatCode", _C, m=True),
    _p("$XDSDocumentEntryStatus", _S, r=True, m=True),
    _p("$XDSDocumentEntryType", m=True),
)
_FOLDER_FILTERS = (
    _p("$XDSFolderLastUpdateTimeFrom", _T),
    _p("$XDSFolderLastUpdateTimeTo", _T),
    _p("$XDSFolderCodeList", _C, m=True, ao=True),
    _p("$XDSFolderStatus", _S, r=True, m=True),
)
#: Filters on the DocumentEntries of GetAll / Get...AndContents.
_CONTENT_FILTERS = (
    _p("$XDSDocumentEntryFormatCode", _C, m=True),
    _p("$XDSDocumentEntryConfidentialityCode", _C, m=True, ao=True),
    _p("$XDSDocumentEntryType", m=True),
)
_DE_IDS = ("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")
_FD_IDS = ("$XDSFolderEntryUUID", "$XDSFolderUniqueId")
_SS_IDS = ("$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId")


def _ids(names: tuple[str, ...], *, m: bool) -> tuple[Param, ...]:
    return tuple(_p(n, m=m) for n in names)


_SPECS = (
    QuerySpec(StoredQuery.FindDocuments, (
        _p("$XDSDocumentEntryPatientId", _PID, r=True), *_DOCUMENT_FILTERS)),
    QuerySpec(StoredQuery.FindDocumentsByReferenceId, (
        _p("$XDSDocumentEntryPatientId", _PID, r=True), *_DOCUMENT_FILTERS,
        _p("$XDSDocumentEntryReferenceIdList", r=True, m=True, ao=True))),
    QuerySpec(StoredQuery.FindSubmissionSets, (
        _p("$XDSSubmissionSetPatientId", _PID, r=True),
        _p("$XDSSubmissionSetSourceId", m=True),
        _p("$XDSSubmissionSetSubmissionTimeFrom", _T),
        _p("$XDSSubmissionSetSubmissionTimeTo", _T),
        _p("$XDSSubmissionSetAuthorPerson", _L),
        _p("$XDSSubmissionSetContentType", _C, m=True),
        _p("$XDSSubmissionSetStatus", _S, r=True, m=True))),
    QuerySpec(StoredQuery.FindFolders, (
        _p("$XDSFolderPatientId", _PID, r=True), *_FOLDER_FILTERS)),
    QuerySpec(StoredQuery.GetAll, (
        _p("$patientId", _PID, r=True),
        _p("$XDSDocumentEntryStatus", _S, r=True, m=True),
        _p("$XDSSubmissionSetStatus", _S, r=True, m=True),
        _p("$XDSFolderStatus", _S, r=True, m=True),
        *_CONTENT_FILTERS)),
    QuerySpec(StoredQuery.GetDocuments, (*_ids(_DE_IDS, m=True), _HOME),
              one_of=(_DE_IDS,), by_id=True),
    QuerySpec(StoredQuery.GetFolders, (*_ids(_FD_IDS, m=True), _HOME),
              one_of=(_FD_IDS,), by_id=True),
    QuerySpec(StoredQuery.GetAssociations, (_p("$uuid", r=True, m=True), _HOME), by_id=True),
    QuerySpec(StoredQuery.GetDocumentsAndAssociations, (*_ids(_DE_IDS, m=True), _HOME),
              one_of=(_DE_IDS,), by_id=True),
    QuerySpec(StoredQuery.GetSubmissionSets, (_p("$uuid", r=True, m=True), _HOME), by_id=True),
    QuerySpec(StoredQuery.GetSubmissionSetAndContents,
              (*_ids(_SS_IDS, m=False), *_CONTENT_FILTERS, _HOME),
              one_of=(_SS_IDS,), by_id=True),
    QuerySpec(StoredQuery.GetFolderAndContents,
              (*_ids(_FD_IDS, m=False), *_CONTENT_FILTERS, _HOME),
              one_of=(_FD_IDS,), by_id=True),
    QuerySpec(StoredQuery.GetFoldersForDocument, (*_ids(_DE_IDS, m=False), _HOME),
              one_of=(_DE_IDS,), by_id=True),
    QuerySpec(StoredQuery.GetRelatedDocuments, (
        *_ids(_DE_IDS, m=False), _p("$AssociationTypes", r=True, m=True),
        _p("$XDSDocumentEntryType", m=True), _HOME), one_of=(_DE_IDS,), by_id=True),
    # ITI-51 Multi-Patient Query (ITI TF-2 §3.51.4.1.2): the patient id becomes optional and
    # multi-valued, and one of these parameters must narrow the search.
    QuerySpec(StoredQuery.FindDocumentsForMultiplePatients, (
        _p("$XDSDocumentEntryPatientId", _PID, m=True), *_DOCUMENT_FILTERS),
        any_of=("$XDSDocumentEntryPatientId", "$XDSDocumentEntryClassCode",
                "$XDSDocumentEntryEventCodeList", "$XDSDocumentEntryHealthcareFacilityTypeCode")),
    QuerySpec(StoredQuery.FindFoldersForMultiplePatients, (
        _p("$XDSFolderPatientId", _PID, m=True), *_FOLDER_FILTERS),
        any_of=("$XDSFolderPatientId", "$XDSFolderCodeList")),
)

#: Every stored query the registry answers, by id.
QUERIES: Mapping[str, QuerySpec] = {spec.query.value: spec for spec in _SPECS}
#: The queries of ITI-51; the only ones its endpoint action accepts.
MULTI_PATIENT_QUERIES = frozenset({
    StoredQuery.FindDocumentsForMultiplePatients, StoredQuery.FindFoldersForMultiplePatients})


def query_spec(query_id: str, *, multi_patient: bool = False) -> QuerySpec:
    """The parameter table of ``query_id``.

    ITI-18 answers every query (the two ITI-51 ones included, as a convenience to consumers that
    send them with the ITI-18 action); ITI-51 (``multi_patient``) answers only its own two.
    Raises XdsError ``XDSUnknownStoredQuery``.
    """
    spec = QUERIES.get(query_id)
    if spec is None:
        raise XdsError(ErrorCode.XDSUnknownStoredQuery, f"unknown stored query id {query_id}")
    if multi_patient and spec.query not in MULTI_PATIENT_QUERIES:
        raise XdsError(ErrorCode.XDSUnknownStoredQuery,
                       f"{spec.query.name} ({query_id}) is not a Multi-Patient Stored Query "
                       "(ITI-51); send it as ITI-18")
    return spec


@dataclass(frozen=True, slots=True)
class QueryParams:
    """Checked, normalised parameter values of one request.

    Each parameter holds its value groups: one group, or one per repeated Slot for an AND/OR
    parameter (the groups are ANDed, the values inside a group ORed).
    """

    query: StoredQuery
    groups_by_name: Mapping[str, tuple[tuple[str, ...], ...]]

    def has(self, name: str) -> bool:
        """Whether ``name`` was given (with at least one usable value)."""
        return name in self.groups_by_name

    def single(self, name: str) -> str | None:
        """The one value of single-valued ``name``, or None when absent."""
        groups = self.groups_by_name.get(name)
        return groups[0][0] if groups else None

    def values(self, name: str) -> tuple[str, ...]:
        """All values of ``name`` (empty when absent)."""
        return tuple(v for group in self.groups_by_name.get(name, ()) for v in group)

    def groups(self, name: str) -> tuple[tuple[str, ...], ...]:
        """The AND-ed OR-groups of ``name`` (empty when absent)."""
        return self.groups_by_name.get(name, ())


_KNOWN_STATUS = frozenset(s.value for s in Status)


def parse_code(value: str) -> str | None:
    """``code^^scheme`` in canonical form, or None when malformed (both parts required)."""
    code, sep, scheme = value.partition("^^")
    if not sep or not code or not scheme or "^" in scheme or "^" in code:
        return None
    return f"{code}^^{scheme}"


def _normalise(param: Param, value: str) -> tuple[str | None, str]:
    """(normalised value or None when to be dropped, reason when malformed)."""
    if param.kind is Kind.CODE:
        code = parse_code(value)
        return code, "" if code else f"code {value!r} is not of the form code^^codingScheme"
    if param.kind is Kind.TIME:
        # Both bounds use the earliest instant of the given precision, so "To" is exclusive at
        # that instant: From <= value < To (§3.18.4.1.2.3.6.1).
        dtm = normalize_dtm(value)
        return dtm, "" if dtm else f"{value!r} is not a DTM (YYYY[MM[DD[hh[mm[ss]]]]])"
    if param.kind is Kind.PATIENT:
        cx = CX.parse(value)
        return (value, "") if cx else (None, f"patient id {value!r} is not a CX id^^^&OID&ISO")
    if param.kind is Kind.STATUS:
        return (value if value in _KNOWN_STATUS else None), ""
    return value, ""


def check_params(spec: QuerySpec, slots: Sequence[QuerySlot]) -> QueryParams:
    """Check the Slots of a request against ``spec`` and normalise their values.

    Unknown parameters are ignored (logged): TF revisions, options (Metadata Update's
    ``$MetadataLevel``, legacy ``...Scheme`` parameters) and national extensions add parameters,
    and refusing them would break queries that a registry can answer. All errors are reported
    together. Raises XdsError with:

    - ``XDSStoredQueryMissingParam``: a required parameter (or every member of an either/or or
      at-least-one group) is absent, or a status parameter has no known status value;
    - ``XDSStoredQueryParamNumber``: several values for a single-valued parameter, a repeated
      Slot of a parameter without AND/OR semantics, both members of an either/or pair;
    - ``XDSRegistryMetadataError``: a malformed code, time or patient id. The TF names no code;
      this follows IPF (INVALID_QUERY_PARAMETER_VALUE) so that a malformed value is told apart
      from the missing/number cases (digest §7.8).
    """
    errors: list[RegistryError] = []
    reported: set[str] = set()  # parameters given but in error: not also "missing"

    def fail(code: ErrorCode, context: str, name: str | None = None) -> None:
        errors.append(RegistryError(code=code, context=context))
        if name:
            reported.add(name)

    raw: dict[str, list[tuple[str, ...]]] = {}
    for slot in slots:
        param = spec.by_name.get(slot.name)
        if param is None:
            log.info("%s: ignoring unknown parameter %s", spec.query.name, slot.name)
            continue
        raw.setdefault(slot.name, []).append(slot.values)

    checked: dict[str, tuple[tuple[str, ...], ...]] = {}
    for name, slot_values in raw.items():
        param = spec.by_name[name]
        if len(slot_values) > 1 and not param.and_or:
            fail(ErrorCode.XDSStoredQueryParamNumber,
                 f"{name} appears in {len(slot_values)} Slots; only AND/OR parameters may repeat",
                 name)
            continue
        groups: list[tuple[str, ...]] = []
        for values in slot_values:
            if len(values) > 1 and not param.multiple:
                fail(ErrorCode.XDSStoredQueryParamNumber,
                     f"{name} takes one value, got {len(values)}", name)
                break
            group: list[str] = []
            for value in values:
                norm, reason = _normalise(param, value)
                if reason:
                    fail(ErrorCode.XDSRegistryMetadataError, f"{name}: {reason}", name)
                elif norm is not None:
                    group.append(norm)
                else:
                    log.info("%s: ignoring unknown status %s in %s", spec.query.name, value, name)
            if group:
                groups.append(tuple(dict.fromkeys(group)))
            elif values and param.kind is Kind.STATUS:
                fail(ErrorCode.XDSStoredQueryMissingParam,
                     f"{name} holds no known status value (expected "
                     f"{Status.Approved.value} or {Status.Deprecated.value})", name)
        if groups:
            checked[name] = tuple(groups)

    for param in spec.params:
        if param.required and param.name not in checked and param.name not in reported:
            fail(ErrorCode.XDSStoredQueryMissingParam,
                 f"required parameter {param.name} is missing")
    for pair in spec.one_of:
        given = [n for n in pair if n in checked or n in reported]
        if len(given) > 1:
            fail(ErrorCode.XDSStoredQueryParamNumber,
                 f"give exactly one of {' or '.join(pair)}, not both")
        elif not given:
            fail(ErrorCode.XDSStoredQueryMissingParam,
                 f"one of {' or '.join(pair)} is required")
    if spec.any_of and not any(n in checked or n in reported for n in spec.any_of):
        fail(ErrorCode.XDSStoredQueryMissingParam,
             f"at least one of {', '.join(spec.any_of)} is required")
    if errors:
        raise XdsError.of(errors)
    return QueryParams(query=spec.query, groups_by_name=checked)
