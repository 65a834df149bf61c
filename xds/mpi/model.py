"""Patient identity in the MPI: identifiers per assigning authority, demographics, and the errors of PIX."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "PatientIdentifier", "Demographics", "Person", "MpiErrorKind", "MpiError", "match_key",
]


@dataclass(frozen=True, slots=True, order=True)
class PatientIdentifier:
    """An id issued by an assigning authority (``domain`` = its OID)."""

    domain: str
    value: str

    @property
    def cx(self) -> str:
        """The XDS form ``value^^^&domain&ISO``."""
        return f"{self.value}^^^&{self.domain}&ISO"

    def __str__(self) -> str:
        return self.cx


@dataclass(slots=True, kw_only=True)
class Demographics:
    """What a feed says about the person; every field optional."""

    family: str | None = None
    given: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    address: str | None = None
    phone: str | None = None
    mothers_maiden_name: str | None = None


@dataclass(slots=True, kw_only=True)
class Person:
    """A link group: the identifiers known to belong to one person."""

    person_id: str
    identifiers: list[PatientIdentifier] = field(default_factory=list)
    demographics: Demographics = field(default_factory=Demographics)

    def in_domain(self, domain: str) -> list[PatientIdentifier]:
        """This person's identifiers issued by ``domain``."""
        return [i for i in self.identifiers if i.domain == domain]


class MpiErrorKind(StrEnum):
    """Why the PIX Manager refused; each transaction maps these to its own wire codes."""

    UnknownDomain = "unknown domain"  # an assigning authority this MPI does not accept
    UnknownIdentifier = "unknown identifier"  # the domain is known, the id is not
    UnknownTargetDomain = "unknown target domain"  # a requested domain of a PIX query
    InvalidMerge = "invalid merge"  # merge into itself, circular, across domains, of a merged id
    Conflict = "conflict"  # identifiers fed together belong to people with other affinity ids
    MissingIdentifier = "missing identifier"


class MpiError(Exception):
    """A refused feed or query; ``positions`` index the offending items (e.g. target domains)."""

    def __init__(self, kind: MpiErrorKind, text: str, positions: tuple[int, ...] = ()) -> None:
        super().__init__(text)
        self.kind = kind
        self.text = text
        self.positions = positions


def match_key(d: Demographics) -> str | None:
    """Normalised ``family|given|birth date|sex`` for deterministic matching, or None when a
    part is missing (no match is ever made on partial demographics)."""
    parts = [d.family, d.given, (d.birth_date or "")[:8], (d.sex or "").upper()[:1]]
    if not all(parts):
        return None
    return "|".join(_normalise(p or "") for p in parts)


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    return re.sub(r"[^A-Z0-9]", "", folded)
