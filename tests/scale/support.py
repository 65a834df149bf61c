"""Helpers of the scale-out tests: ``xds serve`` as a real process that can be ``kill -9``-ed
and restarted on the same port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.server import free_port
from xds.config import Settings

__all__ = ["ServeProcess"]


class ServeProcess:
    """``xds serve`` of registry + repository on ``settings``' database and blob store, its own
    port and data directory (spool), as a stateless worker of a larger deployment."""

    def __init__(self, data_dir: Path, settings: Settings, *, workers: int = 1) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.workers = workers
        self.kills = 0
        self._env = {**os.environ, "XDS_DATA_DIR": str(data_dir),
                     "XDS_DATABASE_URL": settings.database_url, "XDS_BLOB_URL": settings.blob_url,
                     "XDS_PORT": str(self.port), "XDS_ACTORS": "registry,repository",
                     "XDS_MLLP_PORT": "0", "XDS_DICOM_PORT": "0",
                     "XDS_REPOSITORY_UNIQUE_ID": settings.repository_unique_id,
                     "XDS_LOG_LEVEL": "warning"}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        """Start (or restart) the process and wait until its port accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "serve.log").open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "xds", "serve", "--workers", str(self.workers)],
            env=self._env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"xds serve exited with {self._proc.returncode}: "
                                   f"{(self.data_dir / 'serve.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("xds serve did not open its port")

    def kill9(self) -> None:
        """SIGKILL the whole process group (the server and any worker it forked)."""
        assert self._proc is not None
        os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait(10)
        self.kills += 1

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 10 s."""
        if self._proc is None or self._proc.poll() is not None:
            return
        os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(10)
