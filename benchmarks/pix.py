"""PIX Manager benchmark (not a test): ITI-8 feeds and ITI-9 queries over MLLP.

    python benchmarks/pix.py                        # 2,000 feeds; queries at 20,000 patients
    python benchmarks/pix.py --patients 100000      # the 10^5 figure
    python benchmarks/pix.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

Prints: ADT^A04 messages/s (each a new patient with an affinity-domain and a local id) over one
MLLP connection and over 4 concurrent ones; then, once the index holds ``--patients`` patients,
ITI-9 QBP^Q23 p50/p99 over one MLLP connection (local id -> affinity-domain id), next to the
floor measured in the same run: ``PatientIndex.query`` in-process, without MLLP or HL7.

The server is a real ``xds serve --mllp-port`` process when that option exists, else the
MLLP listener (``xds.mpi.mllp.start_mllp_server``) in a thread of this process (``--server``).
The fill to ``--patients`` is bulk SQL: the rows ``PatientIndex.feed`` writes for a new patient
(link group, two identifiers, their "created" events, the registry's known-patient row), in
large transactions; only the per-message checks are skipped, so 10^5 patients fill in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from hl7.client import MLLPClient  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server import free_port  # noqa: E402
from xds.config import Settings  # noqa: E402
from xds.mpi.index import PatientIndex  # noqa: E402
from xds.mpi.model import PatientIdentifier  # noqa: E402
from xds.store.db import migrate, open_engine, write_transaction  # noqa: E402
from xds.store.tables import mpi_event, mpi_identifier, mpi_person, patient  # noqa: E402

LOCAL = "1.2.840.113619.6.197"  # the feeding hospital's assigning authority
_VT, _FS, _CR = b"\x0b", b"\x1c", b"\r"


def a04(control: str, affinity: PatientIdentifier, local: PatientIdentifier) -> bytes:
    """One framed ADT^A04 (ITI-8, v2.3.1) registering a new patient with two ids."""
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    segments = [
        f"MSH|^~\\&|ADT|HOSP|XDS|AFFDOM|{now}||ADT^A04^ADT_A01|{control}|P|2.3.1",
        f"EVN||{now}",
        f"PID|||{affinity.value}^^^&{affinity.domain}&ISO~{local.value}^^^&{local.domain}&ISO"
        f"||BENCH^PAT{control}||19700101|F",
        "PV1||N",
    ]
    return _VT + ("\r".join(segments) + "\r").encode() + _FS + _CR


def qbp_q23(control: str, source: PatientIdentifier, domain: str) -> bytes:
    """One framed QBP^Q23 (ITI-9, v2.5) asking for ``source``'s id in ``domain``."""
    segments = [
        f"MSH|^~\\&|BENCH|XDS|XDS_PIX|XDS|20240101000000||QBP^Q23^QBP_Q21|{control}|P|2.5",
        f"QPD|IHE PIX Query|{control}|{source.value}^^^&{source.domain}&ISO|^^^&{domain}&ISO",
        "RCP|I",
    ]
    return _VT + ("\r".join(segments) + "\r").encode() + _FS + _CR


def exchange(client: MLLPClient, frame: bytes) -> bytes:
    """Send one frame, read the whole answer frame."""
    data: bytes = client.send(frame)
    while _FS + _CR not in data:
        more: bytes = client.socket.recv(65536)
        if not more:
            raise ConnectionError("connection closed mid-answer")
        data += more
    return data


# -- the server ------------------------------------------------------------------------------------


def _serve_supports_mllp() -> bool:
    out = subprocess.run([sys.executable, "-m", "xds", "serve", "--help"], capture_output=True,
                         text=True, env=dict(os.environ, COLUMNS="200"))
    return "--mllp-port" in out.stdout


