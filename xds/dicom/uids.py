"""DICOM UIDs the product uses: one place for SOP classes and transfer syntaxes (PS3.6 Annex A)."""

from __future__ import annotations

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

__all__ = [
    "DICOM_MIME", "KOS_SOP_CLASS", "DCMUID_SCHEME", "IMPLICIT_LE", "EXPLICIT_LE", "DEFLATED_LE",
    "EXPLICIT_BE", "NATIVE_SYNTAXES", "CONVERTIBLE_SYNTAXES",
]

#: Media type of a DICOM Part-10 file (XDS mimeType of a KOS, RAD-69, WADO parts).
DICOM_MIME = "application/dicom"
#: Key Object Selection Document Storage: the XDS-I.b manifest, and its XDS formatCode.
KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
#: codingScheme of the KOS formatCode: the DICOM UID Registry (RAD68-022).
DCMUID_SCHEME = "1.2.840.10008.2.6.1"

IMPLICIT_LE = str(ImplicitVRLittleEndian)
EXPLICIT_LE = str(ExplicitVRLittleEndian)
DEFLATED_LE = str(DeflatedExplicitVRLittleEndian)
EXPLICIT_BE = str(ExplicitVRBigEndian)

#: Uncompressed syntaxes whose Pixel Data is native (not encapsulated).
NATIVE_SYNTAXES = frozenset({IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE})
#: What ``part10.transcode`` converts between while streaming the Pixel Data unchanged.
CONVERTIBLE_SYNTAXES = frozenset({IMPLICIT_LE, EXPLICIT_LE})
