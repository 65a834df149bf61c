"""Repository benchmark (not a test): ITI-41 then ITI-43 of generated documents over loopback.

    python benchmarks/repository.py                 # 10 MB, 100 MB and 1 GB documents
    python benchmarks/repository.py --sizes 10,100  # MB

For each size a fresh ``xds serve`` process (SQLite + a folder in a temp dir) receives the
document as MTOM (ITI-41, streamed from disk by the client) and sends it back (ITI-43). Prints
MB/s both ways next to the floor measured in the same run (``cat`` of the file to /dev/null), and
the server's peak RSS (VmHWM) per size. Targets: >= 50% of the floor; peak RSS <= 150 MB, flat.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import samples, soapclient  # noqa: E402  (the tests' independent ebRIM client)
from tests.server import free_port  # noqa: E402
from xds.actions import Action  # noqa: E402
from xds.config import Settings  # noqa: E402
from xds.ebrim.vocabulary import NS_XDS  # noqa: E402
from xds.soap import encode_mtom, file_attachment, xop_include  # noqa: E402
from xds.store.db import migrate, open_engine  # noqa: E402
from xds.store.patients import add_patient  # noqa: E402

MB = 1024 * 1024
_XDS = f"{{{NS_XDS}}}"


def make_file(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes to ``path`` in 1 MiB blocks; their SHA-256."""
    block = os.urandom(MB)
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for i in range(size // MB):
            chunk = block[i % 251:] + block[: i % 251]  # each block differs, none compresses
            f.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def floor_mb_s(path: Path) -> float:
    """MB/s of ``cat path > /dev/null`` (file already in the page cache)."""
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
    t0 = time.perf_counter()
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
    return path.stat().st_size / MB / (time.perf_counter() - t0)


def fsync_floor_mb_s(path: Path, scratch: Path) -> float:
    """MB/s of copying ``path`` to a new file and fsyncing it: what a durable store can do
    at best on this disk, the other floor an upload is bound by."""
    t0 = time.perf_counter()
    with path.open("rb") as src, scratch.open("wb") as dst:
        while chunk := src.read(MB):
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    elapsed = time.perf_counter() - t0
    scratch.unlink()
    return path.stat().st_size / MB / elapsed


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ, XDS_LOG_LEVEL="warning")
    proc = subprocess.Popen([sys.executable, "-m", "xds", "serve", "--port", str(port),
                             "--data-dir", str(data_dir)], env=env, stdout=subprocess.DEVNULL)
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/xds/repository?wsdl")
            if conn.getresponse().status == 200:
                return proc, f"http://127.0.0.1:{port}/xds/repository"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("xds serve did not start")


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of process ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def provide(url: str, pid: str, path: Path) -> tuple[float, str]:
    """ITI-41 of ``path`` as one MTOM attachment streamed from disk; (seconds, uniqueId)."""
    request = samples.single_document_submission(
        pid, mime_type="application/octet-stream", repository_unique_id=None)
    for slot in list(request.iter(f"{{{samples.NS_RIM}}}Slot")):
        if slot.get("name") in ("hash", "size"):  # the repository computes them
            slot.getparent().remove(slot)
    unique_id = next(ei.get("value") or "" for ei in request.iter(f"{{{samples.NS_RIM}}}ExternalIdentifier")
                     if ei.get("identificationScheme") == samples.DE.uniqueId)
    pnr = etree.Element(_XDS + "ProvideAndRegisterDocumentSetRequest", nsmap={"xds": NS_XDS})
    pnr.append(request)
    etree.SubElement(pnr, _XDS + "Document", id="Document01").append(xop_include("doc@bench"))
    envelope = soapclient.envelope(Action.ProvideAndRegisterDocumentSet_b, pnr)
    stream = encode_mtom(envelope, [file_attachment(path, "doc@bench", "application/octet-stream")])
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", parts.path, body=stream.iter_bytes(), headers=stream.headers)
    reply = conn.getresponse().read()
    elapsed = time.perf_counter() - t0
    if b"ResponseStatusType:Success" not in reply:
        raise RuntimeError(reply[:2000].decode(errors="replace"))
    return elapsed, unique_id


