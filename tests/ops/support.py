"""Helpers of the ops tests: schema revisions set by hand, /metrics samples, ``xds`` run as a
subprocess, listening sockets and the processes holding them (from /proc)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from alembic import command
from alembic.config import Config
from prometheus_client.parser import text_string_to_metric_families

import xds.store.db
from xds.config import Settings
from xds.store.db import migrate, open_engine

__all__ = ["at_revision", "stamp", "samples_of", "total", "xds_env", "run_xds", "wait_http",
           "wait_port", "listening_processes"]


def at_revision(settings: Settings, revision: str) -> None:
    """Migrate the database of ``settings`` from empty to ``revision`` (an older schema)."""
    engine = open_engine(settings)
    try:
        migrate(engine, revision)
    finally:
        engine.dispose()


def stamp(settings: Settings, revision: str) -> None:
    """Record ``revision`` in the database of ``settings`` without migrating (``alembic stamp``)."""
    cfg = Config()
    cfg.set_main_option("script_location",
                        str(Path(xds.store.db.__file__).resolve().parent / "migrations"))
    engine = open_engine(settings)
    try:
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.stamp(cfg, revision)
            conn.commit()
    finally:
        engine.dispose()


def samples_of(base: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples named ``name`` (``xds_requests_total``) in ``base``/metrics, by their sorted
    labels."""
    response = httpx.get(base + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def total(samples: dict[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    """The sum of the ``samples`` whose labels include ``labels``."""
    return sum(value for key, value in samples.items() if set(labels.items()) <= set(key))


def xds_env(**variables: str) -> dict[str, str]:
    """This environment without XDS_* and PROMETHEUS_*, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDS_", "PROMETHEUS_"))}
    return env | variables


def run_xds(args: Sequence[str], env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m xds ARGS`` run to its end; its output as text."""
    return subprocess.run([sys.executable, "-m", "xds", *args], env=env or xds_env(),
                          capture_output=True, text=True, timeout=timeout)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> httpx.Response:
    """The first answer of ``url``, waiting while ``proc`` starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.HTTPError:
            assert proc.poll() is None, f"xds exited with {proc.returncode}"
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.1)


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            assert proc.poll() is None, f"xds exited with {proc.returncode}"
            assert time.monotonic() < deadline, f"port {port} never opened"
            time.sleep(0.1)


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(inode)
    return inodes


def listening_processes(port: int, pids: Sequence[int]) -> tuple[int, set[int]]:
    """(how many sockets listen on ``port``, which of ``pids`` hold one of them)."""
    inodes = _listening_inodes(port)
    holders = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            fds = list(fd_dir.iterdir())
        except OSError:  # the process is gone
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:  # closed while listed
                continue
            if link in {f"socket:[{inode}]" for inode in inodes}:
                holders.add(pid)
    return len(inodes), holders
