"""``BlobStore`` on an S3-compatible object store (SeaweedFS, MinIO, AWS S3) through boto3.

Objects are keyed by content address, ``<prefix>ab/cd/<sha256>``, with the SHA-1 and size in
their metadata. A document reaches the store only once it is complete and its digests are known:
the SOAP/MTOM layer and the DICOM SCP spool each part to a local temp file while hashing it, and
``adopt`` uploads that file as a multipart upload straight under its final key. S3 makes an
object visible only when CompleteMultipartUpload succeeds, so a crash mid-upload leaves an
unfinished upload (removed by ``sweep``, i.e. ``xds blobs gc``), never a partial object.

Connection and server errors become ``StoreUnavailable`` after botocore's bounded retries and
timeouts, so an object store that is down is an answer (XDSRepositoryError, 503), not a hang.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from xds.store.blobs import READ_CHUNK, BlobInfo, StoredBlob, StoreFull, StoreUnavailable, \
    is_sha256, spool_chunks

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3BlobStore"]

#: Multipart part size and parallel parts per upload: 8 MiB x 4 bounds an upload's buffers to
#: ~32 MiB whatever the document's size (boto3's default 10 threads would hold 80 MiB).
PART_SIZE = 8 * 1024 * 1024
PARALLEL_PARTS = 4
_MISSING = {"404", "NoSuchKey", "NotFound"}
_FULL = {"EntityTooLarge", "QuotaExceeded", "InsufficientStorage", "507"}


class S3BlobStore:
    """Content-addressed objects in ``bucket`` under ``prefix`` (``""`` or ending in ``/``)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "", *,
                 spool_dir: Path | None = None, endpoint: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.spool_dir = spool_dir
        self._endpoint = endpoint
        self._transfer = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE,
                                        max_concurrency=PARALLEL_PARTS, io_chunksize=READ_CHUNK)

    @classmethod
    def from_url(cls, url: str, *, spool_dir: Path | None = None) -> S3BlobStore:
        """The store of ``s3://bucket[/prefix]?endpoint=URL[&region=R]``; credentials come from
        boto3's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, a role)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"blob URL {url!r}: expected s3://bucket[/prefix]?endpoint=URL")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValueError(f"blob URL {url!r}: unknown parameters {sorted(unknown)}")
        endpoint = query.get("endpoint", "")
        # Bounded: an object store that does not answer (a lost replica can hold a SeaweedFS
        # PUT for minutes) fails the request in about 30 s instead of hanging it; a healthy
        # store answers an 8 MiB part in well under a second.
        config = Config(
            connect_timeout=5, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"}, max_pool_connections=32,
            # SeaweedFS and MinIO may lack the newer default CRC checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required")
        # boto3's default session: the S3 service model (~12 MB) is parsed once per process
        # (and, with --workers, once before the fork), not once per store.
        client = boto3.client(
            "s3", endpoint_url=endpoint or None, config=config,
            region_name=query.get("region") or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        return cls(client, parts.netloc, unquote(parts.path), spool_dir=spool_dir,
                   endpoint=endpoint)

    def key(self, sha256: str) -> str:
        """The object key of ``sha256``."""
        if not is_sha256(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return f"{self.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    # -- BlobStore ---------------------------------------------------------------------------

    def adopt(self, path: Path, info: BlobInfo) -> bool:
        try:
            if self.exists(info.sha256):
                return False
            with _errors(f"uploading {info.sha256}"):
                self.client.upload_file(
                    str(path), self.bucket, self.key(info.sha256), Config=self._transfer,
                    ExtraArgs={"Metadata": {"sha1": info.sha1, "size": str(info.size)},
                               "ContentType": "application/octet-stream"})
            return True
        finally:
            path.unlink(missing_ok=True)

    def put(self, chunks: Iterable[bytes]) -> tuple[BlobInfo, bool]:
        # The key is the digest, known only at the end: spool locally (hashing), then adopt.
        path, info = spool_chunks(chunks, self.spool_dir)
        return info, self.adopt(path, info)  # adopt removes the file either way

    def open(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        options: dict[str, Any] = {}
        if start or end is not None:
            if end is not None and end <= start:
                return iter(())
            options["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with _errors(f"reading {sha256}"):
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256),
                                          **options)["Body"]
        return _chunks(body, sha256)

    def exists(self, sha256: str) -> bool:
        try:
            with _errors(f"looking up {sha256}"):
                self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except FileNotFoundError:
            return False
        return True

    def delete(self, sha256: str) -> None:
        with _errors(f"deleting {sha256}"):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    @contextmanager
    def local_copy(self, sha256: str) -> Iterator[Path]:
        if self.spool_dir is not None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.spool_dir, prefix="get-")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.open(sha256):
                    out.write(chunk)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def scan(self) -> Iterator[StoredBlob]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        with _errors("listing objects"):
            for page in pages:
                for item in page.get("Contents", ()):
                    name = item["Key"].rsplit("/", 1)[-1]
                    if is_sha256(name) and item["Key"] == self.key(name):
                        yield StoredBlob(name, item["Size"], item["LastModified"].timestamp())

    def sweep(self, older_than: float) -> int:
        removed = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        with _errors("listing unfinished uploads"):
            for page in pages:
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() < older_than:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                        removed += 1
        return removed

    def check(self) -> None:
        key = f"{self.prefix}ready/{uuid.uuid4().hex}"
        with _errors("checking the bucket"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"ok")
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def describe(self) -> str:
        where = f" at {self._endpoint}" if self._endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist yet (``xds blobs init``, tests)."""
        try:
            with _errors("looking up the bucket"):
                self.client.head_bucket(Bucket=self.bucket)
        except FileNotFoundError:
            with _errors("creating the bucket"):
                self.client.create_bucket(Bucket=self.bucket)


def _chunks(body: Any, sha256: str) -> Iterator[bytes]:
    try:
        with _errors(f"reading {sha256}"):
            yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()


@contextmanager
def _errors(doing: str) -> Iterator[None]:
    """botocore's errors as the BlobStore's: FileNotFoundError, StoreFull, StoreUnavailable."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _MISSING:
            raise FileNotFoundError(f"object store: {doing}: not found") from None
        if code in _FULL:
            raise StoreFull(28, f"object store is full ({code})") from exc
        raise StoreUnavailable(f"object store: {doing}: {code} {error.get('Message', '')}"
                               .rstrip()) from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"object store: {doing}: {exc}") from exc
