"""Streaming MTOM/XOP reception: multipart/related parts to disk, xop:Include resolution
(W3C XOP, IHE ITI TF-2 App. V.8, RFC 2387, RFC 2392)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from lxml import etree
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from .faults import SoapFault
from .ns import CHUNK_SIZE, XMIME, XOP, qname
from .spool import Attachment, Spool, SpoolWriter, _Base64Decoder

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = [
    "MtomMessage",
    "decode_inline",
    "parse_content_type",
    "read_multipart",
    "resolve_xop",
    "strip_cid",
]

_ROOT_TYPES = ("application/xop+xml", "application/soap+xml")
_IDENTITY_ENCODINGS = ("", "binary", "8bit", "7bit")
_INCLUDE = qname(XOP, "Include")


@dataclass(slots=True)
class MtomMessage:
    """A received multipart/related message: the root part in memory, the others on disk."""

    root: bytes
    root_content_type: str
    attachments: dict[str, Attachment] = field(default_factory=dict)

    def close(self) -> None:
        """Delete every attachment file that is still in the spool."""
        for attachment in self.attachments.values():
            attachment.path.unlink(missing_ok=True)


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """The lower-case media type and the parameters (lower-case names, unquoted values)."""
    mime, params = parse_options_header(value)
    return mime.decode("latin-1"), {
        k.decode("latin-1").strip().lower(): v.decode("latin-1").strip() for k, v in params.items()
    }


def strip_cid(value: str) -> str:
    """A Content-ID or ``start`` parameter without whitespace and angle brackets."""
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


async def read_multipart(
    chunks: AsyncIterator[bytes],
    content_type: str,
    spool_dir: Path,
    max_root_bytes: int,
    *,
    max_parts: int = 1000,
) -> MtomMessage:
    """Parse a multipart/related (MTOM/XOP) body as it arrives.

    The root part (the one named by the ``start`` parameter, else the first) is kept in memory up
    to ``max_root_bytes``; every other part streams into a temp file in ``spool_dir``. Raises
    ``SoapFault`` (Sender) for anything malformed, after deleting the files written so far.
    """
    mime, params = parse_content_type(content_type)
    boundary = params.get("boundary", "")
    if mime != "multipart/related" or not boundary:
        raise SoapFault("Sender", "expected multipart/related with a boundary parameter")
    start = strip_cid(params["start"]) if params.get("start") else None
    reader = _Reader(spool_dir, start, max_root_bytes, max_parts)
    try:
        parser = MultipartParser(boundary.encode("latin-1"), reader.callbacks())
        async for chunk in chunks:
            parser.write(chunk)
            await reader.drain()
        parser.finalize()
        await reader.drain()
        return reader.message()
    except FormParserError as exc:
        reader.discard()
        raise SoapFault("Sender", f"malformed multipart/related body: {exc}") from None
    except BaseException:
        reader.discard()
        raise


_WRITE_BATCH = 512 * 1024


class _Reader:
    # The parser's callbacks run synchronously inside parser.write(); like starlette's
    # MultiPartParser they only queue events, and drain() does the disk writes in a worker thread
    # afterwards, so the event loop never blocks on I/O and at most one chunk is queued.
    def __init__(self, spool_dir: Path, start: str | None, max_root: int, max_parts: int) -> None:
        self.spool_dir, self.start = spool_dir, start
        self.max_root, self.max_parts = max_root, max_parts
        self.events: list[tuple[str, bytes]] = []
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.headers: dict[str, str] = {}
        self.field = self.value = b""
        self.parts = 0
        self.spool: Spool | None = None
        self.writer: SpoolWriter | None = None
        self.spool_id = self.spool_type = ""
        self.in_root = False
        self.root: bytearray | None = None
        self.root_type = ""
        self.root_decoder: _Base64Decoder | None = None
        self.attachments: dict[str, Attachment] = {}
        self.ended = False

    def callbacks(self) -> MultipartCallbacks:
        def mark(kind: str) -> Callable[[], None]:
            return lambda: self.events.append((kind, b""))

        def data(kind: str) -> Callable[[bytes, int, int], None]:
            return lambda buf, start, end: self.events.append((kind, bytes(buf[start:end])))

        return {
            "on_part_begin": mark("begin"),
            "on_header_field": data("field"),
            "on_header_value": data("value"),
            "on_header_end": mark("header_end"),
            "on_headers_finished": mark("headers_done"),
            "on_part_data": data("data"),
            "on_part_end": mark("end"),
            "on_end": mark("done"),
        }

    async def drain(self) -> None:
        events, self.events = self.events, []
        for kind, data in events:
            if kind == "data" and self.spool is not None:
                self.pending.append(data)
                self.pending_bytes += len(data)
                continue
            await self._write()
            self._handle(kind, data)
            if kind == "end" and self.spool is not None:
                await self._finish_attachment()
        # Attachment data goes to disk in batches of about _WRITE_BATCH: one worker-thread hop
        # per socket read would cost more than the hashing and the write themselves.
        if self.pending_bytes >= _WRITE_BATCH:
            await self._write()

    async def _write(self) -> None:
        if not self.pending:
            return
        assert self.writer is not None
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        await self.writer.put(pending)

    def _handle(self, kind: str, data: bytes) -> None:
        if kind == "begin":
            self.headers, self.field, self.value = {}, b"", b""
        elif kind == "field":
            self.field += data
        elif kind == "value":
            self.value += data
        elif kind == "header_end":
            name = self.field.decode("latin-1").strip().lower()
            self.headers[name] = self.value.decode("latin-1").strip()
            self.field = self.value = b""
        elif kind == "headers_done":
            self._start_part()
        elif kind == "data" and self.in_root:
            self._root_data(data)
        elif kind == "end" and self.in_root:
            if self.root_decoder is not None:
                self.root_decoder.finish()
            self.in_root = False
        elif kind == "done":
            self.ended = True

    def _start_part(self) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise SoapFault("Sender", f"more than {self.max_parts} MIME parts")
        content_id = strip_cid(self.headers.get("content-id", ""))
        encoding = self.headers.get("content-transfer-encoding", "").lower()
        if encoding not in (*_IDENTITY_ENCODINGS, "base64"):
            raise SoapFault("Sender", f"unsupported Content-Transfer-Encoding {encoding!r}")
        is_root = content_id == self.start if self.start is not None else self.parts == 1
        if is_root and self.root is None:
            mime, _ = parse_content_type(self.headers.get("content-type", ""))
            if mime not in _ROOT_TYPES:
                raise SoapFault(
                    "Sender", f"MTOM root part has type {mime!r}, not application/xop+xml"
                )
            self.in_root, self.root, self.root_type = True, bytearray(), mime
            self.root_decoder = _Base64Decoder() if encoding == "base64" else None
            return
        if not content_id:
            raise SoapFault("Sender", "MIME part without Content-ID")
        if content_id in self.attachments or content_id == self.start:
            raise SoapFault("Sender", f"duplicate Content-ID <{content_id}>")
        self.spool = Spool(self.spool_dir, base64_encoded=encoding == "base64")
        self.writer = SpoolWriter(self.spool)
        self.spool_id = content_id
        self.spool_type = self.headers.get("content-type", "") or "application/octet-stream"

    def _root_data(self, data: bytes) -> None:
        assert self.root is not None
        if self.root_decoder is not None:
            data = self.root_decoder.feed(data)
        if len(self.root) + len(data) > self.max_root:
            raise SoapFault("Sender", f"MTOM root part exceeds {self.max_root} bytes", status=413)
        self.root += data

    async def _finish_attachment(self) -> None:
        assert self.spool is not None
        assert self.writer is not None
        spool, self.spool = self.spool, None
        writer, self.writer = self.writer, None
        try:
            await run_in_threadpool(writer.close)
            attachment = await run_in_threadpool(spool.finish, self.spool_id, self.spool_type)
        except BaseException:
            spool.discard()
            raise
        self.attachments[attachment.content_id] = attachment

    def message(self) -> MtomMessage:
        if not self.ended:
            raise SoapFault("Sender", "multipart/related body ends before its closing boundary")
        if self.root is None:
            where = f"with Content-ID <{self.start}>" if self.start else ""
            raise SoapFault("Sender", f"no MTOM root part {where}".strip())
        return MtomMessage(bytes(self.root), self.root_type, self.attachments)

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        if self.spool is not None:
            self.spool.discard()
            self.spool = None
        for attachment in self.attachments.values():
            attachment.path.unlink(missing_ok=True)


def resolve_xop(
    element: etree._Element, attachments: Mapping[str, Attachment]
) -> Attachment | None:
    """The attachment an optimized base64Binary ``element`` refers to, or ``None`` when the
    content is inline. Raises ``SoapFault`` (Sender) for a malformed or dangling xop:Include."""
    includes = [c for c in element if c.tag == _INCLUDE]
    if not includes:
        return None
    children = [c for c in element if isinstance(c.tag, str)]
    # XOP §3.1: the Include is the element's only content, without surrounding whitespace.
    if len(children) != 1 or (element.text or "").strip() or (includes[0].tail or "").strip():
        raise SoapFault("Sender", "xop:Include must be the only content of its element")
    href = (includes[0].get("href") or "").strip()
    if href[:4].lower() != "cid:":
        raise SoapFault("Sender", f"xop:Include href is not a cid: URL: {href!r}")
    cid = href[4:]
    # RFC 2392: the cid URL is the Content-ID, percent-encoded.
    found = attachments.get(cid) or attachments.get(unquote(cid))
    if found is None:
        raise SoapFault("Sender", f"xop:Include refers to a missing MIME part: {href}")
    return found


def decode_inline(element: etree._Element, spool_dir: Path) -> Attachment:
    """Decode the inline base64 text of ``element`` into a temp file in ``spool_dir``.

    The attachment has an empty ``content_id`` and the ``xmime:contentType`` of the element (or
    application/octet-stream). Raises ``SoapFault`` (Sender) for invalid base64.
    """
    if any(isinstance(c.tag, str) for c in element):
        raise SoapFault(
            "Sender", f"{etree.QName(element).localname} holds elements, not base64 text"
        )
    text = element.text or ""
    content_type = element.get(qname(XMIME, "contentType")) or "application/octet-stream"
    spool = Spool(spool_dir, base64_encoded=True)
    try:
        for offset in range(0, len(text), CHUNK_SIZE):
            spool.write(text[offset : offset + CHUNK_SIZE].encode("ascii", "replace"))
        return spool.finish("", content_type)
    except BaseException:
        spool.discard()
        raise
