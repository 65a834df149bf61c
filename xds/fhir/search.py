"""FHIR search: parameter parsing (token, reference, date with prefixes), paging, and the
``searchset`` Bundle with ``total``, ``self``/``next``/``previous`` links and included resources.

Each resource type declares its parameters in a ``SearchSpec``; ``parse_search`` refuses an
unknown or malformed parameter with 400 (or drops it with a warning under
``Prefer: handling=lenient``), so a client never gets a silently widened result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlencode

from xds.fhir.errors import FhirError, Issue, invalid
from xds.model.values import normalize_dtm

__all__ = [
    "ParamType", "SearchParam", "SearchSpec", "SearchRequest", "SearchResult", "Token",
    "DateParam", "parse_search", "parse_token", "parse_date", "reference_id", "searchset",
    "DEFAULT_COUNT", "MAX_COUNT",
]

DEFAULT_COUNT = 50
#: The largest page; a bigger ``_count`` is capped with a warning in the Bundle.
MAX_COUNT = 500
#: Control parameters every search takes (besides those a type declares).
_CONTROL = frozenset({"_count", "_offset", "_include", "_revinclude", "_sort", "_summary",
                      "_format", "_pretty", "_total"})
T = TypeVar("T")


class ParamType(StrEnum):
    """FHIR search parameter types used here."""

    token = "token"
    reference = "reference"
    date = "date"
    string = "string"
    uri = "uri"


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of a type: its name (``patient.identifier`` for a chain), its FHIR
    type, what it searches, and the modifiers it takes besides none."""

    name: str
    type: ParamType
    documentation: str
    modifiers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """What a resource type's search accepts."""

    resource_type: str
    params: tuple[SearchParam, ...]
    includes: tuple[str, ...] = ()
    revincludes: tuple[str, ...] = ()
    sorts: tuple[str, ...] = ()

    def param(self, name: str) -> SearchParam | None:
        """The declared parameter ``name``."""
        return next((p for p in self.params if p.name == name), None)


@dataclass(slots=True)
class SearchRequest:
    """A checked search: parameter values, paging and the control parameters.

    ``values[name]`` holds one entry per repetition of the parameter (repetitions are ANDed);
    each entry is the list of its comma-separated values (ORed), as FHIR defines.
    """

    spec: SearchSpec
    values: dict[str, list[list[str]]] = field(default_factory=dict)
    modifiers: dict[str, str] = field(default_factory=dict)
    count: int = DEFAULT_COUNT
    offset: int = 0
    includes: list[str] = field(default_factory=list)
    revincludes: list[str] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    summary_count: bool = False
    warnings: list[Issue] = field(default_factory=list)
    #: (name, value) pairs as received and kept, for the Bundle's links.
    echo: list[tuple[str, str]] = field(default_factory=list)

    def has(self, name: str) -> bool:
        """Whether ``name`` was given."""
        return name in self.values

    def groups(self, name: str) -> list[list[str]]:
        """The ANDed repetitions of ``name``, each a list of ORed values."""
        return self.values.get(name, [])

    def one(self, name: str) -> list[str]:
        """The ORed values of ``name``, which may be given once (400 when repeated)."""
        groups = self.values.get(name, [])
        if len(groups) > 1:
            raise invalid(f"{name} may be given only once (use commas for alternatives)",
                          expression=name)
        return groups[0] if groups else []

    def page(self, items: Sequence[T]) -> Sequence[T]:
        """The slice of ``items`` this page shows."""
        return items[self.offset:self.offset + self.count]

    def tokens(self, name: str) -> list[list[Token]]:
        """``groups(name)`` parsed as tokens (400 when malformed)."""
        return [[parse_token(v, name) for v in group] for group in self.groups(name)]

    def dates(self, name: str) -> list[DateParam]:
        """Every value of ``name`` parsed as a date (repetitions and commas alike ANDed here:
        commas in dates are rare and ORing ranges is left out)."""
        return [parse_date(v, name) for group in self.groups(name) for v in group]


