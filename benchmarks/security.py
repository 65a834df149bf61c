"""Secure-node benchmark (not a test): ITI-18 latency and ITI-42 throughput with mutual TLS, XUA
and the ATNA audit trail on, next to plain HTTP, on the same data in the same run.

    python benchmarks/security.py                  # 20,000 DocumentEntries on SQLite
    python benchmarks/security.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

Runs ``xds serve`` twice at once, each on its own copy of the store: plain HTTP, and ``--tls-*
--client-auth required --xua required --audit-url syslog+tls://...`` with a real TLS syslog
receiver in this process (``--breakdown`` adds mTLS alone and mTLS + audit). The modes take
turns request by request and burst by burst, so a drift of this machine hits them alike. Each
secure request carries its own signed assertion (an assertion ID is accepted once), signed
before the clock starts. Prints ITI-18 FindDocuments p50/p99 (one keep-alive client per mode)
and ITI-42 registrations/s (4 clients) per mode, their ratios, and how many audit messages the
receiver got. Target: secure within 1.3x of plain.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import socket
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _registry_benchmark() -> object:
    spec = importlib.util.spec_from_file_location("registry_benchmark", HERE / "registry.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bench: object = _registry_benchmark()
DOCS_PER_PATIENT: int = _bench.DOCS_PER_PATIENT  # type: ignore[attr-defined]
_pct = _bench._pct  # type: ignore[attr-defined]
fill = _bench.fill  # type: ignore[attr-defined]
_find_documents = _bench._find_documents  # type: ignore[attr-defined]

from tests import samples, soapclient  # noqa: E402
from tests.server import free_port  # noqa: E402
from xds.config import Settings  # noqa: E402
from xds.security.certs import init_certs  # noqa: E402
from xds.security.idp import issue_assertion  # noqa: E402
from xds.security.tls import client_context, server_context  # noqa: E402
from xds.security.wsse import security_header  # noqa: E402
from xds.store.db import open_engine  # noqa: E402
from xds.store.patients import add_patient  # noqa: E402

from lxml import etree  # noqa: E402

#: A mode: its name, the ``xds serve`` flags, URL scheme, client TLS context, assertion maker.
Mode = tuple[str, list[str], str, ssl.SSLContext | None, Callable[[], bytes | None]]

AUDIENCE = "urn:oid:1.3.6.1.4.1.21367.13.20.1000"
CLIENTS = 4


class SyslogReceiver:
    """A TLS syslog receiver (RFC 5425 octet counting) that counts the messages it gets."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                stream = tls.makefile("rb")
                while True:
                    length = b""
                    while (c := stream.read(1)) not in (b" ", b""):
                        length += c
                    if not length:
                        return
                    stream.read(int(length))
                    with self._lock:
                        self.count += 1
        except (OSError, ValueError):
            return


