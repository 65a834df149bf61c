"""RAD-107 WADO-RS at the real server over HTTP: study, series and instance retrieve as
multipart/related (Accept negotiation, transfer syntaxes), metadata as DICOM JSON, 404 and 406
(DICOM PS3.18 §10.4)."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pydicom
import pytest
from sqlalchemy import Engine

from tests.imaging.retrieve_support import (
    JPEG_BASELINE, Stored, multipart_parts, store_jpeg_instance, store_study,
)
from xds.config import Settings
from xds.dicom.uids import EXPLICIT_LE, IMPLICIT_LE
from xds.imaging.dicomweb import retrieve_syntaxes

AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, engine: Engine, settings: Settings) -> Stored:
    return store_study(tmp_path_factory.mktemp("dicomweb"), engine, settings)


def url(server: str, stored: Stored, series: int | None = None, instance: int | None = None) -> str:
    out = f"{server}/dicomweb/studies/{stored.study.study_uid}"
    if series is not None:
        out += f"/series/{stored.series_uids[series]}"
        if instance is not None:
            out += f"/instances/{stored.sops(series)[instance]}"
    return out


def get(target: str, accept: str | None = None, method: str = "GET") -> httpx.Response:
    headers = {"Accept": accept} if accept is not None else {}
    return httpx.request(method, target, headers=headers, timeout=30)


def test_study_as_stored_has_every_instance_byte_identical(server: str, stored: Stored) -> None:
    response = get(url(server, stored), AS_STORED)
    assert response.status_code == 200, response.text
    params, parts = multipart_parts(response)
    assert params["type"] == "application/dicom"
    assert len(parts) == 6
    sops = stored.sops(0) + stored.sops(1)
    for sop, part in zip(sops, parts, strict=True):
        assert part.content_type == "application/dicom"
        assert part.params["transfer-syntax"] == EXPLICIT_LE
        assert part.data == stored.content[sop]
    assert int(response.headers["content-length"]) == len(response.content)


@pytest.mark.parametrize("accept", [
    None, "*/*", 'multipart/related; type="application/dicom"',
    "multipart/related; type=application/dicom",
    f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT_LE}'])
def test_series_default_is_explicit_le(server: str, stored: Stored, accept: str | None) -> None:
    response = get(url(server, stored, 1), accept)
    assert response.status_code == 200, response.text
    _, parts = multipart_parts(response)
    assert [p.data for p in parts] == [stored.content[s] for s in stored.sops(1)]
    assert {p.params["transfer-syntax"] for p in parts} == {EXPLICIT_LE}


def test_instance_in_implicit_le(server: str, stored: Stored) -> None:
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={IMPLICIT_LE}'
    response = get(url(server, stored, 0, 2), accept)
    assert response.status_code == 200, response.text
    (part,) = multipart_parts(response)[1]
    assert part.params["transfer-syntax"] == IMPLICIT_LE
    ds = pydicom.dcmread(io.BytesIO(part.data))
    original = pydicom.dcmread(io.BytesIO(stored.content[stored.sops(0)[2]]))
    assert ds.file_meta.TransferSyntaxUID == IMPLICIT_LE
    assert ds.PixelData == original.PixelData


def test_head_has_the_headers_and_no_body(server: str, stored: Stored) -> None:
    full = get(url(server, stored, 0, 0))
    head = get(url(server, stored, 0, 0), method="HEAD")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == full.headers["content-length"]
    assert head.headers["content-type"].startswith("multipart/related")


@pytest.mark.parametrize("accept", [
    "application/octet-stream", "image/jpeg", 'multipart/related; type="image/jpeg"',
    f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_BASELINE}',
    "multipart/related; type=application/dicom; q=0"])
def test_unsupported_accept_is_406(server: str, stored: Stored, accept: str) -> None:
    assert get(url(server, stored, 0), accept).status_code == 406


def test_compressed_instance_as_stored_only(tmp_path: Path, server: str, engine: Engine,
                                            settings: Settings) -> None:
    study, series, sop, data = store_jpeg_instance(tmp_path, engine, settings)
    target = f"{server}/dicomweb/studies/{study}/series/{series}/instances/{sop}"
    assert get(target).status_code == 406  # Explicit VR LE would need decompression
    (part,) = multipart_parts(get(target, AS_STORED))[1]
    assert part.data == data and part.params["transfer-syntax"] == JPEG_BASELINE


@pytest.mark.parametrize("path", [
    "/studies/1.2.3.4.5.6.7", "/studies/{study}/series/1.2.3.4", "/studies/{study}/series/"
    "{series1}/instances/{sop0}", "/studies/{study}/series/{series0}/instances/1.2.3",
    "/studies/1.2.3/metadata", "/studies/{study}/series/{series1}/instances/{sop0}/metadata"])
def test_unknown_or_misplaced_is_404(server: str, stored: Stored, path: str) -> None:
    target = server + "/dicomweb" + path.format(
        study=stored.study.study_uid, series0=stored.series_uids[0],
        series1=stored.series_uids[1], sop0=stored.sops(0)[0])
    assert get(target).status_code == 404


def test_study_metadata_is_dicom_json_without_pixels(server: str, stored: Stored) -> None:
    response = get(url(server, stored) + "/metadata", "application/dicom+json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/dicom+json")
    items = response.json()
    assert len(items) == 6
    assert [i["00080018"]["Value"][0] for i in items] == stored.sops(0) + stored.sops(1)
    for item in items:
        assert item["0020000D"] == {"vr": "UI", "Value": [stored.study.study_uid]}
        assert item["0020000E"]["Value"][0] in stored.series_uids
        assert item["00100020"]["Value"] == [stored.study.patient_id]
        assert "7FE00010" not in item
    # The JSON is pydicom-readable DICOM JSON.
    assert pydicom.Dataset.from_json(items[0]).Modality == "CT"


def test_series_and_instance_metadata(server: str, stored: Stored) -> None:
    series = get(url(server, stored, 1) + "/metadata").json()
    assert [i["00080018"]["Value"][0] for i in series] == stored.sops(1)
    (one,) = get(url(server, stored, 1, 1) + "/metadata", "application/json").json()
    assert one["00080018"]["Value"] == [stored.sops(1)[1]]
    assert get(url(server, stored, 1) + "/metadata", "application/dicom").status_code == 406


def test_accept_parsing() -> None:
    assert retrieve_syntaxes(None) == [EXPLICIT_LE]
    assert retrieve_syntaxes(
        f'multipart/related; type="application/dicom"; transfer-syntax={IMPLICIT_LE}; q=0.5, '
        'multipart/related; type="application/dicom"; transfer-syntax=*') == ["*", IMPLICIT_LE]
    assert retrieve_syntaxes("text/html, image/*") == []
