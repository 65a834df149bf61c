"""Content-addressed document store: bytes kept once under their SHA-256 (filesystem backend).

The interface is the small ``BlobStore`` protocol so that an S3-compatible backend can replace
the filesystem without touching the actors.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from xds.soap.ns import CHUNK_SIZE

__all__ = ["BlobInfo", "BlobStore", "FileBlobStore", "StoreFull", "READ_CHUNK"]

#: Reads for streaming out are larger than the SOAP layer's CHUNK_SIZE: each chunk costs a
#: worker-thread hop in the response, and 1 MiB keeps that cost small while memory stays flat.
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the store knows of some bytes: SHA-256 (address), SHA-1 (XDS ``hash``), size."""

    sha256: str
    sha1: str
    size: int


class StoreFull(OSError):
    """The store has no room left (maps to XDSRepositoryOutOfResources)."""


class BlobStore(Protocol):
    """Where documents live, addressed by the SHA-256 of their bytes."""

    def adopt(self, path: Path, info: BlobInfo) -> bool:
        """Move the file at ``path`` (whose digests are ``info``) into the store.

        True when the bytes are new; False when identical bytes were already stored (the file
        at ``path`` is then removed). Raises StoreFull when there is no room.
        """
        ...

    def put(self, chunks: Iterable[bytes]) -> tuple[BlobInfo, bool]:
        """Store the bytes of ``chunks``; their BlobInfo and whether they were new."""
        ...

    def open(self, sha256: str) -> Iterator[bytes]:
        """The stored bytes in chunks; FileNotFoundError when absent."""
        ...

    def exists(self, sha256: str) -> bool:
        """True when bytes with this SHA-256 are stored."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove the bytes (no error when already gone)."""
        ...


class FileBlobStore:
    """``BlobStore`` on a directory: ``<root>/ab/cd/<sha256>``, written via temp file, fsync, rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the bytes of ``sha256`` live (whether or not they exist)."""
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def adopt(self, path: Path, info: BlobInfo) -> bool:
        target = self.path(info.sha256)
        if target.exists():
            path.unlink(missing_ok=True)
            return False
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _fsync_file(path)
            try:
                os.replace(path, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Spool on another file system: copy into our own temp area first.
                self._copy_in(path, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            raise _full_or(exc) from exc
        return True

    def put(self, chunks: Iterable[bytes]) -> tuple[BlobInfo, bool]:
        sha256, sha1, size = hashlib.sha256(), hashlib.sha1(), 0
        fd, name = tempfile.mkstemp(dir=self._tmp)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    sha256.update(chunk)
                    sha1.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            info = BlobInfo(sha256=sha256.hexdigest(), sha1=sha1.hexdigest(), size=size)
            return info, self.adopt(tmp, info)
        except OSError as exc:
            raise _full_or(exc) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def open(self, sha256: str) -> Iterator[bytes]:
        with self.path(sha256).open("rb") as f:
            while chunk := f.read(READ_CHUNK):
                yield chunk

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def _copy_in(self, path: Path, target: Path) -> None:
        tmp = self._tmp / uuid.uuid4().hex
        try:
            with path.open("rb") as src, tmp.open("wb") as dst:
                while chunk := src.read(CHUNK_SIZE):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, target)
            path.unlink(missing_ok=True)
        finally:
            tmp.unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _full_or(exc: OSError) -> OSError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StoreFull(exc.errno, "document store is full")
    return exc
