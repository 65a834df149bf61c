"""HL7 v2 data types of XDS metadata (ITI TF-3 Table 4.2.3.1.7-2): CX, XCN, XON, XTN, DTM."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "CX", "Code", "LocalizedString", "is_oid", "is_uuid_urn", "is_dtm", "normalize_dtm",
    "is_xcn", "is_xon", "is_xtn", "is_cxi", "is_oid_urn", "new_uuid_urn", "now_dtm",
]

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DTM = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$"
)


def is_oid(value: str) -> bool:
    """True for a dotted ISO OID: first arc 0-2, no leading zeros (ITI TF-3 Table 4.2.3.1.7-2)."""
    return bool(_OID.match(value))


def is_oid_urn(value: str) -> bool:
    """True for ``urn:oid:<OID>`` (homeCommunityId)."""
    return value.startswith("urn:oid:") and is_oid(value[8:])


def is_uuid_urn(value: str) -> bool:
    """True for ``urn:uuid:`` + an RFC 4122 UUID in lowercase hex (ITI TF-3 §4.2.3.1.5)."""
    return bool(_UUID_URN.match(value))


def new_uuid_urn() -> str:
    """A fresh random UUID URN in the form the registry assigns."""
    import uuid

    return f"urn:uuid:{uuid.uuid4()}"


def now_dtm() -> str:
    """The current instant as a 14-digit UTC DTM ``YYYYMMDDhhmmss``."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


def is_dtm(value: str) -> bool:
    """True for an HL7 DTM ``YYYY[MM[DD[hh[mm[ss[.S]]]]]][+/-ZZZZ]`` with plausible fields."""
    return normalize_dtm(value) is not None


def normalize_dtm(value: str, *, upper: bool = False) -> str | None:
    """A DTM as a 14-digit UTC ``YYYYMMDDhhmmss`` string that sorts like the instant, else None.

    A partial value means its earliest instant; with ``upper=True`` the instant just past its
    latest one (so ``To`` bounds at day precision include the whole day). Zones convert to UTC.
    """
    m = _DTM.match(value)
    if not m:
        return None
    year, month, day, hour, minute, second, _frac, zone = m.groups()
    parts = [year, month, day, hour, minute, second]
    precision = sum(p is not None for p in parts)
    if any(parts[i] is None and parts[i + 1] is not None for i in range(5)):
        return None
    try:
        instant = datetime(
            int(year), int(month or 1), int(day or 1),
            int(hour or 0), int(minute or 0), int(second or 0),
        )
    except ValueError:
        return None
    if upper:
        instant = _next_instant(instant, precision)
    if zone:
        sign = 1 if zone[0] == "+" else -1
        instant -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
    return instant.strftime("%Y%m%d%H%M%S").rjust(14, "0")


def _next_instant(instant: datetime, precision: int) -> datetime:
    if precision == 1:
        return instant.replace(year=instant.year + 1)
    if precision == 2:
        return instant.replace(year=instant.year + instant.month // 12, month=instant.month % 12 + 1)
    step = {3: timedelta(days=1), 4: timedelta(hours=1), 5: timedelta(minutes=1)}
    return instant + step.get(precision, timedelta(seconds=1))


@dataclass(frozen=True, slots=True)
class CX:
    """A patient identifier ``IdNumber^^^&OID&ISO`` (only components 1 and 4)."""

    id: str
    assigning_authority: str

    @classmethod
    def parse(cls, value: str) -> CX | None:
        """The CX in ``value``, or None when it is not of the profiled form."""
        parts = value.split("^")
        if len(parts) != 4 or not parts[0] or parts[1] or parts[2]:
            return None
        hd = parts[3].split("&")
        if len(hd) != 3 or hd[0] or hd[2] != "ISO" or not is_oid(hd[1]):
            return None
        return cls(parts[0], hd[1])

    def __str__(self) -> str:
        return f"{self.id}^^^&{self.assigning_authority}&ISO"


def is_xcn(value: str) -> bool:
    """XCN with an id (comp 1) or a family name (comp 2); comp 9 like CX.4 if present."""
    parts = value.split("^")
    if len(parts) > 23:
        return False
    ident = parts[0]
    family = parts[1] if len(parts) > 1 else ""
    if not ident and not family.split("&")[0]:
        return False
    if ident and len(parts) > 8 and parts[8]:
        hd = parts[8].split("&")
        if len(hd) != 3 or hd[2] != "ISO" or not is_oid(hd[1]):
            return False
    return True


def is_xon(value: str) -> bool:
    """XON with an organization name (comp 1); comp 6 like CX.4 when comp 10 is not an OID."""
    parts = value.split("^")
    return bool(parts[0]) and len(parts) <= 10


def is_xtn(value: str) -> bool:
    """XTN: an e-mail (``^^Internet^a@b``) or a phone (comp 3 PH/CP/FX/...)."""
    parts = value.split("^")
    if len(parts) < 3:
        return False
    if parts[2] == "Internet":
        return len(parts) >= 4 and "@" in parts[3]
    return any(parts[4:]) or bool(parts[0])


def is_cxi(value: str) -> bool:
    """CXi (referenceIdList): id, comps 2-3 empty, comp 5 the id type code."""
    parts = value.split("^")
    return len(parts) >= 5 and bool(parts[0]) and not parts[1] and not parts[2] and bool(parts[4])


@dataclass(frozen=True, slots=True)
class LocalizedString:
    """``rim:LocalizedString``: a value with optional xml:lang and charset."""

    value: str
    lang: str | None = None
    charset: str | None = None


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value: ``nodeRepresentation``, ``codingScheme`` slot, display name."""

    code: str
    scheme: str
    display: LocalizedString | None = None

    @property
    def key(self) -> str:
        """The code in stored-query form ``code^^scheme`` (ITI TF-2 §3.18.4.1.2.3.4)."""
        return f"{self.code}^^{self.scheme}"
