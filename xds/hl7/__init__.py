"""HL7 v2 wire format: reading (python-hl7, MSH-18 character sets), building ACK/ERR, CX values."""

from xds.hl7.build import (
    DEFAULT_CONTEXT,
    build_ack,
    build_err,
    build_msh,
    encode,
    escape,
    reply_msh,
    segment,
)
from xds.hl7.cx import CXValue, format_cx, read_cx, read_cx_list
from xds.hl7.errors import AckCode, ErrorCode, ErrorSeverity, HL7Error, Location
from xds.hl7.message import (
    CHARSETS,
    VERSIONS,
    Header,
    codec_for,
    decode,
    peek_header,
    repetitions,
    require_version,
    segments,
    value,
)

__all__ = [
    "AckCode", "ErrorCode", "ErrorSeverity", "HL7Error", "Location",
    "CHARSETS", "VERSIONS", "Header", "codec_for", "decode", "peek_header", "value", "repetitions",
    "segments", "require_version",
    "DEFAULT_CONTEXT", "escape", "segment", "build_msh", "reply_msh", "build_err", "build_ack",
    "encode",
    "CXValue", "read_cx", "read_cx_list", "format_cx",
]
