"""Attachments spooled to disk while SHA-1 (XDS ``hash``) and SHA-256 are computed on the fly."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import queue
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from .faults import SoapFault

__all__ = ["SpoolWriter", "Attachment", "Spool"]

_WHITESPACE = b" \t\r\n\f\v"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A received binary: a temp file plus its size and lower-case hex digests of the raw octets.

    The receiver owns ``path`` only while the request is processed; a handler that keeps the
    content moves the file (``os.replace``) and the endpoint then leaves it alone.
    """

    content_id: str
    content_type: str
    path: Path
    size: int
    sha1: str
    sha256: str


class Spool:
    """A temp file in ``spool_dir`` being written chunk by chunk, optionally base64-decoding.

    ``write`` takes the next chunk, ``finish`` closes the file and returns its ``Attachment``,
    ``discard`` closes and deletes it. Raises ``SoapFault`` (Sender) for bad base64.
    """

    def __init__(self, spool_dir: Path, *, base64_encoded: bool = False) -> None:
        spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=spool_dir, prefix="att-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._sha1 = hashlib.sha1()
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._decoder = _Base64Decoder() if base64_encoded else None

    def write(self, data: bytes) -> None:
        """Append ``data`` (base64 text when the spool decodes)."""
        if self._decoder is not None:
            data = self._decoder.feed(data)
        if data:
            self._file.write(data)
            self._sha1.update(data)
            self._sha256.update(data)
            self._size += len(data)

    def write_all(self, chunks: list[bytes]) -> None:
        """``write`` each chunk in order (one call per worker-thread hop)."""
        for chunk in chunks:
            self.write(chunk)

    @property
    def size(self) -> int:
        """Bytes written so far (after decoding)."""
        return self._size

    def sync(self) -> None:
        """Flush what was written to the disk (fdatasync)."""
        self._file.flush()
        os.fdatasync(self._file.fileno())

    def finish(self, content_id: str, content_type: str) -> Attachment:
        """Close the file and describe it."""
        if self._decoder is not None:
            self._decoder.finish()
        self._file.close()
        return Attachment(
            content_id=content_id,
            content_type=content_type,
            path=self.path,
            size=self._size,
            sha1=self._sha1.hexdigest(),
            sha256=self._sha256.hexdigest(),
        )

    def discard(self) -> None:
        """Close and delete the file; safe to call more than once."""
        try:
            self._file.close()
        except OSError:
            pass  # on a full disk the final flush of buffered bytes fails; the file goes anyway
        self.path.unlink(missing_ok=True)


class _Base64Decoder:
    # MIME base64 is wrapped at 76 columns, so whitespace is dropped before the 4-byte framing.
    def __init__(self) -> None:
        self._rest = b""
        self._padded = False

    def feed(self, data: bytes) -> bytes:
        data = self._rest + data.translate(None, _WHITESPACE)
        cut = len(data) - len(data) % 4
        self._rest = data[cut:]
        if not cut:
            return b""
        if self._padded:
            raise SoapFault("Sender", "base64 data continues after padding")
        quad = data[:cut]
        self._padded = quad.endswith(b"=")
        try:
            return base64.b64decode(quad, validate=True)
        except binascii.Error:
            raise SoapFault("Sender", "invalid base64 content") from None

    def finish(self) -> None:
        if self._rest:
            raise SoapFault("Sender", "truncated base64 content")


class SpoolWriter:
    """Feeds a Spool from a worker thread of its own, so that receiving the next bytes, hashing
    and writing these, and flushing earlier ones to disk all overlap.

    ``put`` queues a batch and only waits when ``_QUEUE_BATCHES`` batches are already pending
    (memory stays bounded); the thread writes them and calls fdatasync every ``_SYNC_EVERY``
    bytes, so the fsync before the file is adopted has little left to do.
    """

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=_QUEUE_BATCHES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="xds-spool", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        unsynced = 0
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep taking batches so that put() never blocks forever
            try:
                before = self.spool.size
                self.spool.write_all(batch)
                unsynced += self.spool.size - before
                if unsynced >= _SYNC_EVERY:
                    self.spool.sync()
                    unsynced = 0
            except BaseException as exc:  # reported by the next put() or by close()
                self._error = exc

    async def put(self, batch: list[bytes]) -> None:
        """Queue ``batch``; raises what writing an earlier batch raised."""
        if self._error is not None:
            raise self._error
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            await run_in_threadpool(self._queue.put, batch)

    def close(self) -> None:
        """Wait until every queued batch is written (blocking; call from a worker thread)."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop the thread, dropping what is queued (the caller then discards the spool)."""
        self._error = self._error or RuntimeError("aborted")
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._queue.put(None)
        self._thread.join(5)


_QUEUE_BATCHES = 4
_SYNC_EVERY = 64 * 1024 * 1024
