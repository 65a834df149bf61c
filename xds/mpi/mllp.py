"""The PIX Manager's MLLP listener: ITI-8 feeds and ITI-9 queries over HL7 v2 (MLLP, ITI TF-2x App. C).

One frame in, one answer out, on the same connection. The MPI's SQL work runs in a thread.
Framing is python-hl7's (``hl7.mllp``) with a reader that resynchronises on the start block
and caps the frame size; see ``_FrameReader`` for what the stock reader does instead.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

from hl7.mllp import HL7StreamProtocol, HL7StreamReader, InvalidBlockError

from xds.audit.events import REQUEST, RequestInfo
from xds.config import Settings
from xds.hl7 import (
    AckCode,
    ErrorCode,
    Header,
    HL7Error,
    Location,
    build_ack,
    decode,
    encode,
    peek_header,
)
from xds.mpi import iti8, iti9
from xds.mpi.index import PatientIndex
from xds.security.accept import OnRefused, TlsAccept

__all__ = ["start_mllp_server", "MAX_FRAME_BYTES", "IDLE_TIMEOUT"]

#: Largest frame accepted; a longer one is answered AR and its connection closed.
MAX_FRAME_BYTES = 1024 * 1024
#: Seconds a connection may take to deliver its next whole frame (half-open peers, slowloris).
IDLE_TIMEOUT = 300.0
_DRAIN_SECONDS = 5.0  # after refusing an oversized frame, how long its rest is read and dropped
_DRAIN_BYTES = 64 * 1024 * 1024
_START_BLOCK, _END_BLOCK = b"\x0b", b"\x1c\x0d"

_Handler = Callable[[Any, Header, PatientIndex], str]
#: MSH-9 (message code, trigger event) -> transaction.
_HANDLERS: dict[tuple[str, str], _Handler] = {
    **{("ADT", trigger): iti8.handle for trigger in iti8.TRIGGERS},
    ("QBP", "Q23"): iti9.handle,
}

log = logging.getLogger("xds.mpi.mllp")


class FrameTooLarge(Exception):
    """A frame longer than the limit; ``head`` holds its first bytes (for the MSH)."""

    def __init__(self, head: bytes) -> None:
        super().__init__("MLLP frame too large")
        self.head = head


class _FrameReader(HL7StreamReader):  # type: ignore[misc]  # python-hl7 is untyped
    """``HL7StreamReader.readblock`` with two changes.

    The stock reader reads up to the end block and raises InvalidBlockError unless the data
    starts with the start block. Garbage sent before a frame therefore swallows the valid
    frame after it, and a frame that lost its end block is glued to the next one (its start
    block inside), which is then parsed as one message. Here the frame is what follows the
    last start block before the end block (HL7 MLLP: the start block opens a frame, and no
    HL7 text contains it); data without a start block is dropped. Frames longer than ``limit`` raise
    FrameTooLarge carrying the frame's first bytes, not the stock ValueError.
    """

    async def readblock(self) -> bytes:
        try:
            block: bytes = await self.readuntil(_END_BLOCK)
        except asyncio.LimitOverrunError:
            head = bytes(self._buffer[:4096])
            self._buffer.clear()
            self._maybe_resume_transport()
            start = head.find(_START_BLOCK)
            raise FrameTooLarge(head[start + 1:] if start >= 0 else b"") from None
        start = block.rfind(_START_BLOCK)
        if start < 0:
            raise InvalidBlockError("data without MLLP start block dropped")
        return block[start + 1:-len(_END_BLOCK)]


async def start_mllp_server(index: PatientIndex, settings: Settings, *, host: str | None = None,
                            port: int | None = None, ssl_context: ssl.SSLContext | None = None,
                            on_refused: OnRefused | None = None,
                            max_frame_bytes: int = MAX_FRAME_BYTES,
                            idle_timeout: float = IDLE_TIMEOUT) -> asyncio.Server:
    """Listen for MLLP on ``host``:``port`` (default ``settings.host``:``settings.mllp_port``;
    port 0 picks a free one) and answer ITI-8 and ITI-9 against ``index``.

    With ``ssl_context`` every connection starts with a TLS handshake; a refused one is logged
    and passed to ``on_refused`` (ATNA Security Alert).

    >>> server = await start_mllp_server(PatientIndex(engine, settings), settings)
    """
    loop = asyncio.get_running_loop()
    connections: set[asyncio.Task[None]] = set()
    port = settings.mllp_port if port is None else port

    def connected(reader: _FrameReader, writer: Any) -> None:
        # Keep a reference: python-hl7's protocol starts the task and drops it.
        task = loop.create_task(_serve(reader, writer, index, idle_timeout, max_frame_bytes))
        connections.add(task)
        task.add_done_callback(connections.discard)

    def factory() -> Any:
        protocol = HL7StreamProtocol(_FrameReader(limit=max_frame_bytes, loop=loop), connected,
                                     loop=loop)
        if ssl_context is None:
            return protocol
        return TlsAccept(protocol, ssl_context, on_refused, f"mllp:{port}")

    return await loop.create_server(factory, settings.host if host is None else host, port)


async def _serve(reader: _FrameReader, writer: Any, index: PatientIndex, idle_timeout: float,
                 max_frame_bytes: int) -> None:
    peer = writer.get_extra_info("peername")
    try:
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    frame = await reader.readblock()
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    log.warning("MLLP %s closed inside a frame (%d bytes dropped)", peer,
                                len(exc.partial))
                return
            except TimeoutError:
                log.info("MLLP %s idle for %.0f s, closing", peer, idle_timeout)
                return
            except InvalidBlockError:
                log.warning("MLLP %s sent data outside a frame, dropped", peer)
                continue
            except FrameTooLarge as exc:
                log.warning("MLLP %s sent a frame over %d bytes, refused", peer, max_frame_bytes)
                await _refuse_too_large(reader, writer, exc.head, max_frame_bytes)
                return
            writer.writeblock(await asyncio.to_thread(
                _answer, frame, index, _address(peer), _address(writer.get_extra_info("sockname"))))
            async with asyncio.timeout(idle_timeout):  # a peer that never reads its answers
                await writer.drain()
    except (ConnectionError, OSError) as exc:
        log.info("MLLP %s: %s", peer, exc)
    finally:
        writer.close()


def _address(name: Any) -> tuple[str, int]:
    """(host, port) of a socket name (IPv4 or IPv6 tuple); ("", 0) when unknown."""
    if isinstance(name, tuple) and len(name) >= 2:
        return str(name[0]), int(name[1])
    return "", 0


def _request_info(header: Header, peer: tuple[str, int], local: tuple[str, int]) -> RequestInfo:
    """Who sent this message, for its audit: the peer address, the listener as
    ``mllp://host:port``, the sender as IPF names it (``MSH-4|MSH-3``)."""
    host = f"[{local[0]}]" if ":" in local[0] else local[0]
    return RequestInfo(client=peer[0], endpoint=f"mllp://{host}:{local[1]}",
                       client_endpoint=f"{header.sending_facility}|{header.sending_application}")


