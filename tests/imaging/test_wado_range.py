"""HTTP Range on WADO-URI (RFC 9110 §14): an instance sent as stored is answered 206 with just
the asked bytes, read from the blob store as that range (filesystem or S3), 416 past its end;
converted content and multi-range requests get the whole body (200)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.imaging.retrieve_support import store_jpeg_instance
from xds.config import Settings
from xds.dicom.uids import EXPLICIT_LE


@pytest.fixture(scope="module")
def jpeg(tmp_path_factory: pytest.TempPathFactory, engine: Engine,
         settings: Settings) -> tuple[dict[str, str], bytes]:
    study, series, sop, data = store_jpeg_instance(tmp_path_factory.mktemp("range"), engine,
                                                   settings)
    return {"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop}, data


def _get(server: str, query: dict[str, str], method: str = "GET", **headers: str) -> httpx.Response:
    return httpx.request(method, server + "/wado", params=query, timeout=30,
                         headers={k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize(("header", "part"), [
    ("bytes=0-99", slice(0, 100)),
    ("bytes=100-", slice(100, None)),
    ("bytes=-50", slice(-50, None)),
    ("bytes=10-10", slice(10, 11)),
    ("bytes=5-999999", slice(5, None)),  # a last byte past the end is clipped
])
def test_a_range_is_answered_206_with_exactly_those_bytes(
        server: str, jpeg: tuple[dict[str, str], bytes], header: str, part: slice) -> None:
    query, data = jpeg
    response = _get(server, query, Range=header)
    assert response.status_code == 206, response.text
    assert response.content == data[part]
    first = range(len(data))[part][0]
    assert response.headers["content-range"] == \
        f"bytes {first}-{first + len(data[part]) - 1}/{len(data)}"
    assert int(response.headers["content-length"]) == len(data[part])
    assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["content-type"] == "application/dicom"


def test_whole_instance_advertises_ranges(server: str, jpeg: tuple[dict[str, str], bytes]) -> None:
    query, data = jpeg
    response = _get(server, query)
    assert response.status_code == 200 and response.content == data
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes=999999-", "bytes=-0"])
def test_a_range_past_the_end_is_416(server: str, jpeg: tuple[dict[str, str], bytes],
                                     header: str) -> None:
    query, data = jpeg
    response = _get(server, query, Range=header)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"
    assert response.content == b""


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=9-3", "items=0-5", "bytes=x-y"])
def test_several_or_malformed_ranges_get_the_whole_instance(
        server: str, jpeg: tuple[dict[str, str], bytes], header: str) -> None:
    query, data = jpeg
    response = _get(server, query, Range=header)
    assert response.status_code == 200
    assert response.content == data


def test_if_range_resumes_only_the_same_bytes(server: str,
                                              jpeg: tuple[dict[str, str], bytes]) -> None:
    query, data = jpeg
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    same = _get(server, query, Range="bytes=20-", If_Range=etag)
    assert same.status_code == 206 and same.content == data[20:]
    other = _get(server, query, Range="bytes=20-", If_Range='"0000"')
    assert other.status_code == 200 and other.content == data


def test_head_with_a_range_gives_the_206_headers_without_a_body(
        server: str, jpeg: tuple[dict[str, str], bytes]) -> None:
    query, data = jpeg
    response = _get(server, query, "HEAD", Range="bytes=0-9")
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-9/{len(data)}"
    assert response.headers["content-length"] == "10"
    assert response.content == b""


def test_converted_content_ignores_range(server: str, tmp_path: Path, engine: Engine,
                                         settings: Settings) -> None:
    from tests.imaging.retrieve_support import store_study

    stored = store_study(tmp_path, engine, settings)
    sop = stored.sops(0)[0]
    query = {"requestType": "WADO", "studyUID": stored.study.study_uid,
             "seriesUID": stored.series_uids[0], "objectUID": sop}
    as_stored = _get(server, {**query, "transferSyntax": EXPLICIT_LE}, Range="bytes=0-9")
    assert as_stored.status_code == 206 and as_stored.content == stored.content[sop][:10]
    converted = _get(server, {**query, "transferSyntax": "1.2.840.10008.1.2"}, Range="bytes=0-9")
    assert converted.status_code == 200
    assert len(converted.content) > 10 and "accept-ranges" not in converted.headers
