"""DICOM Part-10 files (PS3.10 §7): read the header of a stored instance without its Pixel Data,
and stream an instance in another uncompressed transfer syntax with constant memory.

Only the attributes before and after Pixel Data are decoded and re-encoded (pydicom); the pixel
bytes are copied from the file in chunks, so converting a gigabyte multi-frame object costs no
more memory than converting a 512 KB CT slice.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import UID

from xds.dicom.uids import CONVERTIBLE_SYNTAXES, EXPLICIT_LE, IMPLICIT_LE

__all__ = [
    "NotDicomError", "Part10Header", "read_header", "read_header_from", "transcode", "to_part10",
    "PREAMBLE",
]

#: 128-byte preamble and the DICM prefix that open every Part-10 file.
PREAMBLE = b"\0" * 128 + b"DICM"
_PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF
_CHUNK = 1024 * 1024
#: Attributes every stored instance must carry to be indexed and retrieved.
_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


class NotDicomError(ValueError):
    """The bytes are not a usable DICOM Part-10 instance (not DICOM, truncated, or lacking UIDs)."""


@dataclass(frozen=True, slots=True)
class Part10Header:
    """A stored instance as far as its Pixel Data: meta, dataset (without pixels), layout."""

    file_meta: FileMetaDataset
    dataset: Dataset
    transfer_syntax_uid: str
    #: Offset of the (7FE0,0010) element in the file, None without Pixel Data.
    pixel_offset: int | None
    #: Bytes of the Pixel Data value; None when encapsulated (undefined length) or absent.
    pixel_length: int | None
    file_size: int

    def uid(self, keyword: str) -> str:
        """A UID attribute of the dataset as a plain string."""
        return str(self.dataset.get(keyword, "") or "")


def read_header(path: Path) -> Part10Header:
    """The header of the Part-10 file at ``path``.

    Raises NotDicomError when the file is not DICOM Part 10 (no preamble/DICM, no transfer
    syntax), when it is truncated (an element or the Pixel Data runs past its end), or when a
    UID that indexing needs is missing or malformed.
    """
    with path.open("rb") as f:
        return read_header_from(f, path.stat().st_size)


def read_header_from(f: BinaryIO, file_size: int) -> Part10Header:
    """``read_header`` on an open binary file positioned at its start."""
    try:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        pixel_offset = f.tell()
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError,
            struct.error, NotImplementedError) as exc:
        raise NotDicomError(f"not a DICOM Part-10 file: {exc}") from exc
    meta = ds.file_meta
    syntax = str(meta.get("TransferSyntaxUID", "") or "")
    if not syntax:
        raise NotDicomError("the file meta has no TransferSyntaxUID")
    for keyword in _REQUIRED:
        value = str(ds.get(keyword, "") or "")
        if not value or not UID(value).is_valid:
            raise NotDicomError(f"{keyword} is missing or not a valid UID ({value!r})")
    implicit = syntax == IMPLICIT_LE
    little = syntax != "1.2.840.10008.1.2.2"
    offset: int | None = None
    length: int | None = None
    if pixel_offset < file_size:
        f.seek(pixel_offset)
        head = f.read(12)
        tag, value_length, _ = _element_header(head, implicit=implicit, little=little)
        if tag == _PIXEL_DATA:
            offset = pixel_offset
            if value_length != _UNDEFINED:
                length = value_length
                end = pixel_offset + _header_length(head, implicit) + value_length
                if end > file_size:
                    raise NotDicomError(
                        f"truncated: Pixel Data needs {end} bytes, the file has {file_size}")
        elif pixel_offset + 8 > file_size:
            raise NotDicomError("truncated: the file ends inside an element")
    _check_complete(ds)
    return Part10Header(file_meta=meta, dataset=ds, transfer_syntax_uid=syntax,
                        pixel_offset=offset, pixel_length=length, file_size=file_size)


def _check_complete(ds: Dataset) -> None:
    # pydicom reads a value that ends early without complaint; decoding every element here
    # finds the short ones (a truncated header is the usual form of a cut-off transfer).
    try:
        for element in ds.iterall():
            _ = element.value
    except (EOFError, ValueError, struct.error, TypeError, KeyError, NotImplementedError) as exc:
        raise NotDicomError(f"not a DICOM Part-10 file: {exc}") from exc


def _element_header(head: bytes, *, implicit: bool, little: bool) -> tuple[int, int, str]:
    """(tag, value length, VR) of the element whose first bytes are ``head``."""
    if len(head) < 8:
        raise NotDicomError("truncated: the file ends inside an element header")
    order = "<" if little else ">"
    group, element = struct.unpack(order + "HH", head[:4])
    tag = group << 16 | element
    if implicit:
        return tag, struct.unpack(order + "L", head[4:8])[0], ""
    vr = head[4:6].decode("latin-1")
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"):
        if len(head) < 12:
            raise NotDicomError("truncated: the file ends inside an element header")
        return tag, struct.unpack(order + "L", head[8:12])[0], vr
    return tag, struct.unpack(order + "H", head[6:8])[0], vr


def _header_length(head: bytes, implicit: bool) -> int:
    if implicit:
        return 8
    return 12 if head[4:6] in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN") else 8


def transcode(path: Path, header: Part10Header, target: str) -> tuple[int, Iterator[bytes]]:
    """The instance at ``path`` re-encoded in ``target``: (size in bytes, chunks).

    Both the stored and the target syntax must be in ``CONVERTIBLE_SYNTAXES`` (native pixel
    data, little endian); the size is known before the first byte is sent. Raises ValueError
    for any other pair.
    """
    source = header.transfer_syntax_uid
    if source not in CONVERTIBLE_SYNTAXES or target not in CONVERTIBLE_SYNTAXES:
        raise ValueError(f"cannot convert {source} to {target}")
    implicit = target == IMPLICIT_LE
    meta = FileMetaDataset(header.file_meta)
    meta.TransferSyntaxUID = UID(target)
    head = DicomBytesIO()
    head.write(PREAMBLE)
    write_file_meta_info(head, meta, enforce_standard=True)
    body = _encode(header.dataset, implicit)
    pixel_header = b""
    pixel_start = pixel_length = 0
    trailing = b""
    if header.pixel_offset is not None:
        if header.pixel_length is None:
            raise ValueError("encapsulated Pixel Data in a native transfer syntax")
        with path.open("rb") as f:
            f.seek(header.pixel_offset)
            raw = f.read(12)
            pixel_start = header.pixel_offset + _header_length(raw, source == IMPLICIT_LE)
            pixel_length = header.pixel_length
            f.seek(pixel_start + pixel_length)
            rest = f.read()
        bits = int(header.dataset.get("BitsAllocated", 16) or 16)
        pixel_header = _pixel_header(pixel_length, implicit, "OB" if bits <= 8 else "OW")
        if rest:
            trailing = _encode(read_dataset(io.BytesIO(rest), source == IMPLICIT_LE, True), implicit)
    prefix = head.getvalue() + body + pixel_header
    size = len(prefix) + pixel_length + len(trailing)

    def chunks() -> Iterator[bytes]:
        yield prefix
        if pixel_length:
            with path.open("rb") as f:
                f.seek(pixel_start)
                left = pixel_length
                while left:
                    chunk = f.read(min(_CHUNK, left))
                    if not chunk:
                        raise OSError(f"{path} shrank while it was sent")
                    left -= len(chunk)
                    yield chunk
        if trailing:
            yield trailing

    return size, chunks()


def _encode(ds: Dataset, implicit: bool) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = implicit
    write_dataset(out, ds)
    return out.getvalue()


def _pixel_header(length: int, implicit: bool, vr: str) -> bytes:
    tag = struct.pack("<HH", 0x7FE0, 0x0010)
    if implicit:
        return tag + struct.pack("<L", length)
    return tag + vr.encode("ascii") + b"\0\0" + struct.pack("<L", length)


def to_part10(ds: Dataset, transfer_syntax: str = EXPLICIT_LE) -> bytes:
    """``ds`` (with ``file_meta``) as Part-10 bytes in ``transfer_syntax``: for small objects
    this product makes itself, such as KOS manifests."""
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True,
               implicit_vr=transfer_syntax == IMPLICIT_LE, little_endian=True)
    return out.getvalue()
