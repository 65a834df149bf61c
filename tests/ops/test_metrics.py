"""/metrics over real HTTP: requests counted by IHE transaction and outcome (SOAP from the
answer, REST from the path and status), bytes both ways, the outbox and pool gauges; and the
labelling functions on their own."""

from __future__ import annotations

import os
from collections.abc import Callable

import httpx
import pytest
from lxml import etree
from sqlalchemy import Engine, func, select

from tests import samples, soapclient
from tests.ops.support import samples_of, total
from tests.repository.support import Doc, assert_failure, assert_success, provide
from xds.ebrim.response import registry_response
from xds.model.errors import ErrorCode, RegistryError
from xds.ops.metrics import path_transaction, soap_outcome
from xds.store.tables import audit_outbox

NewPatient = Callable[..., str]
REQUESTS = "xds_requests_total"


def _find_documents(registry_url: str, pid: str) -> etree._Element:
    request = samples.stored_query("FindDocuments", {
        "$XDSDocumentEntryPatientId": samples.quoted(pid),
        "$XDSDocumentEntryStatus": samples.quoted_list([samples.APPROVED])})
    response, body = soapclient.post(registry_url, soapclient.ITI18, request)
    assert response.status_code == 200
    return body


def test_iti41_and_iti18_are_counted_with_their_outcome_and_bytes(
        server: str, registry_url: str, new_patient: NewPatient) -> None:
    before = {name: samples_of(server, name) for name in (
        REQUESTS, "xds_http_bytes_received_total", "xds_http_bytes_sent_total",
        "xds_request_seconds_count")}
    pid = new_patient()
    content = os.urandom(30_000)
    assert_success(provide(server, pid, [Doc(content, "application/octet-stream")]))
    assert_failure(provide(server, samples.new_patient_id(), [Doc(b"unknown patient")]),
                   "XDSUnknownPatientId")
    assert soapclient.status(_find_documents(registry_url, pid)) == soapclient.SUCCESS

    requests = samples_of(server, REQUESTS)

    def delta(name: str, **labels: str) -> float:
        now = requests if name == REQUESTS else samples_of(server, name)
        return total(now, **labels) - total(before[name], **labels)

    assert delta(REQUESTS, transaction="ITI-41", outcome="success") == 1
    assert delta(REQUESTS, transaction="ITI-41", outcome="failure") == 1
    assert delta(REQUESTS, transaction="ITI-18", outcome="success") == 1
    # ITI-42 went from the repository to the registry in-process: no HTTP request.
    assert delta(REQUESTS, transaction="ITI-42") == 0
    assert delta("xds_http_bytes_received_total", transaction="ITI-41") > len(content)
    assert delta("xds_http_bytes_sent_total", transaction="ITI-41") > 0
    assert delta("xds_http_bytes_received_total", transaction="ITI-18") > 0
    assert delta("xds_http_bytes_sent_total", transaction="ITI-18") > 0
    assert delta("xds_request_seconds_count", transaction="ITI-41") == 2


def test_a_soap_fault_and_an_unknown_action_count_as_other_fault(server: str,
                                                                   registry_url: str) -> None:
    before = samples_of(server, REQUESTS)
    response, body = soapclient.post(registry_url, "urn:example:NoSuchAction",
                                     samples.stored_query("FindDocuments", {}))
    assert body.tag == f"{{{soapclient.NS_SOAP}}}Fault"
    after = samples_of(server, REQUESTS)
    assert total(after, transaction="other", outcome="fault") - \
        total(before, transaction="other", outcome="fault") == 1
    assert not any(value for labels, value in after.items()
                   if dict(labels)["transaction"] == "urn:example:NoSuchAction")


def test_fhir_requests_are_labelled_by_resource_and_status(server: str) -> None:
    before = samples_of(server, REQUESTS)
    search = {"patient.identifier": "urn:oid:1.3.6.1.4.1.21367.13.20.1000|nobody"}
    assert httpx.get(server + "/fhir/DocumentReference",
                     params={**search, "status": "current"}).status_code == 200
    assert httpx.get(server + "/fhir/DocumentReference", params=search).status_code == 400
    assert httpx.get(server + "/fhir/NoSuchType/id-7731").status_code == 404
    assert httpx.get(server + "/fhir/metadata").status_code == 200
    after = samples_of(server, REQUESTS)
    for transaction, outcome in (("ITI-67", "success"), ("ITI-67", "4xx"), ("FHIR", "4xx"),
                                 ("FHIR", "success")):
        assert total(after, transaction=transaction, outcome=outcome) - \
            total(before, transaction=transaction, outcome=outcome) == 1, (transaction, outcome)
    # No label holds a raw path or resource id.
    assert not any("NoSuchType" in dict(labels)["transaction"] or "7731" in dict(labels)["transaction"]
                   for labels in after)


