"""MTOM/XOP encoding of an outgoing SOAP 1.2 message as a streamed multipart/related body
(IHE ITI TF-2 App. V.8; framing as in httpx ``_multipart.py``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from lxml import etree
from starlette.concurrency import iterate_in_threadpool

from .ns import CHUNK_SIZE, XOP, qname

__all__ = [
    "ChunkSource",
    "WRITE_SIZE",
    "coalesce",
    "MtomStream",
    "OutgoingAttachment",
    "bytes_attachment",
    "encode_mtom",
    "file_attachment",
    "new_content_id",
    "xop_include",
]

#: What ``OutgoingAttachment.open`` returns: chunks, read lazily while the body is sent.
ChunkSource = AsyncIterator[bytes] | Iterator[bytes]

_ROOT_TYPE = 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'


@dataclass(slots=True)
class OutgoingAttachment:
    """One MIME part to send after the envelope; ``content_id`` is without ``<>``.

    ``size`` (bytes) lets the message carry a Content-Length; ``open`` is called once, when the
    part is due, and its iterator is consumed to the end. Sync iterators suit both
    ``MtomStream.aiter_bytes`` (read in a worker thread) and ``MtomStream.iter_bytes``.
    """

    content_id: str
    content_type: str
    size: int | None
    open: Callable[[], ChunkSource]


def new_content_id() -> str:
    """A fresh globally unique Content-ID (without ``<>``)."""
    return f"{uuid.uuid4()}@xds"


def xop_include(content_id: str) -> etree._Element:
    """An ``xop:Include`` referring to the part ``content_id``, for a base64Binary element."""
    include = etree.Element(qname(XOP, "Include"), nsmap={"xop": XOP})
    # RFC 2392: the cid URL percent-encodes what a URL may not carry.
    include.set("href", "cid:" + quote(content_id, safe="@.-_~!$&'()*+,;=:"))
    return include


def file_attachment(path: Path, content_id: str, content_type: str) -> OutgoingAttachment:
    """An attachment read from ``path`` in CHUNK_SIZE pieces; size from the file system."""

    def read() -> Iterator[bytes]:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                yield chunk

    return OutgoingAttachment(content_id, content_type, path.stat().st_size, read)


def bytes_attachment(data: bytes, content_id: str, content_type: str) -> OutgoingAttachment:
    """An attachment whose content is already in memory (small parts, tests)."""
    return OutgoingAttachment(content_id, content_type, len(data), lambda: iter((data,)))


class MtomStream:
    """A multipart/related body: the root envelope part, then each attachment, streamed.

    ``headers`` holds Content-Type and, when every part size is known, Content-Length.
    Iterate ``aiter_bytes()`` in async code (a Starlette response, httpx.AsyncClient) or
    ``iter_bytes()`` in sync code (httpx.Client) when every source is a sync iterator.
    """

    def __init__(
        self,
        root: bytes,
        attachments: Sequence[OutgoingAttachment] = (),
        *,
        boundary: str | None = None,
        root_id: str | None = None,
    ) -> None:
        self.boundary = boundary or f"MIMEBoundary_{uuid.uuid4().hex}"
        self.root_id = root_id or f"root.{new_content_id()}"
        self.root = root
        self.attachments = list(attachments)
        for a in self.attachments:
            _check_header_value(a.content_id, a.content_type)
        self.content_type = (
            f'multipart/related; boundary={self.boundary}; type="application/xop+xml"; '
            f'start="<{self.root_id}>"; start-info="application/soap+xml"'
        )
        self.content_length = self._length()

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers for this body."""
        headers = {"Content-Type": self.content_type}
        if self.content_length is not None:
            headers["Content-Length"] = str(self.content_length)
        return headers

    def _part_head(self, content_id: str, content_type: str) -> bytes:
        return (
            f"--{self.boundary}\r\n"
            f"Content-Type: {content_type}\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{content_id}>\r\n\r\n"
        ).encode("latin-1")

    def _tail(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode("latin-1")

    def _length(self) -> int | None:
        total = len(self._part_head(self.root_id, _ROOT_TYPE)) + len(self.root) + 2
        for a in self.attachments:
            if a.size is None:
                return None
            total += len(self._part_head(a.content_id, a.content_type)) + a.size + 2
        return total + len(self._tail())

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk.

        Runs of attachments with sync sources are read in one worker thread and sent in writes
        of about ``WRITE_SIZE`` (``coalesce``): one thread hop per write, however small the
        parts (RAD-69 answers carry hundreds of 0.5 MB CT slices). Async sources are sent as
        they come.
        """
        yield self._part_head(self.root_id, _ROOT_TYPE) + self.root + b"\r\n"
        index = 0
        source: ChunkSource | None = None
        while index < len(self.attachments):
            a = self.attachments[index]
            source = a.open() if source is None else source
            if isinstance(source, AsyncIterator):
                yield self._part_head(a.content_id, a.content_type)
                sent = 0
                async for chunk in source:
                    sent += len(chunk)
                    yield chunk
                _check_size(a, sent)
                yield b"\r\n"
                index, source = index + 1, None
                continue
            run = _SyncRun(self, index, source)
            async for block in iterate_in_threadpool(coalesce(run.pieces())):
                yield block
            # The run ends at the last part or at the first async source, already opened.
            index, source = run.index, run.next_source
        yield self._tail()

    def iter_bytes(self) -> Iterator[bytes]:
        """The body, chunk by chunk, for sync callers; every source must be a sync iterator."""
        yield self._part_head(self.root_id, _ROOT_TYPE) + self.root + b"\r\n"
        for a in self.attachments:
            yield self._part_head(a.content_id, a.content_type)
            source = a.open()
            if isinstance(source, AsyncIterator):
                raise TypeError(f"attachment <{a.content_id}> has an async source")
            sent = 0
            for chunk in source:
                sent += len(chunk)
                yield chunk
            _check_size(a, sent)
            yield b"\r\n"
        yield self._tail()


#: Size of the writes ``coalesce`` makes (``MtomStream.aiter_bytes``, WADO-RS bodies): one
#: worker-thread hop per write, and each answer in flight holds about this much. Measured
#: (benchmarks/imaging.py, benchmarks/scale.py): RAD-69 of 400 small instances 1,203 / 1,780 /
#: 1,945 MB/s at 1 / 2 / 4 MiB; a 1 GB ITI-43 through S3 peaks at 144 / 147 MB RSS at 1 / 2
#: MiB, and 4 MiB costs it ~11 MB more than 1 MiB (over the 150 MB target).
WRITE_SIZE = 2 * 1024 * 1024


def coalesce(pieces: Iterable[bytes], size: int = WRITE_SIZE) -> Iterator[bytes]:
    """``pieces`` joined into writes of at least ``size`` bytes (the last may be shorter).

    A body read from sync sources costs a worker-thread hop per chunk; joining small chunks
    keeps that to one hop per write while memory stays bounded by ``size`` plus one chunk.
    """
    pending: list[bytes] = []
    held = 0
    for piece in pieces:
        pending.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)


class _SyncRun:
    """Consecutive attachments with sync sources, from ``index`` on: their parts as pieces."""

    def __init__(self, stream: MtomStream, index: int, first: Iterator[bytes]) -> None:
        self.stream, self.index, self.first = stream, index, first
        #: The async source that ended the run (opened, not yet read), if one did.
        self.next_source: AsyncIterator[bytes] | None = None

    def pieces(self) -> Iterator[bytes]:
        attachments = self.stream.attachments
        source: ChunkSource = self.first
        while not isinstance(source, AsyncIterator):
            a = attachments[self.index]
            yield self.stream._part_head(a.content_id, a.content_type)
            sent = 0
            for chunk in source:
                sent += len(chunk)
                yield chunk
            _check_size(a, sent)
            yield b"\r\n"
            self.index += 1
            if self.index == len(attachments):
                return
            source = attachments[self.index].open()
        self.next_source = source


def encode_mtom(
    root: bytes,
    attachments: Sequence[OutgoingAttachment] = (),
    *,
    boundary: str | None = None,
    root_id: str | None = None,
) -> MtomStream:
    """The MTOM form of the envelope ``root`` followed by ``attachments``.

    Usage: ``stream = encode_mtom(envelope, [file_attachment(path, cid, "application/pdf")])``,
    then send ``stream.headers`` and ``stream.aiter_bytes()``.
    """
    return MtomStream(root, attachments, boundary=boundary, root_id=root_id)


def _check_header_value(content_id: str, content_type: str) -> None:
    # RFC 2392/5322: a Content-ID is printable ASCII without spaces; neither may break a header.
    if (
        not content_id.isascii()
        or not content_id.isprintable()
        or any(c in content_id for c in " <>")
    ):
        raise ValueError(f"invalid Content-ID {content_id!r}")
    if not content_type.isascii() or not content_type.isprintable():
        raise ValueError(f"invalid Content-Type {content_type!r}")


def _check_size(attachment: OutgoingAttachment, sent: int) -> None:
    # Content-Length is already on the wire; a short or long part would corrupt the framing.
    if attachment.size is not None and sent != attachment.size:
        raise RuntimeError(
            f"attachment <{attachment.content_id}> declared {attachment.size} bytes, sent {sent}"
        )
