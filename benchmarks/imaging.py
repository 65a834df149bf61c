"""Imaging benchmark: this Imaging Document Source against Orthanc, same files, same machine, one run.

    python benchmarks/imaging.py [--instances 400] [--rows 512] [--repeat 3]

1. C-STORE ingest: dcmtk ``storescu`` sends the same generated CT study (one association) to
   ``xds serve``'s SCP and to Orthanc's; instances/s for each.
2. Whole-study retrieve: RAD-69 (MTOM) and WADO-RS from this server, WADO-RS from Orthanc
   (``transfer-syntax=*``, the stored bytes), each downloaded by curl (a C client, so the
   servers are measured, not a Python client); MB/s of the answer, best of ``--repeat``. The
   Imaging Document Consumer writing the RAD-69 instances to files is reported beside it.

Both servers run on loopback with fresh storage in a temporary directory (Orthanc from the
Debian packages ``orthanc`` and ``orthanc-dicomweb``). The figures are ratios within one run;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.imaging.dcmtk import dcmtk  # noqa: E402
from tests.imaging.dicomgen import make_study  # noqa: E402
from tests.imaging.orthanc import running_orthanc  # noqa: E402
from xds.clients.imaging import retrieve_imaging_request, retrieve_instances  # noqa: E402

SOURCE_UID = "1.3.6.1.4.1.21367.13.80.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def xds_server(work: Path) -> Iterator[tuple[str, int]]:
    port, dicom = free_port(), free_port()
    env = dict(os.environ, XDS_DATA_DIR=str(work / "xds-data"), XDS_PORT=str(port),
               XDS_DICOM_PORT=str(dicom), XDS_MLLP_PORT="0", XDS_LOG_LEVEL="warning")
    proc = subprocess.Popen([sys.executable, "-m", "xds", "serve"], env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/xds/registry?wsdl")
        yield f"http://127.0.0.1:{port}", dicom
    finally:
        proc.terminate()
        proc.wait(20)


def storescu(aet: str, port: int, files: list[Path]) -> float:
    start = time.perf_counter()
    subprocess.run([dcmtk("storescu"), "-aec", aet, "127.0.0.1", str(port), *map(str, files)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def curl(url: str, *options: str) -> tuple[float, int]:
    """(seconds, bytes) of one download by curl: a C client, so the server is what is measured."""
    out = subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
                          *options, url], check=True, capture_output=True, text=True).stdout
    seconds, size = out.split()
    return float(seconds), int(size)


def wado_rs(url: str) -> tuple[float, int]:
    return curl(url, "-H", 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*')


def rad69_raw(url: str, refs: list[tuple[str, str, str]], work: Path) -> tuple[float, int]:
    """The RAD-69 answer downloaded by curl (the server's figure, like ``wado_rs``)."""
    series: dict[str, dict[str, list[str]]] = {}
    for study, se, sop in refs:
        series.setdefault(study, {}).setdefault(se, []).append(sop)
    envelope = work / "rad69.xml"
    envelope.write_bytes(retrieve_imaging_request(url, SOURCE_UID, series, ["1.2.840.10008.1.2.1"]))
    return curl(url, "-X", "POST", "--data-binary", f"@{envelope}",
                "-H", "Content-Type: application/soap+xml; charset=UTF-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xds-bench-img-") as tmp:
        work = Path(tmp)
        study = make_study(work / "study", modalities=("CT",), per_series=args.instances,
                           rows=args.rows, columns=args.rows)
        total = sum(f.stat().st_size for f in study.files)
        print(f"study: {len(study.files)} CT instances, {total / 1e6:.1f} MB")
        with xds_server(work) as (base, dicom), running_orthanc(work) as pacs:
            obase, odicom = pacs.http_url, pacs.dicom_port
            ours = storescu("XDS_IDS", dicom, study.files)
            theirs = storescu("ORTHANC", odicom, study.files)
            n = len(study.files)
            print(f"C-STORE ingest: xds {n / ours:.0f} inst/s, Orthanc {n / theirs:.0f} inst/s, "
                  f"ratio {theirs / ours:.2f}x")
            refs = [(study.study_uid, series, sop)
                    for series, (_, sops) in study.series.items() for sop in sops]
            rad69 = []
            for i in range(args.repeat):
                out = work / f"rad69-{i}"
                start = time.perf_counter()
                answer = retrieve_instances(base + "/xds/imaging", SOURCE_UID, refs, out,
                                            transfer_syntaxes=["1.2.840.10008.1.2.1"])
                rad69.append(time.perf_counter() - start)
                assert len(answer.documents) == n, answer.errors
                shutil.rmtree(out)
            raw = [rad69_raw(base + "/xds/imaging", refs, work) for _ in range(args.repeat)]
            ours_rs = [wado_rs(f"{base}/dicomweb/studies/{study.study_uid}")
                       for _ in range(args.repeat)]
            theirs_rs = [wado_rs(f"{obase}/dicom-web/studies/{study.study_uid}")
                         for _ in range(args.repeat)]
            mb = total / 1e6
            best_rad69 = mb / min(rad69)
            best_raw = max(s / t for t, s in raw) / 1e6
            best_ours = max(s / t for t, s in ours_rs) / 1e6
            best_theirs = max(s / t for t, s in theirs_rs) / 1e6
            print(f"retrieve, best of {args.repeat}: xds RAD-69 {best_raw:.0f} MB/s "
                  f"(consumer writing files: {best_rad69:.0f} MB/s), xds WADO-RS {best_ours:.0f} "
                  f"MB/s, Orthanc WADO-RS {best_theirs:.0f} MB/s")
            print(f"ratios vs Orthanc WADO-RS: RAD-69 {best_raw / best_theirs:.2f}x, "
                  f"WADO-RS {best_ours / best_theirs:.2f}x")


if __name__ == "__main__":
    main()