def retrieve(url: str, repository_id: str, unique_id: str) -> tuple[float, str, int]:
    """ITI-43 of one document, the response read as a stream; (seconds, SHA-256 of the
    document part, its size)."""
    body = etree.fromstring(
        f'<xds:RetrieveDocumentSetRequest xmlns:xds="{NS_XDS}"><xds:DocumentRequest>'
        f"<xds:RepositoryUniqueId>{repository_id}</xds:RepositoryUniqueId>"
        f"<xds:DocumentUniqueId>{unique_id}</xds:DocumentUniqueId></xds:DocumentRequest>"
        "</xds:RetrieveDocumentSetRequest>")
    envelope = soapclient.envelope(Action.RetrieveDocumentSet, body)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", parts.path, body=envelope, headers={"Content-Type": soapclient.CONTENT_TYPE})
    resp = conn.getresponse()
    boundary = resp.getheader("Content-Type", "").split("boundary=")[1].split(";")[0].strip('"')
    digest, size = _hash_second_part(resp, boundary.encode())
    return time.perf_counter() - t0, digest, size


def _hash_second_part(resp: http.client.HTTPResponse, boundary: bytes) -> tuple[str, int]:
    """SHA-256 and size of the attachment (the part after the root), read in 1 MiB pieces."""
    head = b""
    marker = b"--" + boundary
    while head.count(marker) < 2 or b"\r\n\r\n" not in head[head.rfind(marker):]:
        chunk = resp.read(64 * 1024)
        if not chunk:
            raise RuntimeError("response ended before the attachment")
        head += chunk
    start = head.index(b"\r\n\r\n", head.rfind(marker)) + 4
    digest, size, tail = hashlib.sha256(), 0, head[start:]
    closing = b"\r\n" + marker + b"--"
    while chunk := resp.read(MB):
        data = tail + chunk
        keep = len(closing) + 2
        digest.update(data[:-keep])
        size += len(data) - keep
        tail = data[-keep:]
    if not tail.startswith(closing):
        raise RuntimeError("attachment not followed by the closing boundary")
    return digest.hexdigest(), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1024", help="document sizes in MB")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xds-repo-bench-"))
    try:
        rows = []
        for size_mb in [int(s) for s in args.sizes.split(",")]:
            path = work / f"doc-{size_mb}MB.bin"
            sha256 = make_file(path, size_mb * MB)
            floor = floor_mb_s(path)
            disk = fsync_floor_mb_s(path, work / "scratch.bin")
            data_dir = work / f"data-{size_mb}"
            settings = Settings(data_dir=data_dir)
            engine = open_engine(settings)
            migrate(engine)
            pid = samples.new_patient_id(settings.affinity_domain)
            add_patient(engine, pid)
            engine.dispose()
            proc, url = start_server(data_dir)
            try:
                up_s, unique_id = provide(url, pid, path)
                down_s, got, got_size = retrieve(url, settings.repository_unique_id, unique_id)
                rss = peak_rss_mb(proc.pid)
            finally:
                proc.terminate()
                proc.wait(10)
            if got != sha256 or got_size != size_mb * MB:
                raise RuntimeError(f"{size_mb} MB: retrieved bytes differ from the original")
            rows.append((size_mb, size_mb / up_s, size_mb / down_s, floor, disk, rss))
            path.unlink()
            shutil.rmtree(data_dir, ignore_errors=True)
        print(f"{'size':>8} {'ITI-41 MB/s':>12} {'ITI-43 MB/s':>12} {'cat floor':>10} "
              f"{'41/cat':>7} {'43/cat':>7} {'fsync floor':>12} {'41/fsync':>9} "
              f"{'server peak RSS':>16}")
        for size_mb, up, down, floor, disk, rss in rows:
            print(f"{size_mb:>6} MB {up:>12,.0f} {down:>12,.0f} {floor:>10,.0f} {up / floor:>7.0%} "
                  f"{down / floor:>7.0%} {disk:>12,.0f} {up / disk:>9.0%} {rss:>13,.0f} MB")
        print("targets: >= 50% of the cat floor both ways; peak RSS <= 150 MB and flat across "
              "sizes.\nfsync floor: copy + fsync of the file, the bound of any durable upload here.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
