"""Helpers of the imaging retrieve tests (RAD-69, WADO-URI, WADO-RS): a study stored in the
Imaging Document Source in-process, an instance with encapsulated (JPEG) pixel data, and a small
multipart/related reader."""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydicom.encaps import encapsulate
from pydicom.uid import generate_uid
from sqlalchemy import Engine

from tests.imaging.dicomgen import UID_ROOT, GeneratedStudy, make_instance, make_study
from xds.app import imaging_source
from xds.config import Settings
from xds.imaging.intake import store_file

__all__ = ["JPEG_BASELINE", "Stored", "store_study", "store_jpeg_instance", "multipart_parts"]

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


@dataclass(slots=True)
class Stored:
    """A study stored in the source: the generated study and each instance's Part-10 bytes."""

    study: GeneratedStudy
    content: dict[str, bytes]

    @property
    def series_uids(self) -> list[str]:
        return list(self.study.series)

    def sops(self, series_index: int) -> list[str]:
        """The SOP Instance UIDs of the ``series_index``-th series."""
        return self.study.series[self.series_uids[series_index]][1]


def store_study(out_dir: Path, engine: Engine, settings: Settings) -> Stored:
    """Two series (CT, MR) of three Explicit VR LE instances, stored through ``store_file``."""
    study = make_study(out_dir, modalities=("CT", "MR"), per_series=3)
    source = imaging_source(engine, settings)
    content = {}
    for path in study.files:
        instance = store_file(source, path)
        content[instance.sop_instance_uid] = path.read_bytes()
    return Stored(study, content)


def store_jpeg_instance(out_dir: Path, engine: Engine, settings: Settings) -> tuple[str, str, str,
                                                                                       bytes]:
    """One instance stored with JPEG Baseline (encapsulated, fake frame bytes) in a study of its
    own: (study UID, series UID, SOP Instance UID, Part-10 bytes)."""
    study_uid, series_uid = generate_uid(prefix=UID_ROOT), generate_uid(prefix=UID_ROOT)
    ds = make_instance(study_uid=study_uid, series_uid=series_uid, modality="CT", number=1,
                       patient_id="DEPTJPEG1", accession="ACCJPEG", rows=8, columns=8,
                       transfer_syntax=JPEG_BASELINE)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes(range(60)) + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    store_file(imaging_source(engine, settings), path)
    return study_uid, series_uid, str(ds.SOPInstanceUID), path.read_bytes()


@dataclass(slots=True)
class MimePart:
    """One part of a multipart/related answer."""

    content_type: str
    params: dict[str, str]
    data: bytes


def multipart_parts(response: httpx.Response) -> tuple[dict[str, str], list[MimePart]]:
    """The top-level Content-Type parameters and the parts of a multipart/related answer,
    read with the stdlib MIME parser."""
    content_type = response.headers["content-type"]
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + response.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.get_content_type() == "multipart/related", content_type
    params = {k.lower(): str(v) for k, v in message.get_params() or []}
    parts = []
    for part in message.iter_parts():
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        part_params = {k.lower(): str(v) for k, v in (part.get_params() or [])[1:]}
        parts.append(MimePart(part.get_content_type(), part_params, data))
    return params, parts
