"""RAD-69 Retrieve Imaging Document Set at the real server over HTTP: instances streamed as MTOM
parts in a requested transfer syntax, per-document errors located by SOP Instance UID, malformed
requests, and every answer valid against the official XSD (RAD TF-3 §4.69)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import httpx
import pydicom
import pytest
from lxml import etree
from sqlalchemy import Engine

from tests import soapclient
from tests.imaging.retrieve_support import JPEG_BASELINE, Stored, store_jpeg_instance, store_study
from tests.repository.support import (
    ITI43_RESPONSE, Reply, assert_failure, assert_success, document_responses, reply_of,
)
from tests.xsd import SCHEMA_DIR
from xds.config import Settings
from xds.dicom.uids import EXPLICIT_LE, IMPLICIT_LE

RAD69 = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
NS_RAD = "urn:ihe:rad:xdsi-b:2009"
NS_XDS = "urn:ihe:iti:xds-b:2007"
HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.1"
_R = f"{{{NS_RAD}}}"
_X = f"{{{NS_XDS}}}"

#: (study UID, series UID, repositoryUniqueId, SOP Instance UID[, homeCommunityId])
Item = tuple[str, str, str, str] | tuple[str, str, str, str, str]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, engine: Engine, settings: Settings) -> Stored:
    return store_study(tmp_path_factory.mktemp("rad69"), engine, settings)


@cache
def _request_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(
        str(SCHEMA_DIR / "iti" / "schema" / "IHE" / "XDSI.b_ImagingDocumentSource.xsd")))


def rad69_request(items: Iterable[Item], syntaxes: Sequence[str] = (EXPLICIT_LE,)) -> etree._Element:
    """iherad:RetrieveImagingDocumentSetRequest grouping ``items`` by study and series."""
    root = etree.Element(_R + "RetrieveImagingDocumentSetRequest",
                         nsmap={"iherad": NS_RAD, "xdsb": NS_XDS})
    studies: dict[str, etree._Element] = {}
    series: dict[tuple[str, str], etree._Element] = {}
    for item in items:
        study_uid, series_uid, repository, sop = item[:4]
        if study_uid not in studies:
            studies[study_uid] = etree.SubElement(root, _R + "StudyRequest",
                                                  studyInstanceUID=study_uid)
        if (study_uid, series_uid) not in series:
            series[(study_uid, series_uid)] = etree.SubElement(
                studies[study_uid], _R + "SeriesRequest", seriesInstanceUID=series_uid)
        request = etree.SubElement(series[(study_uid, series_uid)], _X + "DocumentRequest")
        if len(item) == 5:
            etree.SubElement(request, _X + "HomeCommunityId").text = item[4]
        etree.SubElement(request, _X + "RepositoryUniqueId").text = repository
        etree.SubElement(request, _X + "DocumentUniqueId").text = sop
    syntax_list = etree.SubElement(root, _R + "TransferSyntaxUIDList")
    for ts in syntaxes:
        etree.SubElement(syntax_list, _R + "TransferSyntaxUID").text = ts
    return root


def send(server: str, body: etree._Element, *, action: str = RAD69,
         check_request: bool = True) -> Reply:
    """POST ``body`` as Simple SOAP to the Imaging Document Source; the schema-checked reply."""
    if check_request:
        _request_schema().assertValid(body)
    envelope = soapclient.envelope(action, body, message_id=f"urn:uuid:{uuid.uuid4()}")
    response = httpx.post(server + "/xds/imaging", content=envelope, timeout=60,
                          headers={"Content-Type": soapclient.CONTENT_TYPE})
    return reply_of(response)


def items_of(stored: Stored, settings: Settings, series_index: int) -> list[Item]:
    study, series = stored.study.study_uid, stored.series_uids[series_index]
    return [(study, series, settings.imaging_source_unique_id, sop)
            for sop in stored.sops(series_index)]


def test_whole_study_is_returned_byte_identical(server: str, settings: Settings,
                                                stored: Stored) -> None:
    first, second = items_of(stored, settings, 0), items_of(stored, settings, 1)
    with_home: Item = (*first[0], HOME)
    reply = send(server, rad69_request([with_home, *first[1:], *second]))
    assert_success(reply, ITI43_RESPONSE)
    got = document_responses(reply)
    assert [r.document_unique_id for r in got] == [i[3] for i in first + second]
    assert [r.home_community_id for r in got] == [HOME] + [None] * 5
    for r in got:
        assert r.repository_unique_id == settings.imaging_source_unique_id
        assert r.mime_type == r.part_type == "application/dicom"
        assert r.content == stored.content[r.document_unique_id]
    assert int(reply.http.headers["content-length"]) == len(reply.http.content)


def test_implicit_le_only_is_converted(server: str, settings: Settings, stored: Stored) -> None:
    reply = send(server, rad69_request(items_of(stored, settings, 1), [IMPLICIT_LE]))
    assert_success(reply, ITI43_RESPONSE)
    got = document_responses(reply)
    assert len(got) == 3
    for r in got:
        ds = pydicom.dcmread(io.BytesIO(r.content))
        original = pydicom.dcmread(io.BytesIO(stored.content[r.document_unique_id]))
        assert ds.file_meta.TransferSyntaxUID == IMPLICIT_LE
        assert ds.SOPInstanceUID == r.document_unique_id
        assert ds.PixelData == original.PixelData
        assert ds.PatientID == original.PatientID


def test_stored_syntax_is_preferred_wherever_it_is_listed(
        server: str, settings: Settings, stored: Stored) -> None:
    item = items_of(stored, settings, 0)[0]
    reply = send(server, rad69_request([item], [JPEG_BASELINE, IMPLICIT_LE, EXPLICIT_LE]))
    assert_success(reply, ITI43_RESPONSE)
    (got,) = document_responses(reply)
    assert got.content == stored.content[item[3]]


def test_unknown_instance_among_known_is_PartialSuccess(
        server: str, settings: Settings, stored: Stored) -> None:
    items = items_of(stored, settings, 0)
    unknown = f"{items[0][3]}.999"
    reply = send(server, rad69_request([items[0], (*items[0][:3], unknown), items[1]]))
    (error,) = assert_failure(reply, "XDSDocumentUniqueIdError", status=soapclient.PARTIAL_SUCCESS)
    assert error.location == unknown
    assert [r.document_unique_id for r in document_responses(reply)] == [items[0][3], items[1][3]]


@pytest.mark.parametrize("wrong", ["series", "study"])
def test_instance_requested_under_another_series_or_study_is_an_error(
        server: str, settings: Settings, stored: Stored, wrong: str) -> None:
    study, series0, series1 = stored.study.study_uid, *stored.series_uids
    sop = stored.sops(0)[0]
    repo = settings.imaging_source_unique_id
    misplaced: Item = (study, series1, repo, sop) if wrong == "series" else (
        "1.2.3.4.5.6.7", series0, repo, sop)
    reply = send(server, rad69_request([misplaced]))
    (error,) = assert_failure(reply, "XDSDocumentUniqueIdError")
    assert error.location == sop
    assert document_responses(reply) == []
    mixed = send(server, rad69_request([misplaced, items_of(stored, settings, 1)[0]]))
    (error,) = assert_failure(mixed, "XDSDocumentUniqueIdError", status=soapclient.PARTIAL_SUCCESS)
    assert error.location == sop


def test_another_repository_unique_id_is_XDSUnknownRepositoryId(
        server: str, settings: Settings, stored: Stored) -> None:
    good, other = items_of(stored, settings, 0)[:2]
    reply = send(server, rad69_request([good, (*other[:2], "1.2.3.4.5.99", other[3])]))
    (error,) = assert_failure(reply, "XDSUnknownRepositoryId", status=soapclient.PARTIAL_SUCCESS)
    assert error.location == other[3]
    assert [r.document_unique_id for r in document_responses(reply)] == [good[3]]


def test_only_an_unproducible_syntax_is_XDSRepositoryError(
        server: str, settings: Settings, stored: Stored) -> None:
    items = items_of(stored, settings, 0)[:2]
    reply = send(server, rad69_request(items, [JPEG_BASELINE]))
    errors = assert_failure(reply, "XDSRepositoryError")
    assert [e.location for e in errors] == [i[3] for i in items]
    assert "transfer syntax" in (errors[0].codeContext or "")
    assert reply.parts == {}


def test_a_compressed_instance_is_sent_as_stored_or_not_at_all(
        tmp_path: Path, server: str, engine: Engine, settings: Settings) -> None:
    study, series, sop, data = store_jpeg_instance(tmp_path, engine, settings)
    item: Item = (study, series, settings.imaging_source_unique_id, sop)
    reply = send(server, rad69_request([item], [EXPLICIT_LE, JPEG_BASELINE]))
    assert_success(reply, ITI43_RESPONSE)
    assert document_responses(reply)[0].content == data
    # This source does not decompress: Explicit VR LE alone cannot be produced.
    (error,) = assert_failure(send(server, rad69_request([item], [EXPLICIT_LE])),
                              "XDSRepositoryError")
    assert error.location == sop


def test_empty_transfer_syntax_list_fails_every_document(
        server: str, settings: Settings, stored: Stored) -> None:
    items = items_of(stored, settings, 0)[:2]
    reply = send(server, rad69_request(items, [""]))
    errors = assert_failure(reply, "XDSRepositoryError")
    assert [e.location for e in errors] == [i[3] for i in items]


def _malformed(case: str, stored: Stored, settings: Settings) -> etree._Element:
    body = rad69_request(items_of(stored, settings, 0)[:1])
    study = body.find(_R + "StudyRequest")
    assert study is not None
    series = study.find(_R + "SeriesRequest")
    assert series is not None
    if case == "empty studyInstanceUID":
        study.set("studyInstanceUID", "")
    elif case == "empty seriesInstanceUID":
        series.set("seriesInstanceUID", " ")
    elif case == "no TransferSyntaxUIDList":
        body.remove(body[-1])
    elif case == "no DocumentRequest":
        series.remove(series[0])
    elif case == "no DocumentUniqueId":
        request = series[0]
        request.remove(request[-1])
    elif case == "no StudyRequest":
        body.remove(study)
    return body


@pytest.mark.parametrize("case", [
    "empty studyInstanceUID", "empty seriesInstanceUID", "no TransferSyntaxUIDList",
    "no DocumentRequest", "no DocumentUniqueId", "no StudyRequest"])
def test_malformed_request_is_Failure(server: str, settings: Settings, stored: Stored,
                                      case: str) -> None:
    reply = send(server, _malformed(case, stored, settings), check_request=False)
    (error,) = assert_failure(reply, "XDSRepositoryError")
    assert error.location in ("", None)
    assert reply.parts == {}


def test_iti43_body_under_the_rad69_action_is_Failure(server: str, settings: Settings,
                                                      stored: Stored) -> None:
    body = etree.fromstring(
        f'<xds:RetrieveDocumentSetRequest xmlns:xds="{NS_XDS}"><xds:DocumentRequest>'
        f'<xds:RepositoryUniqueId>{settings.imaging_source_unique_id}</xds:RepositoryUniqueId>'
        f'<xds:DocumentUniqueId>{stored.sops(0)[0]}</xds:DocumentUniqueId>'
        '</xds:DocumentRequest></xds:RetrieveDocumentSetRequest>')
    assert_failure(send(server, body, check_request=False), "XDSRepositoryError")


def test_another_action_is_a_soap_fault(server: str, settings: Settings, stored: Stored) -> None:
    envelope = soapclient.envelope("urn:ihe:iti:2007:RetrieveDocumentSet",
                                   rad69_request(items_of(stored, settings, 0)[:1]))
    response = soapclient.post_raw(server + "/xds/imaging", envelope)
    assert response.status_code >= 400
    fault = soapclient.body_of(soapclient.parse_envelope(response.content))
    assert fault.tag == f"{{{soapclient.NS_SOAP}}}Fault"
    assert b"ActionNotSupported" in response.content