@dataclass(slots=True)
class SearchResult:
    """What a type's search found: the total, this page's resources and the included ones."""

    total: int
    resources: list[dict[str, Any]]
    included: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Token:
    """A token value: ``system|code``; ``system`` None for "any system", "" for "no system";
    ``code`` "" for "any code of the system"."""

    system: str | None
    code: str


def parse_token(value: str, name: str = "token") -> Token:
    """``[system|]code`` (400 when empty)."""
    if "|" in value:
        system, _, code = value.partition("|")
        if not system and not code:
            raise invalid(f"{name}={value!r} is an empty token", expression=name)
        return Token(system, code)
    if not value:
        raise invalid(f"{name} has an empty value", expression=name)
    return Token(None, value)


_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_FHIR_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?")


@dataclass(frozen=True, slots=True)
class DateParam:
    """A date search value as the half-open UTC range ``[low, high)`` of its precision (14-digit
    DTMs, the form the registry and the instance index store) and its prefix."""

    prefix: str
    low: str
    high: str

    def bounds(self) -> tuple[str | None, str | None]:
        """(From inclusive, To exclusive) a value must lie in; ``ne`` has none (use
        ``matches``)."""
        return {
            "eq": (self.low, self.high), "ap": (self.low, self.high),
            "ge": (self.low, None), "gt": (self.high, None), "sa": (self.high, None),
            "le": (None, self.high), "lt": (None, self.low), "eb": (None, self.low),
        }.get(self.prefix, (None, None))

    def matches(self, value: str | None) -> bool:
        """Whether the instant ``value`` (a DTM, any precision: its earliest instant)
        satisfies this parameter; a missing value never does."""
        instant = normalize_dtm(value) if value else None
        if instant is None:
            return False
        if self.prefix == "ne":
            return not self.low <= instant < self.high
        low, high = self.bounds()
        return (low is None or instant >= low) and (high is None or instant < high)


