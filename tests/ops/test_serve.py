"""``xds serve`` as a subprocess: it refuses an out-of-date schema (exit 2, untouched); with
``--workers 2`` the MLLP and DICOM ports open in exactly one process and /metrics sums both
workers; ``--listeners mllp`` answers MLLP without an HTTP port; bad options exit 2."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.mpi.support import GREEN, adt, cx, exchange, field, new_value
from tests.ops.support import (
    at_revision, listening_processes, samples_of, total, wait_http, wait_port, xds_env,
)
from tests.server import free_port, stop_process
from xds.app import build_app
from xds.config import Settings
from xds.store.db import SchemaMismatch, open_engine, schema_state

OUT_OF_DATE = ("the database schema is at revision 0005, this version needs 0006: "
               "run 'xds db upgrade' (back up first)")


@contextmanager
def _serving(args: list[str], data_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``xds serve ARGS`` on ``data_dir`` until the block ends (then SIGTERM, else SIGKILL)."""
    proc = subprocess.Popen([sys.executable, "-m", "xds", "serve", *args],
                            env=xds_env(XDS_DATA_DIR=str(data_dir)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc, 15)


def _output(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stdout is not None
    return proc.stdout.read().decode(errors="replace")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # the field after the state is the parent pid
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_refuses_an_out_of_date_schema_with_exit_2_and_leaves_it(
        fresh_settings: Settings, workers: str) -> None:
    at_revision(fresh_settings, "0005")
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "xds", "serve", "--port", str(port), "--workers", workers,
         "--mllp-port", "0", "--dicom-port", "0"],
        env=xds_env(XDS_DATA_DIR=str(fresh_settings.data_dir),
                    XDS_DATABASE_URL=fresh_settings.database_url),
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"xds serve: {OUT_OF_DATE}" in proc.stderr
    engine = open_engine(fresh_settings)
    try:
        assert schema_state(engine).current == ("0005",)
    finally:
        engine.dispose()


def test_the_app_lifespan_refuses_an_out_of_date_schema_without_upgrading(
        fresh_settings: Settings) -> None:
    at_revision(fresh_settings, "0005")
    app = build_app(fresh_settings)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(SchemaMismatch, match="run 'xds db upgrade'"):
        asyncio.run(start())
    engine = open_engine(fresh_settings)
    try:
        assert schema_state(engine).current == ("0005",)
    finally:
        engine.dispose()


def test_serve_exits_1_when_the_database_does_not_answer(tmp_path: Path) -> None:
    closed = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "xds", "serve", "--database-url",
         f"postgresql+psycopg://postgres@127.0.0.1:{closed}/xds"],
        env=xds_env(XDS_DATA_DIR=str(tmp_path)), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "xds serve: database:" in proc.stderr and str(closed) in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--listeners", "http,smtp", "unknown listeners ['smtp']"),
    ("--listeners", " , ", "no listener named"),
    ("--blob-url", "ftp://somewhere/blobs", "use file:///path or s3://"),
])
def test_a_bad_listener_or_blob_url_is_a_usage_error(tmp_path: Path, option: str, value: str,
                                                     message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "xds", "serve", option, value],
                          env=xds_env(XDS_DATA_DIR=str(tmp_path), COLUMNS="300"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "registry.sqlite").exists()  # refused before anything started


def test_two_workers_share_http_and_one_of_them_holds_mllp_and_dicom(tmp_path: Path) -> None:
    http, mllp, dicom = free_port(), free_port(), free_port()
    data = tmp_path / "data"
    with _serving(["--workers", "2", "--port", str(http), "--mllp-port", str(mllp),
                   "--dicom-port", str(dicom)], data) as proc:
        base = f"http://127.0.0.1:{http}"
        assert wait_http(base + "/healthz", proc).status_code == 200
        wait_port(mllp, proc)
        wait_port(dicom, proc)
        workers = _children(proc.pid)
        assert len(workers) == 2
        assert listening_processes(http, [proc.pid, *workers]) == (1, {proc.pid, *workers})
        sockets, mllp_holders = listening_processes(mllp, [proc.pid, *workers])
        assert sockets == 1 and len(mllp_holders) == 1 and mllp_holders <= set(workers)
        assert listening_processes(dicom, [proc.pid, *workers]) == (1, mllp_holders)
        ack = exchange(("127.0.0.1", mllp), adt("A01", cx(new_value(), GREEN)))
        assert field(ack, "MSA", 1) == "AA"

        # New connections in parallel until both workers have answered some (the kernel
        # picks the accepting process); /metrics, answered by one, must count them all.
        metrics_dir = data / "tmp" / f"metrics-{proc.pid}"
        before = total(samples_of(base, "xds_requests_total"))
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while len({f.name.split("_")[-1] for f in metrics_dir.glob("counter_*.db")}) < 2:
                assert sent < 400, "one worker answered everything"
                statuses = list(pool.map(lambda _: httpx.get(base + "/fhir/metadata",
                                                             timeout=30).status_code,
                                         range(20)))
                assert statuses == [200] * 20
                sent += 20
        counted = samples_of(base, "xds_requests_total")
        assert total(counted) - before == sent
        assert total(counted, transaction="FHIR", outcome="success") == sent
    output = _output(proc)
    assert "not opened" not in output, output  # no worker tried the MLLP or DICOM port
    assert not metrics_dir.exists()  # removed when the server stopped


def test_listeners_mllp_answers_iti8_without_an_http_port(tmp_path: Path) -> None:
    http, mllp, dicom = free_port(), free_port(), free_port()
    with _serving(["--listeners", "mllp", "--workers", "2", "--port", str(http),
                   "--mllp-port", str(mllp), "--dicom-port", str(dicom)],
                  tmp_path / "data") as proc:
        wait_port(mllp, proc)
        ack = exchange(("127.0.0.1", mllp), adt("A01", cx(new_value(), GREEN)))
        assert field(ack, "MSA", 1) == "AA"
        time.sleep(0.5)
        for closed in (http, dicom):
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{closed}/healthz", timeout=2)
        assert _children(proc.pid) == []  # one process, whatever --workers says
    assert proc.returncode == 0
    output = _output(proc)
    assert "--workers ignored" in output
    assert "PIX Manager MLLP port" in output and "/xds/registry" not in output


def test_a_killed_worker_is_replaced_and_its_listeners_come_back(tmp_path: Path) -> None:
    http, mllp = free_port(), free_port()
    with _serving(["--workers", "2", "--port", str(http), "--mllp-port", str(mllp),
                   "--dicom-port", "0"], tmp_path / "data") as proc:
        base = f"http://127.0.0.1:{http}"
        assert wait_http(base + "/healthz", proc).status_code == 200
        wait_port(mllp, proc)
        workers = _children(proc.pid)
        _, (listener,) = listening_processes(mllp, workers)
        os.kill(listener, signal.SIGKILL)  # the worker holding MLLP: the harder case
        deadline = time.monotonic() + 30
        while True:
            now = _children(proc.pid)
            if len(now) == 2 and listener not in now:
                break
            assert time.monotonic() < deadline, f"no replacement worker: {now}"
            time.sleep(0.1)
        wait_port(mllp, proc)
        _, holders = listening_processes(mllp, now)
        assert len(holders) == 1 and holders <= set(now) - set(workers)
        assert field(exchange(("127.0.0.1", mllp), adt("A01", cx(new_value(), GREEN))),
                     "MSA", 1) == "AA"
        statuses = {httpx.get(base + "/healthz", timeout=30).status_code for _ in range(20)}
        assert statuses == {200}
    assert "exited with -9; starting another" in _output(proc)
