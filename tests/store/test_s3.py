"""The S3 blob backend on a real SeaweedFS: content addressing, dedup, ranges, sweep, faults."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path

import pytest

from tests.seaweed import BUCKET, Seaweed
from tests.server import free_port
from xds.config import Settings
from xds.store.blobs import BlobInfo, FileBlobStore, StoreUnavailable, digest_file, \
    open_blob_store
from xds.store.s3 import PART_SIZE, S3BlobStore


@pytest.fixture
def store(seaweed: Seaweed, tmp_path: Path) -> S3BlobStore:
    return seaweed.store(BUCKET, f"docs-{secrets.token_hex(4)}", spool_dir=tmp_path / "spool")


def _file(tmp_path: Path, data: bytes) -> tuple[Path, BlobInfo]:
    path = tmp_path / secrets.token_hex(4)
    path.write_bytes(data)
    return path, digest_file(path)


def test_adopt_stores_under_the_content_address_once(store: S3BlobStore, tmp_path: Path) -> None:
    data = os.urandom(1000)
    path, info = _file(tmp_path, data)
    assert store.adopt(path, info) is True
    assert not path.exists()  # the spool file is consumed either way
    again, _ = _file(tmp_path, data)
    assert store.adopt(again, info) is False
    assert not again.exists()
    assert b"".join(store.open(info.sha256)) == data
    head = store.client.head_object(Bucket=store.bucket, Key=store.key(info.sha256))
    assert head["Metadata"] == {"sha1": info.sha1, "size": "1000"}
    assert store.key(info.sha256) == \
        f"{store.prefix}{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"
    assert [b.sha256 for b in store.scan()] == [info.sha256]


def test_multipart_upload_round_trips_byte_identical(store: S3BlobStore, tmp_path: Path) -> None:
    data = os.urandom(2 * PART_SIZE + 12345)  # three parts
    path, info = _file(tmp_path, data)
    assert store.adopt(path, info)
    got = hashlib.sha256()
    size = 0
    for chunk in store.open(info.sha256):
        got.update(chunk)
        size += len(chunk)
    assert (got.hexdigest(), size) == (info.sha256, len(data))
    assert [b.size for b in store.scan()] == [len(data)]


def test_put_streams_and_dedups(store: S3BlobStore) -> None:
    chunks = [os.urandom(70_000) for _ in range(5)]
    info, new = store.put(iter(chunks))
    assert new and info.size == 350_000
    assert info.sha256 == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert store.put(iter(chunks)) == (info, False)
    assert not any((store.spool_dir or Path("/nonexistent")).iterdir())


def test_ranges(store: S3BlobStore) -> None:
    data = bytes(range(256)) * 10
    info, _ = store.put([data])
    assert b"".join(store.open(info.sha256, 10, 20)) == data[10:20]
    assert b"".join(store.open(info.sha256, 2500)) == data[2500:]
    assert b"".join(store.open(info.sha256, 5, 5)) == b""


def test_missing_object_is_file_not_found(store: S3BlobStore) -> None:
    absent = hashlib.sha256(b"never stored").hexdigest()
    assert store.exists(absent) is False
    with pytest.raises(FileNotFoundError):
        store.open(absent)
    with pytest.raises(FileNotFoundError), store.local_copy(absent):
        pass
    store.delete(absent)  # no error


def test_delete_and_local_copy(store: S3BlobStore) -> None:
    info, _ = store.put([b"dicom-ish bytes"])
    with store.local_copy(info.sha256) as path:
        assert path.read_bytes() == b"dicom-ish bytes"
    assert not path.exists()
    store.delete(info.sha256)
    assert not store.exists(info.sha256)
    assert list(store.scan()) == []


def test_sweep_aborts_unfinished_uploads_only_when_old(store: S3BlobStore) -> None:
    key = store.key(hashlib.sha256(b"crashed").hexdigest())
    store.client.create_multipart_upload(Bucket=store.bucket, Key=key)
    assert store.sweep(time.time() - 3600) == 0  # started just now: may still complete
    assert store.sweep(time.time() + 5) == 1
    left = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    assert left.get("Uploads", []) == []
    assert list(store.scan()) == []  # an unfinished upload never shows as an object


def test_store_down_is_store_unavailable_not_a_hang(tmp_path: Path) -> None:
    store = S3BlobStore.from_url(f"s3://xds-blobs?endpoint=http://127.0.0.1:{free_port()}",
                                 spool_dir=tmp_path)
    path, info = _file(tmp_path, b"bytes")
    started = time.monotonic()
    for call in (store.check, lambda: store.exists(info.sha256),
                 lambda: store.open(info.sha256), lambda: store.adopt(path, info)):
        with pytest.raises(StoreUnavailable):
            call()
    assert time.monotonic() - started < 60
    assert not path.exists()  # the spool file is not left behind


def test_open_blob_store_picks_the_backend(tmp_path: Path, seaweed: Seaweed) -> None:
    assert isinstance(open_blob_store(Settings(data_dir=tmp_path)), FileBlobStore)
    custom = open_blob_store(Settings(data_dir=tmp_path, blob_url=f"file://{tmp_path}/b"))
    assert isinstance(custom, FileBlobStore) and custom.root == tmp_path / "b"
    s3 = open_blob_store(Settings(data_dir=tmp_path, blob_url=seaweed.url("xds-x", "p/q")))
    assert isinstance(s3, S3BlobStore) and (s3.bucket, s3.prefix) == ("xds-x", "p/q/")
    for bad in ("ftp://host/x", "s3://", "s3://b?endpoint=http://x&colour=red"):
        with pytest.raises(ValueError):
            open_blob_store(Settings(data_dir=tmp_path, blob_url=bad))