def parse_date(value: str, name: str = "date") -> DateParam:
    """``[prefix]YYYY[-MM[-DD[Thh:mm[:ss][zone]]]]`` (400 for anything else, e.g. 2026-13-45)."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    m = _FHIR_DATE.fullmatch(text)
    bad = invalid(f"{name}={value!r} is not a FHIR date ([prefix]YYYY[-MM[-DD[Thh:mm[:ss]"
                  "[Z|+hh:mm]]]])", expression=name)
    if not m:
        raise bad
    year, month, day, hour, minute, second, zone = m.groups()
    dtm = "".join(p for p in (year, month, day, hour, minute, second) if p)
    if zone and zone != "Z":
        dtm += zone.replace(":", "")
    low, high = normalize_dtm(dtm), normalize_dtm(dtm, upper=True)
    if low is None or high is None:
        raise bad
    return DateParam(prefix, low, high)


def reference_id(value: str, resource_type: str, name: str) -> str:
    """The id in a reference search value: ``Type/id``, a bare id, or an absolute URL ending in
    ``Type/id`` (400 for a reference to another type or an impossible id)."""
    text = value.rstrip("/")
    if "/" in text:
        parts = text.split("/")
        if len(parts) < 2 or parts[-2] != resource_type:
            raise invalid(f"{name}={value!r} is not a reference to a {resource_type}",
                          expression=name)
        text = parts[-1]
    if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", text):
        raise invalid(f"{name}={value!r}: {text!r} is not a FHIR id", expression=name)
    return text


def parse_search(spec: SearchSpec, pairs: Sequence[tuple[str, str]], *,
                 lenient: bool = False) -> SearchRequest:
    """Check the query ``pairs`` against ``spec``.

    Raises FhirError 400 for an unknown parameter, modifier, ``_include``/``_sort`` value or a
    malformed ``_count``/``_offset`` (unknown ones are dropped with a warning when
    ``lenient``). A ``_count`` above MAX_COUNT is capped with a warning.
    """
    search = SearchRequest(spec=spec)
    problems: list[Issue] = []

    def refuse(text: str, name: str) -> None:
        problems.append(Issue("not-supported" if not lenient else "informational", text,
                              severity="warning" if lenient else "error", expression=name))

    for raw_name, value in pairs:
        name, _, modifier = raw_name.partition(":")
        if name in _CONTROL:
            if _control(search, name, value, refuse):
                search.echo.append((raw_name, value))
            continue
        param = spec.param(name)
        if param is None:
            refuse(f"unknown search parameter {raw_name} for {spec.resource_type}", raw_name)
            continue
        if modifier and modifier not in param.modifiers:
            refuse(f"modifier :{modifier} is not supported on {name}", raw_name)
            continue
        if modifier:
            search.modifiers[name] = modifier
        search.values.setdefault(name, []).append([v for v in value.split(",")])
        search.echo.append((raw_name, value))
    if problems and not lenient:
        raise FhirError(400, *problems)
    search.warnings.extend(problems)
    return search


def _control(search: SearchRequest, name: str, value: str, refuse: Any) -> bool:
    """Apply one control parameter; False when it is dropped (refused or not echoed)."""
    spec = search.spec
    if name in ("_count", "_offset"):
        if not re.fullmatch(r"\d{1,12}", value):
            raise invalid(f"{name}={value!r} is not a non-negative integer", expression=name)
        number = int(value)
        if name == "_offset":
            search.offset = number
        elif number > MAX_COUNT:
            search.count = MAX_COUNT
            search.warnings.append(Issue(
                "too-costly", f"_count={value} is more than this server pages; each page holds "
                f"at most {MAX_COUNT} (follow the next links)", severity="warning",
                expression="_count"))
        else:
            search.count = number
        return False  # links carry the effective values
    if name == "_include":
        if value not in spec.includes:
            refuse(f"_include={value} is not supported for {spec.resource_type}"
                   f" (supported: {', '.join(spec.includes) or 'none'})", name)
            return False
        search.includes.append(value)
    elif name == "_revinclude":
        if value not in spec.revincludes:
            refuse(f"_revinclude={value} is not supported for {spec.resource_type}", name)
            return False
        search.revincludes.append(value)
    elif name == "_sort":
        for key in value.split(","):
            if key not in spec.sorts:
                refuse(f"_sort={key} is not supported for {spec.resource_type}"
                       f" (supported: {', '.join(spec.sorts) or 'none'})", name)
                return False
        search.sort = value.split(",")
    elif name == "_summary":
        if value == "count":
            search.summary_count = True
        elif value != "false":
            refuse(f"_summary={value} is not supported (only count and false)", name)
            return False
    elif name in ("_format", "_pretty", "_total"):
        return False
    return True


def searchset(base_url: str, search: SearchRequest, result: SearchResult) -> dict[str, Any]:
    """The ``searchset`` Bundle of ``result`` with its paging links (offset-based: the order of
    every search is total and deterministic, so pages neither repeat nor skip)."""
    spec = search.spec
    link = f"{base_url}/{spec.resource_type}"

    def url(offset: int) -> str:
        query = [*search.echo, ("_count", str(search.count)), ("_offset", str(offset))]
        return f"{link}?{urlencode(query)}"

    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                              "total": result.total}
    if search.summary_count:
        bundle["link"] = [{"relation": "self", "url": url(0)}]
        return bundle
    links = [{"relation": "self", "url": url(search.offset)}]
    if search.count and search.offset + search.count < result.total:
        links.append({"relation": "next", "url": url(search.offset + search.count)})
    if search.offset > 0:
        links.append({"relation": "previous", "url": url(max(0, search.offset - search.count))})
    bundle["link"] = links
    entries: list[dict[str, Any]] = []
    for resource, mode in [*((r, "match") for r in result.resources),
                           *((r, "include") for r in result.included)]:
        entries.append({"fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
                        "resource": resource, "search": {"mode": mode}})
    if search.warnings:
        entries.append({"resource": {"resourceType": "OperationOutcome",
                                     "issue": [i.as_json() for i in search.warnings]},
                        "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle
