"""HL7 v2 CX (extended composite id) as IHE profiles it, ``ID^^^NS&OID&ISO`` (ITI TF-2x §C.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xds.hl7.build import DEFAULT_CONTEXT, escape
from xds.hl7.message import repetitions, value
from xds.model.values import is_oid

__all__ = ["CXValue", "read_cx", "read_cx_list", "format_cx"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CXValue:
    """One CX, unescaped: CX-1, CX-4 (HD: namespace, universal id, its type) and CX-5."""

    id_number: str = ""
    namespace_id: str = ""
    universal_id: str = ""
    universal_id_type: str = ""
    identifier_type_code: str = ""

    @property
    def oid(self) -> str | None:
        """The assigning authority's OID when CX-4 carries one (``&OID&ISO``), else None."""
        if self.universal_id_type == "ISO" and is_oid(self.universal_id):
            return self.universal_id
        return None


def read_cx(segment: Any, field: int, rep: int = 1) -> CXValue:
    """Repetition ``rep`` of CX ``field`` of a python-hl7 ``segment``."""
    return CXValue(id_number=value(segment, field, rep, 1).strip(),
                   namespace_id=value(segment, field, rep, 4, 1).strip(),
                   universal_id=value(segment, field, rep, 4, 2).strip(),
                   universal_id_type=value(segment, field, rep, 4, 3).strip(),
                   identifier_type_code=value(segment, field, rep, 5).strip())


def read_cx_list(segment: Any, field: int) -> list[tuple[int, CXValue]]:
    """Every repetition of CX ``field`` with its 1-based repetition number."""
    return [(rep, read_cx(segment, field, rep))
            for rep in range(1, repetitions(segment, field) + 1)]


def format_cx(id_number: str, oid: str, context: Any = DEFAULT_CONTEXT) -> str:
    """``id_number^^^&oid&ISO`` in the separators of ``context``, the value escaped."""
    comp, sub = str(context.separators[3]), str(context.separators[4])
    return comp.join((escape(id_number, context), "", "", sub.join(("", oid, "ISO"))))