def start(settings: Settings, extra: list[str], scheme: str,
          verify: ssl.SSLContext | bool) -> tuple[subprocess.Popen[bytes], str]:
    """``xds serve`` (plus ``extra``) in its own process; returns it and the registry URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "xds", "serve", "--port", str(port), "--data-dir",
           str(settings.data_dir), "--actors", "registry", *extra]
    if settings.database_url:
        cmd += ["--database-url", settings.database_url]
    env = dict(os.environ, XDS_LOG_LEVEL="warning", XDS_MLLP_PORT="0", XDS_DICOM_PORT="0")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    url = f"{scheme}://127.0.0.1:{port}/xds/registry"
    for _ in range(300):
        try:
            if httpx.get(url + "?wsdl", timeout=1, verify=verify).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("xds serve did not start")


def connection(url: str, context: ssl.SSLContext | None) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if context is None:
        return http.client.HTTPConnection(parts.hostname or "", parts.port or 80)
    return http.client.HTTPSConnection(parts.hostname or "", parts.port or 443, context=context)


def with_assertion(envelope: bytes, assertion: bytes | None) -> bytes:
    """``envelope`` with a wsse:Security header holding ``assertion`` (unchanged without)."""
    if assertion is None:
        return envelope
    header = etree.tostring(security_header(assertion))
    return envelope.replace(b"</s:Header>", header + b"</s:Header>", 1)


def registrations(url: str, context: ssl.SSLContext | None, settings: Settings,
                  assertions: Callable[[], bytes | None], per_client: int) -> float:
    """Single-document ITI-42 submissions/s with CLIENTS concurrent clients."""
    engine = open_engine(settings)
    pids = [samples.new_patient_id(settings.affinity_domain) for _ in range(CLIENTS)]
    for pid in pids:
        add_patient(engine, pid)
    engine.dispose()
    bodies = [[with_assertion(soapclient.envelope(soapclient.ITI42, samples.single_document_submission(
        pid, unique_id=samples.new_oid(), submission_set_options={"unique_id": samples.new_oid()})),
        assertions()) for _ in range(per_client)] for pid in pids]
    path = urlsplit(url).path
    failures: list[bytes] = []
    barrier = threading.Barrier(CLIENTS + 1)

    def client(i: int) -> None:
        conn = connection(url, context)
        barrier.wait()
        for body in bodies[i]:
            conn.request("POST", path, body, {"Content-Type": soapclient.CONTENT_TYPE})
            content = conn.getresponse().read()
            if b"ResponseStatusType:Success" not in content:
                failures.append(content[:400])
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        print(f"  {len(failures)} registrations failed, first: {failures[0]!r}")
    return CLIENTS * per_client / elapsed


def store_for(base: Settings, data_dir: Path) -> Settings:
    """A copy of the filled SQLite store for one mode, so that no server ships another mode's
    audit rows; on PostgreSQL every mode shares ``base`` (its senders then ship the rows of
    the other modes too, which counts against the secure modes)."""
    if base.database_url:
        return base
    engine = open_engine(base)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    data_dir.mkdir(parents=True)
    shutil.copy(base.data_dir / "registry.sqlite", data_dir / "registry.sqlite")
    return replace(base, data_dir=data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1000, help="per mode")
    parser.add_argument("--registrations", type=int, default=300, help="per client and mode")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--rounds", type=int, default=6,
                        help="ITI-42 bursts per mode, the modes taking turns")
    parser.add_argument("--breakdown", action="store_true",
                        help="also mTLS alone and mTLS + audit, to see what each layer costs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xds-bench-security-"))
    base = Settings(data_dir=work / "data", database_url=args.database_url)
    print(f"database: {base.effective_database_url}")
    pids = fill(base, args.entries)
    paths = init_certs(work / "certs", ["localhost", "127.0.0.1"])
    ca, (server_cert, server_key), (client_cert, client_key) = \
        str(paths["ca"][0]), map(str, paths["server"]), map(str, paths["client"])
    idp = init_certs(work / "idp", ["idp"])["server"]
    idp_key, idp_cert = idp[1].read_bytes(), idp[0].read_bytes()
    tls = client_context(ca, client_cert, client_key)
    receiver = SyslogReceiver(server_context(server_cert, server_key, ca))

    def signed() -> bytes:
        return issue_assertion(idp_key, idp_cert, subject="bench-user", audience=AUDIENCE)

    tls_flags = ["--tls-cert", server_cert, "--tls-key", server_key, "--tls-ca", ca,
                 "--client-auth", "required", "--client-cert", client_cert,
                 "--client-key", client_key]
    audit_flags = ["--audit-url", f"syslog+tls://127.0.0.1:{receiver.port}"]
    xua_flags = ["--xua", "required", "--xua-idp-cert", str(idp[0]), "--xua-audience", AUDIENCE]
    modes: list[Mode] = [
        ("plain HTTP", [], "http", None, lambda: None),
        ("mTLS", tls_flags, "https", tls, lambda: None),
        ("mTLS + audit", tls_flags + audit_flags, "https", tls, lambda: None),
        ("mTLS + XUA + audit", tls_flags + audit_flags + xua_flags, "https", tls, signed),
    ]
    if not args.breakdown:
        modes = [modes[0], modes[-1]]
    # Every mode's server runs at once, each on its own copy of the store, and the modes take
    # turns request by request (ITI-18) and burst by burst (ITI-42): a drift of the machine
    # hits them all alike. Only one server is busy at any moment.
    stores = {name: store_for(base, work / f"data-{i}") for i, (name, *_) in enumerate(modes)}
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for name, extra, scheme, context, _ in modes:
            servers[name] = start(stores[name], extra, scheme, context or True)
        times = interleaved_queries(modes, servers, pids, args.queries)
        rates: dict[str, list[tuple[int, float]]] = {name: [] for name, *_ in modes}
        per_burst = max(1, args.registrations // args.rounds)
        for _ in range(args.rounds):
            for name, _extra, _scheme, context, assertions in modes:
                rate = registrations(servers[name][1], context, stores[name], assertions,
                                     per_burst)
                rates[name].append((CLIENTS * per_burst, CLIENTS * per_burst / rate))
    finally:
        for proc, _url in servers.values():
            proc.terminate()
            proc.wait(20)
    rate_of = {name: sum(n for n, _ in runs) / sum(t for _, t in runs)
               for name, runs in rates.items()}
    plain, secure = modes[0][0], modes[-1][0]
    print(f"{'mode':<22}{'ITI-18 p50':>12}{'p99':>9}{'ITI-42 /s':>12}")
    for name, *_ in modes:
        print(f"{name:<22}{_pct(times[name], 50):>10.2f}ms{_pct(times[name], 99):>7.2f}ms"
              f"{rate_of[name]:>12.1f}")
    print(f"ITI-18 p50 secure/plain: {_pct(times[secure], 50) / _pct(times[plain], 50):.2f}x; "
          f"ITI-42 plain/secure: {rate_of[plain] / rate_of[secure]:.2f}x "
          "(target: both within 1.3x)")
    print(f"audit messages received by the ARR: {receiver.count} (the modes with --audit-url; "
          "every mode records its transactions in its local trail)")


def interleaved_queries(modes: list[Mode],
                        servers: dict[str, tuple[subprocess.Popen[bytes], str]],
                        pids: list[str], n: int) -> dict[str, list[float]]:
    """ITI-18 latencies (ms) per mode: one keep-alive client per mode, the modes in turn."""
    import random

    clients = []
    for name, _extra, _scheme, context, assertions in modes:
        url = servers[name][1]
        bodies = [with_assertion(soapclient.envelope(soapclient.ITI18, _find_documents(
            random.choice(pids))), assertions()) for _ in range(n + 30)]
        clients.append((name, connection(url, context), urlsplit(url).path, bodies))
    times: dict[str, list[float]] = {name: [] for name, *_ in modes}
    for i in range(n + 30):
        for name, conn, path, bodies in clients:
            t0 = time.perf_counter()
            conn.request("POST", path, bodies[i], {"Content-Type": soapclient.CONTENT_TYPE})
            content = conn.getresponse().read()
            if i >= 30:  # the first 30 warm up
                times[name].append((time.perf_counter() - t0) * 1000)
            assert content.count(b"<rim:ExtrinsicObject") == DOCS_PER_PATIENT, content[:800]
    for _name, conn, _path, _bodies in clients:
        conn.close()
    return times


if __name__ == "__main__":
    main()
