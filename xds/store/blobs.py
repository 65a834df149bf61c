"""Content-addressed document store: bytes kept once under their SHA-256.

Actors see only the small ``BlobStore`` protocol; ``open_blob_store`` picks the backend from
``Settings.blob_url``: the filesystem (``FileBlobStore``, the default, ``<data_dir>/blobs``) or
an S3-compatible object store (``xds.store.s3.S3BlobStore``, ``s3://bucket/prefix?endpoint=``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from xds.soap.ns import CHUNK_SIZE

if TYPE_CHECKING:
    from xds.config import Settings

__all__ = ["BlobInfo", "BlobStore", "FileBlobStore", "StoredBlob", "StoreFull", "StoreUnavailable",
           "READ_CHUNK", "open_blob_store", "digest_file", "is_sha256", "spool_chunks",
           "sweep_files"]

#: Reads for streaming out are larger than the SOAP layer's CHUNK_SIZE: each chunk costs a
#: worker-thread hop in the response, and 1 MiB keeps that cost small while memory stays flat.
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the store knows of some bytes: SHA-256 (address), SHA-1 (XDS ``hash``), size."""

    sha256: str
    sha1: str
    size: int


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """One object found by ``BlobStore.scan``: its address, size and last-modified time (epoch)."""

    sha256: str
    size: int
    modified: float


class StoreFull(OSError):
    """The store has no room left (maps to XDSRepositoryOutOfResources)."""


class StoreUnavailable(OSError):
    """The store cannot be reached or answers with an error (maps to XDSRepositoryError, 503)."""


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

    def open(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The stored bytes ``[start, end)`` (to the end when ``end`` is None) in chunks.

        FileNotFoundError when absent, StoreUnavailable when the store cannot be read; both are
        raised before the first chunk (the generator checks on its first ``next``).
        """
        ...

    def exists(self, sha256: str) -> bool:
        """True when bytes with this SHA-256 are stored."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove the bytes (no error when already gone)."""
        ...

    def local_copy(self, sha256: str) -> AbstractContextManager[Path]:
        """A file holding the bytes for the block (the stored file itself, or a temp copy)."""
        ...

    def scan(self) -> Iterator[StoredBlob]:
        """Every stored object (for ``xds blobs gc`` and ``verify``)."""
        ...

    def sweep(self, older_than: float) -> int:
        """Remove what crashed writers left (temp files, unfinished multipart uploads) that
        was started before the epoch time ``older_than``; how many were removed."""
        ...

    def check(self) -> None:
        """Raise StoreUnavailable unless the store can be written and read (``/readyz``)."""
        ...

    def describe(self) -> str:
        """Where the bytes live, for logs (never credentials)."""
        ...


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store of ``settings.blob_url``: empty or ``file:///path`` for the filesystem
    (default ``<data_dir>/blobs``), ``s3://bucket[/prefix]?endpoint=URL`` for S3."""
    url = settings.blob_url
    if not url:
        return FileBlobStore(settings.blob_dir)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return FileBlobStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        from xds.store.s3 import S3BlobStore

        return S3BlobStore.from_url(url, spool_dir=settings.spool_dir)
    raise ValueError(f"blob URL {url!r}: use file:///path or s3://bucket[/prefix]?endpoint=URL")


def is_sha256(value: str) -> bool:
    """True for a lower-case hex SHA-256 digest (a blob address)."""
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def spool_chunks(chunks: Iterable[bytes], directory: Path | None) -> tuple[Path, BlobInfo]:
    """Write ``chunks`` to a new temp file in ``directory`` (None: the system's), hashing them
    on the way; the file (the caller's to move or remove) and its BlobInfo."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    sha256, sha1, size = hashlib.sha256(), hashlib.sha1(), 0
    fd, name = tempfile.mkstemp(dir=directory, prefix="put-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                sha256.update(chunk)
                sha1.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, BlobInfo(sha256=sha256.hexdigest(), sha1=sha1.hexdigest(), size=size)


def sweep_files(directory: Path, older_than: float) -> int:
    """Remove the regular files directly in ``directory`` last written before the epoch time
    ``older_than`` (what a killed writer left); directories stay. How many were removed."""
    removed = 0
    for path in directory.glob("*"):
        try:
            st = path.lstat()
        except FileNotFoundError:  # removed while we looked
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mtime < older_than:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def digest_file(path: Path) -> BlobInfo:
    """The BlobInfo of the file at ``path`` (read once, in chunks)."""
    sha256, sha1, size = hashlib.sha256(), hashlib.sha1(), 0
    with path.open("rb") as f:
        while chunk := f.read(READ_CHUNK):
            sha256.update(chunk)
            sha1.update(chunk)
            size += len(chunk)
    return BlobInfo(sha256=sha256.hexdigest(), sha1=sha1.hexdigest(), size=size)


class FileBlobStore:
    """``BlobStore`` on a directory: ``<root>/ab/cd/<sha256>``, written via temp file, fsync, rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the bytes of ``sha256`` live (whether or not they exist)."""
        if not is_sha256(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def adopt(self, path: Path, info: BlobInfo) -> bool:
        target = self.path(info.sha256)
        if target.exists():
            path.unlink(missing_ok=True)
            # Found, not written: fresh again for ``xds blobs gc`` (whose grace period spares
            # what a submission in flight may still commit to).
            with suppress(FileNotFoundError):
                os.utime(target)
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
        tmp: Path | None = None
        try:
            tmp, info = spool_chunks(chunks, self._tmp)
            return info, self.adopt(tmp, info)
        except OSError as exc:
            raise _full_or(exc) from exc
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    def open(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        f = self.path(sha256).open("rb")  # FileNotFoundError now, not at the first chunk
        return _read_range(f, start, end)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    @contextmanager
    def local_copy(self, sha256: str) -> Iterator[Path]:
        path = self.path(sha256)
        if not path.exists():
            raise FileNotFoundError(f"blob {sha256} is not stored")
        yield path

    def scan(self) -> Iterator[StoredBlob]:
        for top in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            for path in sorted(top.glob("[0-9a-f][0-9a-f]/*")):
                if is_sha256(path.name):
                    st = _stat(path)
                    if st is not None:
                        yield StoredBlob(path.name, st.st_size, st.st_mtime)

    def sweep(self, older_than: float) -> int:
        return sweep_files(self._tmp, older_than)

    def check(self) -> None:
        try:
            fd, name = tempfile.mkstemp(dir=self._tmp, prefix="ready-")
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            raise StoreUnavailable(exc.errno, f"blob store {self.root}: {exc.strerror}") from exc

    def describe(self) -> str:
        return str(self.root)

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


def _read_range(f: IO[bytes], start: int, end: int | None) -> Iterator[bytes]:
    with f:
        if start:
            f.seek(start)
        left = None if end is None else end - start
        while left is None or left > 0:
            chunk = f.read(READ_CHUNK if left is None else min(READ_CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:  # removed while we looked
        return None


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