def test_probes_and_scrapes_are_not_counted(server: str) -> None:
    before = total(samples_of(server, REQUESTS))
    for path in ("/healthz", "/readyz", "/metrics"):
        httpx.get(server + path, timeout=10)
    assert total(samples_of(server, REQUESTS)) == before


def test_outbox_depth_and_pool_gauges_are_computed_when_scraped(server: str,
                                                                engine: Engine) -> None:
    depth = samples_of(server, "xds_audit_outbox_depth")
    with engine.connect() as conn:
        unsent = conn.execute(select(func.count()).select_from(audit_outbox)
                              .where(audit_outbox.c.sent.is_(None))).scalar_one()
    # Nothing delivers (no audit_url): the depth is the number of unsent rows, which only
    # grows between the scrape and the count.
    assert 0 < depth[()] <= unsent
    assert samples_of(server, "xds_db_pool_size")[()] > 0
    assert samples_of(server, "xds_db_pool_checked_out")[()] >= 0


def _response(status: str) -> etree._Element:
    return registry_response([RegistryError(code=ErrorCode.XDSRegistryError, context="x")]) \
        if status == "failure" else registry_response([])


@pytest.mark.parametrize(("xml", "outcome"), [
    (b'<rs:RegistryResponse xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" status='
     b'"urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"/>', "partial"),
    (b'<x:RetrieveDocumentSetResponse xmlns:x="urn:ihe:iti:xds-b:2007"><rs:RegistryResponse '
     b'xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" status="urn:oasis:names:tc:'
     b'ebxml-regrep:ResponseStatusType:Failure"/></x:RetrieveDocumentSetResponse>', "failure"),
    (b'<MCCI_IN000002UV01 xmlns="urn:hl7-org:v3"><acknowledgement><typeCode code="AA"/>'
     b'</acknowledgement></MCCI_IN000002UV01>', "success"),
    (b'<PRPA_IN201310UV02 xmlns="urn:hl7-org:v3"><acknowledgement><typeCode code="AE"/>'
     b'</acknowledgement></PRPA_IN201310UV02>', "failure"),
])
def test_soap_outcome_reads_ebrs_status_and_hl7v3_acknowledgements(xml: bytes,
                                                                     outcome: str) -> None:
    assert soap_outcome(etree.fromstring(xml)) == outcome


def test_soap_outcome_of_registry_responses_and_faults() -> None:
    assert soap_outcome(_response("success")) == "success"
    assert soap_outcome(_response("failure")) == "failure"
    assert soap_outcome(None) == "fault"


@pytest.mark.parametrize(("method", "path", "label"), [
    ("POST", "/fhir", "ITI-65"),
    ("POST", "/fhir/", "ITI-65"),
    ("GET", "/fhir/Patient/$ihe-pix", "ITI-83"),
    ("GET", "/fhir/Patient/abc", "ITI-78"),
    ("GET", "/fhir/Binary/1.2.3", "ITI-68"),
    ("GET", "/fhir/List", "ITI-66"),
    ("GET", "/fhir/ImagingStudy/1.2", "FHIR ImagingStudy"),
    ("GET", "/fhir/Observation", "FHIR"),
    ("GET", "/fhirx", "other"),
    ("GET", "/wado", "WADO"),
    ("GET", "/dicomweb/studies/1.2/series", "DICOMweb"),
    ("GET", "/dicomwebby", "other"),
    ("GET", "/wsdl/iti/wsdl/XDS.b_DocumentRegistry.wsdl", "other"),
])
def test_path_transaction_labels_by_mount_and_resource_never_by_raw_path(
        method: str, path: str, label: str) -> None:
    prefixes = {"/wado": "WADO", "/dicomweb": "DICOMweb"}
    assert path_transaction(method, path, "/fhir", prefixes) == label
