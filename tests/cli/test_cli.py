"""The ``xds`` CLI: serve configured from XDS_* variables, patient add, query (zeep consumer)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests import samples, soapclient
from tests.server import free_port
from xds.cli import app
from xds.config import Settings

runner = CliRunner()


def _store_options(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]


def test_serve_reads_port_and_data_dir_from_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDS_")}
    env |= {"XDS_PORT": str(port), "XDS_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "xds", "serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wsdl = None
        for _ in range(200):
            try:
                wsdl = httpx.get(f"http://127.0.0.1:{port}/xds/registry?wsdl", timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        assert wsdl is not None and wsdl.status_code == 200, proc.stdout.read() if proc.stdout else ""
        assert f"http://127.0.0.1:{port}/xds/registry" in wsdl.text
        assert (tmp_path / "data" / "registry.sqlite").exists()
    finally:
        proc.terminate()
        proc.wait(10)


def test_patient_add_makes_submissions_for_that_patient_succeed(
    registry_url: str, settings: Settings
) -> None:
    pid = samples.new_patient_id(settings.affinity_domain)
    _, before = soapclient.post(registry_url, soapclient.ITI42,
                                samples.single_document_submission(pid))
    assert soapclient.error_codes(before) == ["XDSUnknownPatientId"]

    result = runner.invoke(app, ["patient", "add", pid, *_store_options(settings)])
    assert result.exit_code == 0, result.output
    assert "added" in result.output
    again = runner.invoke(app, ["patient", "add", pid, *_store_options(settings)])
    assert again.exit_code == 0 and "already known" in again.output

    _, after = soapclient.post(registry_url, soapclient.ITI42,
                               samples.single_document_submission(pid))
    assert soapclient.status(after) == soapclient.SUCCESS


@pytest.mark.parametrize("bad", [
    "12345",  # not a CX
    "12345^^^&1.2.3.4&ISO",  # another assigning authority than the affinity domain
    "12345^^^&1.3.6.1.4.1.21367.13.20.1000&L",  # universal id type must be ISO
])
def test_patient_add_refuses_ids_outside_the_affinity_domain(settings: Settings, bad: str) -> None:
    result = runner.invoke(app, ["patient", "add", bad, *_store_options(settings)])
    assert result.exit_code == 2
    assert "error" in result.output


def test_query_find_documents_lists_the_patients_documents(
    registry_url: str, new_patient: object
) -> None:
    pid = new_patient()  # type: ignore[operator]
    request = samples.single_document_submission(pid, title="Chest X-ray report")
    _, reply = soapclient.post(registry_url, soapclient.ITI42, request)
    assert soapclient.status(reply) == soapclient.SUCCESS
    identifier = request.find(
        f".//{{{samples.NS_RIM}}}ExternalIdentifier[@identificationScheme='{samples.DE.uniqueId}']")
    assert identifier is not None
    unique_id = identifier.get("value") or ""

    result = runner.invoke(app, ["query", "find-documents", pid, "--url", registry_url],
                           terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "Success" in result.output
    assert unique_id in result.output
    assert "Chest X-ray report" in result.output

    as_xml = runner.invoke(app, ["query", "find-documents", pid, "--url", registry_url, "--xml"])
    assert as_xml.exit_code == 0
    assert as_xml.output.count("<rim:ExtrinsicObject") == 1

    other = runner.invoke(app, ["query", "find-documents", samples.new_patient_id(),
                                "--url", registry_url, "--xml"])
    assert other.exit_code == 0
    assert "<rim:ExtrinsicObject" not in other.output


def test_query_run_reports_registry_errors_and_exits_nonzero(registry_url: str) -> None:
    # FindDocuments without its required $XDSDocumentEntryStatus parameter.
    result = runner.invoke(app, ["query", "run", "FindDocuments", "--url", registry_url, "-p",
                                 "$XDSDocumentEntryPatientId='1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'"],
                           terminal_width=250)
    assert result.exit_code == 1
    assert "XDSStoredQueryMissingParam" in result.output


def test_query_run_unknown_query_name_is_a_usage_error() -> None:
    result = runner.invoke(app, ["query", "run", "FindEverything"])
    assert result.exit_code == 2
    assert "unknown stored query" in result.output
