"""An external image archive (a PACS such as Orthanc) behind the Imaging Document Source, over
DICOMweb: QIDO-RS/WADO-RS metadata index its studies here, WADO-RS streams their instances.

The instances stay in the archive; the index rows carry their WADO-RS URL (``archive_url``) and
no blob. RAD-69, WADO-URI and WADO-RS of this source then relay the archive's bytes, chunk by
chunk.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
from pydicom.dataset import Dataset, FileMetaDataset

from xds.dicom.part10 import Part10Header
from xds.dicom.uids import DICOM_MIME
from xds.imaging.context import Content, ImagingSource
from xds.imaging.intake import index_entry
from xds.store import instances
from xds.store.db import write_transaction
from xds.soap.mtom import parse_content_type

__all__ = ["DicomwebArchive", "ArchiveError", "index_archive_study", "ARCHIVE_SYNTAX"]

log = logging.getLogger("xds.imaging.archive")

#: transfer_syntax_uid of an archive-held instance: the archive knows (QIDO does not say).
ARCHIVE_SYNTAX = ""
_CHUNK = 256 * 1024


class ArchiveError(RuntimeError):
    """The archive could not be reached or answered with an error."""


class DicomwebArchive:
    """A DICOMweb origin server at ``base_url`` (e.g. ``http://127.0.0.1:8042/dicom-web``);
    ``verify`` is httpx's (the client TLS context for an https archive)."""

    def __init__(self, base_url: str, timeout: float = 60.0,
                 verify: ssl.SSLContext | bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=16),
                                    verify=verify)

    def close(self) -> None:
        """Close the connections to the archive."""
        self._client.close()

    def study_metadata(self, study_uid: str) -> list[dict[str, Any]]:
        """WADO-RS study metadata (DICOM JSON, one object per instance); [] for an unknown study."""
        try:
            response = self._client.get(f"{self.base_url}/studies/{study_uid}/metadata",
                                        headers={"Accept": "application/dicom+json"})
        except httpx.HTTPError as exc:
            raise ArchiveError(f"archive {self.base_url} unreachable: {exc}") from exc
        if response.status_code in (204, 404):
            return []
        if response.status_code != 200:
            raise ArchiveError(f"archive answered {response.status_code} for study {study_uid}")
        data = response.json()
        return data if isinstance(data, list) else []

    def content(self, instance: instances.Instance, accepted: Sequence[str]) -> Content | None:
        """The instance as the archive sends it: stored syntax for ``*``, else the first accepted
        one (the archive transcodes); the size is not known in advance."""
        if not accepted or instance.archive_url is None:
            return None
        syntax = "*" if "*" in accepted else accepted[0]
        url = instance.archive_url

        def chunks() -> Iterator[bytes]:
            return self._instance_bytes(url, syntax)

        return Content(syntax, None, chunks)

    def _instance_bytes(self, url: str, syntax: str) -> Iterator[bytes]:
        accept = f'multipart/related; type="{DICOM_MIME}"; transfer-syntax={syntax}'
        with self._client.stream("GET", url, headers={"Accept": accept}) as response:
            if response.status_code != 200:
                raise ArchiveError(f"archive answered {response.status_code} for {url}")
            media, params = parse_content_type(response.headers.get("content-type", ""))
            if media == DICOM_MIME:
                yield from response.iter_bytes(_CHUNK)
                return
            boundary = params.get("boundary")
            if media != "multipart/related" or not boundary:
                raise ArchiveError(f"archive sent {media} for {url}")
            yield from first_part(response.iter_bytes(_CHUNK), boundary.encode("latin-1"))


def first_part(chunks: Iterator[bytes], boundary: bytes) -> Iterator[bytes]:
    """The body of the first part of a multipart stream, streamed (RFC 2046 framing)."""
    data = b""
    opener = b"--" + boundary
    for chunk in chunks:
        data += chunk
        start = data.find(opener)
        end = data.find(b"\r\n\r\n", start) if start >= 0 else -1
        if end >= 0:
            data = data[end + 4:]
            break
    else:
        raise ArchiveError("multipart answer without a complete part header")
    delimiter = b"\r\n--" + boundary
    keep = len(delimiter)
    while True:
        at = data.find(delimiter)
        if at >= 0:
            yield data[:at]
            return
        if len(data) > keep:
            yield data[:-keep]
            data = data[-keep:]
        more = next(chunks, None)
        if more is None:
            raise ArchiveError("multipart answer ended inside a part")
        data += more


def index_archive_study(source: ImagingSource, study_uid: str) -> int:
    """Index the instances the archive holds for ``study_uid``; how many it holds.

    Instances already indexed with the same place are unchanged (no new manifest is needed
    for them); new ones make the study due for publishing. Raises ArchiveError.
    """
    archive = source.archive
    if not isinstance(archive, DicomwebArchive):
        return 0
    found = archive.study_metadata(study_uid)
    entries = []
    for item in found:
        try:
            ds = Dataset.from_json({k: v for k, v in item.items() if k != "7FE00010"})
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("archive metadata not understood: %s", exc)
            continue
        header = Part10Header(file_meta=FileMetaDataset(), dataset=ds,
                              transfer_syntax_uid=ARCHIVE_SYNTAX, pixel_offset=None,
                              pixel_length=None, file_size=0)
        url = (f"{archive.base_url}/studies/{header.uid('StudyInstanceUID')}/series/"
               f"{header.uid('SeriesInstanceUID')}/instances/{header.uid('SOPInstanceUID')}")
        entries.append(index_entry(source, header, archive_url=url))
    with write_transaction(source.engine) as conn:
        for entry in entries:
            instances.upsert_instance(conn, entry)
    log.info("archive study %s: %d instances indexed", study_uid, len(entries))
    return len(entries)