def _answer(frame: bytes, index: PatientIndex, peer: tuple[str, int] = ("", 0),
            local: tuple[str, int] = ("", 0)) -> bytes:
    """The answer to one frame: the listener's one error boundary. HL7Error becomes its ACK;
    any other exception is logged with its traceback and answered AE 207."""
    header: Header | None = None
    try:
        message, header = decode(frame)
        handler = _HANDLERS.get((header.message_code, header.trigger_event))
        if handler is None:
            raise _unsupported(header)
        token = REQUEST.set(_request_info(header, peer, local))
        try:
            return encode(handler(message, header, index), header.charset)
        finally:
            REQUEST.reset(token)
    except HL7Error as exc:
        header = header or peek_header(frame)
        log.info("MLLP %s^%s %s refused: %s %s", header.message_code if header else "?",
                 header.trigger_event if header else "?", header.control_id if header else "",
                 exc.ack.value, exc.text)
        return encode(build_ack(header, exc.ack, [exc]), header.charset if header else "")
    except Exception:
        header = header or peek_header(frame)
        log.exception("MLLP message %s failed", header.control_id if header else "(no MSH)")
        error = HL7Error(ErrorCode.ApplicationInternalError, "internal error; see the PIX "
                         "Manager's log", [Location("MSH")])
        return encode(build_ack(header, AckCode.AE, [error]), header.charset if header else "")


def _unsupported(header: Header) -> HL7Error:
    if header.message_code in {code for code, _ in _HANDLERS}:
        return HL7Error(ErrorCode.UnsupportedEventCode,
                        f"unsupported event {header.message_code} {header.trigger_event}",
                        [Location("MSH", 1, 9, 1, 2)], ack=AckCode.AR)
    return HL7Error(ErrorCode.UnsupportedMessageType,
                    f"unsupported message type {header.message_code or '(none)'}",
                    [Location("MSH", 1, 9)], ack=AckCode.AR)


async def _refuse_too_large(reader: _FrameReader, writer: Any, head: bytes, limit: int) -> None:
    """Answer AR, stop sending, then read and drop what the peer still sends for a while, so
    that it gets to read the AR instead of a connection reset."""
    header = peek_header(head)
    error = HL7Error(ErrorCode.ApplicationInternalError,
                     f"message exceeds the {limit}-byte limit", [Location("MSH")], ack=AckCode.AR)
    writer.writeblock(encode(build_ack(header, AckCode.AR, [error]), header.charset if header else ""))
    await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
    dropped = 0
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            while dropped < _DRAIN_BYTES and (chunk := await reader.read(65536)):
                dropped += len(chunk)
    except TimeoutError:
        pass
