"""Registry benchmark (not a test): fill N DocumentEntries, then time ITI-42 and ITI-18 over HTTP.

    python benchmarks/registry.py                       # N=20,000 on SQLite in a temp dir
    python benchmarks/registry.py --entries 1000000     # the 10^6 figure
    python benchmarks/registry.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

Prints: ITI-42 single-document registrations/s with 4 concurrent clients against a real
``xds serve`` process, FindDocuments p50/p99 for patients with 10 documents, and beside it the
floor measured in the same run: the same stored query (same SQL, same response XML) called
in-process, without HTTP or SOAP. Targets: >= 300 registrations/s, p50 <= 15 ms, server <= 2x floor.
"""

from __future__ import annotations

import argparse
import http.client
import dataclasses
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import samples, soapclient  # noqa: E402  (the tests' independent ebRIM client)
from tests.server import free_port  # noqa: E402
from xds.config import Settings  # noqa: E402
from xds.ebrim.submission import parse_submit_objects_request  # noqa: E402
from xds.model.metadata import Submission  # noqa: E402
from xds.registry import iti42  # noqa: E402
from xds.registry.context import Registry  # noqa: E402
from xds.registry.iti18 import stored_query  # noqa: E402
from xds.soap.envelope import build_envelope  # noqa: E402
from xds.store.db import migrate, open_engine, write_transaction  # noqa: E402
from xds.store.patients import add_patient  # noqa: E402
from xds.store.registry import UniqueIdClaim  # noqa: E402
from xds.store.tables import patient  # noqa: E402

DOCS_PER_PATIENT = 10
RECONNECT_EVERY = 50


def fill(settings: Settings, entries: int, batch: int = 500) -> list[str]:
    """Register ``entries`` DocumentEntries, 10 per patient, straight into the store.

    One template submission goes through the product's own code (ebRIM parse, id assignment,
    XML build); each patient then gets a copy with fresh ids, uniqueIds, patient id and
    creation times, written with the product's index functions in large transactions. Only
    the per-request checks and HTTP are skipped, so that 10^6 entries fill in minutes.
    Returns the patient ids.
    """
    engine = open_engine(settings)
    migrate(engine)
    template_pid = samples.new_patient_id(settings.affinity_domain)
    template = parse_submit_objects_request(_submission(template_pid))
    iti42._assign_uuids(template)  # noqa: SLF001 - trusted bulk load, see docstring
    template_xml = iti42._approve_and_build(template)  # noqa: SLF001
    ids = set(re.findall(rb'\bid="(urn:uuid:[0-9a-f-]{36})"', b"".join(template_xml.values())))
    patients: list[str] = []
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    started = time.perf_counter()
    n_patients = max(1, entries // DOCS_PER_PATIENT)
    for first in range(0, n_patients, batch):
        with write_transaction(engine) as conn:
            rows = []
            for _ in range(min(batch, n_patients - first)):
                pid = samples.new_patient_id(settings.affinity_domain)
                patients.append(pid)
                rows.append({"patient_id": pid, "created": now})
                sub, xml = _copy_for(template, template_xml, ids, template_pid, pid)
                plan = iti42._Plan(now=now)  # noqa: SLF001
                plan.new_unique_ids = [UniqueIdClaim(
                    sub.submission_set.unique_id or "", "SubmissionSet", None, None)]
                plan.new_unique_ids += [UniqueIdClaim(
                    de.unique_id or "", "DocumentEntry", (de.hash or "").lower(), int(de.size or 0))
                    for de in sub.document_entries]
                iti42._store(conn, sub, plan, xml)  # noqa: SLF001
            conn.execute(patient.insert(), rows)
        done = min(first + batch, n_patients) * DOCS_PER_PATIENT
        if done % 50_000 < batch * DOCS_PER_PATIENT:
            rate = done / (time.perf_counter() - started)
            print(f"  filled {done:>9,} entries ({rate:,.0f}/s)", flush=True)
    engine.dispose()
    return patients


def _copy_for(template: Submission, template_xml: dict[str, bytes], ids: set[bytes],
              template_pid: str, pid: str) -> tuple[Submission, dict[str, bytes]]:
    """The template submission for patient ``pid``: every id, uniqueId and time made new."""
    fresh = {old: f"urn:uuid:{uuid.uuid4()}".encode() for old in ids}
    swaps: dict[bytes, bytes] = dict(fresh)
    swaps[template_pid.replace("&", "&amp;").encode()] = pid.replace("&", "&amp;").encode()
    new_uid: dict[str, str] = {}
    new_time: dict[str, str] = {}
    for obj in [template.submission_set, *template.document_entries]:
        new_uid[obj.unique_id or ""] = samples.new_oid()
        swaps[(obj.unique_id or "").encode()] = new_uid[obj.unique_id or ""].encode()
    for de in template.document_entries:
        stamp = f"2024{random.randint(1, 12):02d}{random.randint(1, 28):02d}120000"
        new_time[de.entry_uuid] = stamp
    pattern = re.compile(b"|".join(re.escape(k) for k in sorted(swaps, key=len, reverse=True)))

    def swap(data: bytes) -> bytes:
        return pattern.sub(lambda m: swaps[m.group(0)], data)

    def nid(old: str) -> str:
        return fresh[old.encode()].decode()

    ss = dataclasses.replace(template.submission_set, entry_uuid=nid(template.submission_set.entry_uuid),
                             patient_id=pid, unique_id=new_uid[template.submission_set.unique_id or ""])
    xml = {ss.entry_uuid: swap(template_xml[template.submission_set.entry_uuid])}
    entries = []
    for de in template.document_entries:
        copy = dataclasses.replace(
            de, entry_uuid=nid(de.entry_uuid), lid=nid(de.entry_uuid), patient_id=pid,
            source_patient_id=pid, unique_id=new_uid[de.unique_id or ""],
            creation_time=new_time[de.entry_uuid])
        entries.append(copy)
        xml[copy.entry_uuid] = swap(template_xml[de.entry_uuid]).replace(
            de.creation_time.encode() if de.creation_time else b"\0", new_time[de.entry_uuid].encode())
    associations = []
    for a in template.associations:
        copy = dataclasses.replace(a, entry_uuid=nid(a.entry_uuid),
                                   source_object=nid(a.source_object),
                                   target_object=nid(a.target_object))
        associations.append(copy)
        xml[copy.entry_uuid] = swap(template_xml[a.entry_uuid])
    return Submission(submission_sets=[ss], document_entries=entries,
                      associations=associations), xml


def filled_patients(settings: Settings, limit: int = 20_000) -> list[str]:
    """Patients of an earlier fill that have exactly DOCS_PER_PATIENT entries."""
    from sqlalchemy import func, select

    from xds.store.tables import document_entry

    engine = open_engine(settings)
    with engine.connect() as conn:
        rows = conn.execute(select(document_entry.c.patient_id).group_by(document_entry.c.patient_id)
                            .having(func.count() == DOCS_PER_PATIENT).limit(limit))
        pids = [r.patient_id for r in rows]
    engine.dispose()
    if not pids:
        raise SystemExit(f"--reuse: no filled patients in {settings.data_dir}")
    return pids


def _entry_count(settings: Settings) -> int:
    from sqlalchemy import func, select

    from xds.store.tables import document_entry

    engine = open_engine(settings)
    with engine.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(document_entry)).scalar_one())
    engine.dispose()
    return count