@contextmanager
def mllp_server(settings: Settings, mode: str) -> Iterator[tuple[str, int]]:
    """A running PIX Manager on ``settings.mllp_port``; yields (description, port)."""
    if mode == "auto":
        mode = "serve" if _serve_supports_mllp() else "inprocess"
    if mode == "serve":
        cmd = [sys.executable, "-m", "xds", "serve", "--port", str(free_port()),
               "--mllp-port", str(settings.mllp_port), "--data-dir", str(settings.data_dir)]
        if settings.database_url:
            cmd += ["--database-url", settings.database_url]
        proc = subprocess.Popen(cmd, env=dict(os.environ, XDS_LOG_LEVEL="warning"),
                                stdout=subprocess.DEVNULL)
        try:
            _wait_for_port(settings.mllp_port, proc.poll)
            yield f"xds serve --mllp-port (pid {proc.pid})", settings.mllp_port
        finally:
            proc.terminate()
            proc.wait(10)
        return
    from xds.mpi.mllp import start_mllp_server

    engine = open_engine(settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(
        start_mllp_server(PatientIndex(engine, settings), settings), loop).result(30)
    try:
        yield "start_mllp_server in this process (one event loop thread)", settings.mllp_port
    finally:
        async def stop() -> None:
            server.close()
            await server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        engine.dispose()


def _wait_for_port(port: int, exited: Callable[[], int | None]) -> None:
    import socket

    for _ in range(300):
        if exited() is not None:
            raise RuntimeError("xds serve exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the MLLP port did not open")


# -- feeds -------------------------------------------------------------------------------------------


def feeds_per_second(port: int, settings: Settings, n: int, connections: int) -> float:
    """ADT^A04 messages/s, ``n`` in all, spread over ``connections`` concurrent connections."""
    frames = [[a04(f"F{uuid.uuid4().hex[:12]}",
                   PatientIdentifier(settings.affinity_domain, f"A{uuid.uuid4().hex[:16]}"),
                   PatientIdentifier(LOCAL, f"L{uuid.uuid4().hex[:16]}"))
               for _ in range(n // connections)] for _ in range(connections)]
    refused: list[bytes] = []
    barrier = threading.Barrier(connections + 1)

    def client(mine: list[bytes]) -> None:
        with MLLPClient("127.0.0.1", port) as conn:
            barrier.wait()
            for frame in mine:
                ack = exchange(conn, frame)
                if b"MSA|AA|" not in ack:
                    refused.append(ack)

    threads = [threading.Thread(target=client, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if refused:
        print(f"  {len(refused)} feeds not accepted, first: {refused[0][:300]!r}")
    return sum(len(f) for f in frames) / elapsed


# -- the fill ----------------------------------------------------------------------------------------


def fill(settings: Settings, patients: int, batch: int = 5000) -> list[tuple[PatientIdentifier,
                                                                          PatientIdentifier]]:
    """Bulk-insert ``patients`` new patients, as ``PatientIndex.feed`` would store them;
    returns their (local id, affinity-domain id) pairs."""
    engine = open_engine(settings)
    migrate(engine)
    pairs = []
    started = time.perf_counter()
    for first in range(0, patients, batch):
        now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        persons, identifiers, events, known = [], [], [], []
        for _ in range(min(batch, patients - first)):
            person = f"urn:uuid:{uuid.uuid4()}"
            aff = PatientIdentifier(settings.affinity_domain, f"B{uuid.uuid4().hex[:16].upper()}")
            local = PatientIdentifier(LOCAL, f"M{uuid.uuid4().hex[:16].upper()}")
            pairs.append((local, aff))
            persons.append({"person_id": person, "created": now})
            for pid in (aff, local):
                identifiers.append({"domain": pid.domain, "value": pid.value, "person_id": person,
                                    "family": "BULK", "given": "PAT", "birth_date": "19700101",
                                    "sex": "F", "updated": now})
                events.append({"at": now, "kind": "created", "domain": pid.domain,
                               "value": pid.value, "person_id": person})
            known.append({"patient_id": aff.cx, "created": now})
        with write_transaction(engine) as conn:
            conn.execute(insert(mpi_person), persons)
            conn.execute(insert(mpi_identifier), identifiers)
            conn.execute(insert(mpi_event), events)
            conn.execute(insert(patient), known)
    engine.dispose()
    print(f"  bulk-filled {patients:,} patients in {time.perf_counter() - started:,.1f} s")
    return pairs


# -- queries -----------------------------------------------------------------------------------------


def query_latencies(port: int, pairs: list[tuple[PatientIdentifier, PatientIdentifier]],
                    n: int) -> list[float]:
    """ITI-9 latencies (ms) over one MLLP connection, random patients."""
    picks = [random.choice(pairs) for _ in range(n)]
    frames = [qbp_q23(f"Q{i}", local, aff.domain) for i, (local, aff) in enumerate(picks)]
    times = []
    with MLLPClient("127.0.0.1", port) as conn:
        for _ in range(20):  # warm-up
            exchange(conn, frames[0])
        for frame, (_, aff) in zip(frames, picks, strict=True):
            t0 = time.perf_counter()
            answer = exchange(conn, frame)
            times.append((time.perf_counter() - t0) * 1000)
            assert b"MSA|AA|" in answer and aff.value.encode() in answer, answer[:400]
    return times


def query_floor(settings: Settings, pairs: list[tuple[PatientIdentifier, PatientIdentifier]],
                n: int) -> list[float]:
    """Latencies (ms) of ``PatientIndex.query`` in-process (the same lookups, no MLLP/HL7)."""
    engine = open_engine(settings)
    index = PatientIndex(engine, settings)
    times = []
    for _ in range(n):
        local, aff = random.choice(pairs)
        t0 = time.perf_counter()
        found = index.query(local, [aff.domain])
        times.append((time.perf_counter() - t0) * 1000)
        assert found == [aff], found
    engine.dispose()
    return times


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000, help="ADT^A04 messages per run")
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--server", choices=["auto", "serve", "inprocess"], default="auto")
    args = parser.parse_args()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="xds-pix-bench-"))
    settings = Settings(data_dir=data_dir, database_url=args.database_url, mllp_port=free_port())
    print(f"database: {settings.effective_database_url}")
    engine = open_engine(settings)
    migrate(engine)
    engine.dispose()
    with mllp_server(settings, args.server) as (server, port):
        print(f"server: {server}")
        one = feeds_per_second(port, settings, args.feeds, 1)
        many = feeds_per_second(port, settings, args.feeds, args.connections)
        print(f"ITI-8 ADT^A04 feeds/s, {args.feeds:,} messages:")
        print(f"  1 connection:              {one:8,.0f} msgs/s")
        print(f"  {args.connections} concurrent connections:  {many:8,.0f} msgs/s")
        # the two feed runs made 2 x --feeds patients; query at least 1,000 bulk-filled ones
        pairs = fill(settings, max(args.patients - 2 * args.feeds, min(args.patients, 1000)))
        floor = query_floor(settings, pairs, args.queries)
        mllp = query_latencies(port, pairs, args.queries)
    print(f"ITI-9 PIX Query (local id -> affinity id), {args.patients:,} patients:")
    print(f"  over MLLP:         p50 {_pct(mllp, 50):6.2f} ms   p99 {_pct(mllp, 99):6.2f} ms")
    print(f"  in-process floor:  p50 {_pct(floor, 50):6.2f} ms   p99 {_pct(floor, 99):6.2f} ms"
          "   (PatientIndex.query)")
    if not args.data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
