"""A real Orthanc PACS (Debian packages ``orthanc``, ``orthanc-dicomweb``) on loopback, for tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.server import free_port

__all__ = ["Orthanc", "running_orthanc", "ORTHANC_PLUGIN"]

ORTHANC_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


@dataclass(frozen=True, slots=True)
class Orthanc:
    """Where the test Orthanc listens."""

    http_url: str
    dicom_port: int
    ae_title: str = "ORTHANC"

    @property
    def dicomweb_url(self) -> str:
        return self.http_url + "/dicom-web"


@contextmanager
def running_orthanc(work: Path) -> Iterator[Orthanc]:
    """Orthanc with the DICOMweb plugin and fresh storage under ``work``, until the block ends."""
    if shutil.which("Orthanc") is None or not Path(ORTHANC_PLUGIN).exists():
        raise RuntimeError("Orthanc and its DICOMweb plugin are needed: "
                           "apt install orthanc orthanc-dicomweb (.ci/run does)")
    port, dicom = free_port(), free_port()
    storage = work / "orthanc-db"
    config = work / "orthanc.json"
    config.write_text(json.dumps({
        "Name": "xds-tests", "HttpPort": port, "DicomPort": dicom, "DicomAet": "ORTHANC",
        "StorageDirectory": str(storage), "IndexDirectory": str(storage),
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "Plugins": [ORTHANC_PLUGIN], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}))
    log = (work / "orthanc.log").open("wb")
    proc = subprocess.Popen(["Orthanc", str(config)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/system", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Orthanc did not start: " + (work / "orthanc.log").read_text())
            time.sleep(0.2)
        yield Orthanc(url, dicom)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