def _submission(pid: str) -> etree._Element:
    ss = samples.submission_set("SubmissionSet01", patient_id=pid)
    objects: list[etree._Element] = [ss]
    for i in range(DOCS_PER_PATIENT):
        objects.append(samples.document_entry(
            f"Document{i:02d}", patient_id=pid, creation_time=f"202401{i + 1:02d}120000"))
        objects.append(samples.has_member(f"Association{i:02d}", "SubmissionSet01",
                                          f"Document{i:02d}", "Original"))
    return samples.submit_objects_request(objects)


def start_server(settings: Settings, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """``xds serve`` in its own process on a free port; returns it and the registry URL."""
    port = free_port()
    env = dict(os.environ, XDS_LOG_LEVEL="warning")
    cmd = [sys.executable, "-m", "xds", "serve", "--port", str(port),
           "--data-dir", str(settings.data_dir), "--workers", str(workers)]
    if settings.database_url:
        cmd += ["--database-url", settings.database_url]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/xds/registry"
    for _ in range(300):
        try:
            if httpx.get(url + "?wsdl", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("xds serve did not start")


def registrations_per_second(url: str, settings: Settings, clients: int, seconds: float) -> float:
    """Single-document ITI-42 submissions/s with ``clients`` concurrent HTTP clients."""
    engine = open_engine(settings)
    pids = [samples.new_patient_id(settings.affinity_domain) for _ in range(clients)]
    for pid in pids:
        add_patient(engine, pid)
    engine.dispose()
    counts = [0] * clients
    failures: list[str] = []
    deadline = time.perf_counter() + seconds
    barrier = threading.Barrier(clients)

    # One envelope per client, made before the clock starts; each request only swaps in fresh
    # uniqueIds, so the figure is the server's work, not the client's XML building.
    templates = [soapclient.envelope(soapclient.ITI42, samples.single_document_submission(
        pid, unique_id="2.25.1111", submission_set_options={"unique_id": "2.25.2222"}))
        for pid in pids]

    parts = urlsplit(url)

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
        barrier.wait()
        while time.perf_counter() < deadline:
            if counts[i] % RECONNECT_EVERY == RECONNECT_EVERY - 1:
                # Workers share one listening socket; a client that kept one connection for
                # the whole run would pin all its work on one worker (4 connections can land
                # 4:0, halving the figure by chance). Real clients reconnect now and then.
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
            body = templates[i].replace(b"2.25.1111", samples.new_oid().encode()).replace(
                b"2.25.2222", samples.new_oid().encode())
            conn.request("POST", parts.path, body, {"Content-Type": soapclient.CONTENT_TYPE})
            content = conn.getresponse().read()
            if b"ResponseStatusType:Success" not in content:
                failures.append(content[:300].decode(errors="replace"))
            counts[i] += 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        print(f"  {len(failures)} registrations failed, first: {failures[0]}")
    return sum(counts) / elapsed


def _find_documents(pid: str) -> etree._Element:
    return samples.stored_query("FindDocuments", {
        "$XDSDocumentEntryPatientId": samples.quoted(pid),
        "$XDSDocumentEntryStatus": samples.quoted_list([samples.APPROVED]),
    })


def find_documents_http(url: str, pids: list[str], n: int) -> list[float]:
    """Latencies (ms) of FindDocuments over HTTP, one keep-alive client, random patients.

    The stdlib client keeps the client's own share of each figure small (httpx adds ~0.5 ms).
    """
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
    bodies = [soapclient.envelope(soapclient.ITI18, _find_documents(random.choice(pids)))
              for _ in range(n)]
    times = []
    for body in bodies:
        t0 = time.perf_counter()
        conn.request("POST", parts.path, body, {"Content-Type": soapclient.CONTENT_TYPE})
        content = conn.getresponse().read()
        times.append((time.perf_counter() - t0) * 1000)
        assert content.count(b"<rim:ExtrinsicObject") == DOCS_PER_PATIENT, content[:500]
    conn.close()
    return times


def warm_up(url: str, pids: list[str], workers: int) -> None:
    """A few queries on several connections, so every worker has compiled its statements."""
    for _ in range(4 * workers):
        find_documents_http(url, pids, 20)


def find_documents_floor(settings: Settings, pids: list[str], n: int) -> list[float]:
    """Latencies (ms) of the same stored query in-process: SQL + response XML, no HTTP/SOAP."""
    engine = open_engine(settings)
    registry = Registry(engine=engine, settings=settings)
    times = []
    for _ in range(n):
        query = _find_documents(random.choice(pids))
        t0 = time.perf_counter()
        response = stored_query(registry, query)
        build_envelope(response, action="urn:ihe:iti:2007:RegistryStoredQueryResponse",
                       relates_to="urn:uuid:0")
        times.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return times


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2, help="xds serve --workers")
    parser.add_argument("--reuse", action="store_true",
                        help="measure on what --data-dir already holds instead of filling it")
    args = parser.parse_args()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="xds-bench-"))
    settings = Settings(data_dir=data_dir, database_url=args.database_url)
    print(f"database: {settings.effective_database_url}")
    t0 = time.perf_counter()
    if args.reuse:
        pids = filled_patients(settings)
        args.entries = _entry_count(settings)
        print(f"reusing {args.entries:,} DocumentEntries; querying {len(pids):,} of the patients")
    else:
        pids = fill(settings, args.entries)
        print(f"filled {len(pids) * DOCS_PER_PATIENT:,} DocumentEntries over {len(pids):,} "
              f"patients in {time.perf_counter() - t0:,.0f} s")
    proc, url = start_server(settings, args.workers)
    try:
        warm_up(url, pids, args.workers)
        floor = find_documents_floor(settings, pids, args.queries)
        http_ms = find_documents_http(url, pids, args.queries)
        rate = registrations_per_second(url, settings, args.clients, args.seconds)
    finally:
        proc.terminate()
        proc.wait(10)
    p50, p99 = _pct(http_ms, 50), _pct(http_ms, 99)
    f50, f99 = _pct(floor, 50), _pct(floor, 99)
    print(f"ITI-42 registrations/s ({args.clients} clients, {args.seconds:.0f} s): {rate:,.0f}"
          "   (target >= 300)")
    print(f"FindDocuments, 10 docs/patient, {args.entries:,} entries:")
    print(f"  over HTTP:         p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   (target p50 <= 15 ms)")
    print(f"  in-process floor:  p50 {f50:6.2f} ms   p99 {f99:6.2f} ms")
    print(f"  server / floor:    p50 {p50 / f50:5.2f}x   p99 {p99 / f99:5.2f}x   (target <= 2x)")
    if not args.data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
