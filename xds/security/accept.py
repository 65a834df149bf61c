"""TLS accept with a visible outcome: every listener's handshake, and a callback when it fails.

asyncio's ``create_server(ssl=...)`` and uvicorn's ``ssl=`` swallow a failed handshake (asyncio
logs it in debug mode only), so no Security Alert (ATNA, DCM 110113) could be written for a peer
refused at the door. Here the listener accepts plain TCP and runs the handshake itself
(``loop.start_tls``): on success the protocol behind it sees the TLS transport, as if the server
had been created with ``ssl=``; on failure ``on_refused(peer, listener, reason)`` is called.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

__all__ = ["OnRefused", "TlsAccept", "HANDSHAKE_TIMEOUT", "SHUTDOWN_TIMEOUT", "peer_host",
           "refusal_reason", "report_refusal", "tls_protocol_class"]

#: ``on_refused(peer, listener, reason)``: ``peer`` the remote IP address, ``listener`` the
#: port's name (``"http:8443"``, ``"mllp:2575"``, ``"dicom:11112"``), ``reason`` the TLS error.
OnRefused = Callable[[str, str, str], None]
#: Seconds a peer has to complete its handshake.
HANDSHAKE_TIMEOUT = 30.0
#: Seconds to wait for the peer's close_notify after ours. asyncio's default is 30: an idle
#: keep-alive client, which reads nothing, would hold a graceful shutdown that long.
SHUTDOWN_TIMEOUT = 2.0

log = logging.getLogger("xds.security.accept")


def report_refusal(on_refused: OnRefused | None, peer: str, listener: str, reason: str) -> None:
    """Log a refused handshake at WARNING and pass it to ``on_refused`` (whose errors are
    logged, never raised)."""
    log.warning("TLS handshake from %s on %s refused: %s", peer, listener, reason)
    if on_refused is None:
        return
    try:
        on_refused(peer, listener, reason)
    except Exception:
        log.exception("recording the refused handshake from %s failed", peer)


def peer_host(peername: Any) -> str:
    """The address part of a socket's ``peername`` (a tuple for IP, a string for others)."""
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername or "unknown")


def refusal_reason(exc: BaseException) -> str:
    """A one-line reason for a failed handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"{exc.reason}: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "handshake timed out"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "connection closed during the handshake"
    return f"{type(exc).__name__}: {exc}"


class TlsAccept(asyncio.Protocol):
    """A server protocol that completes a TLS handshake, then hands over to ``inner``.

    Use it in a protocol factory of ``loop.create_server`` (without ``ssl=``):

    >>> loop.create_server(lambda: TlsAccept(Inner(), context, on_refused, "mllp:2575"), ...)

    Until ``inner`` has seen ``connection_made`` with the TLS transport, data decrypted in the
    same read as the peer's Finished message is held here and passed on afterwards.
    """

    def __init__(self, inner: asyncio.Protocol, context: ssl.SSLContext,
                 on_refused: OnRefused | None, listener: str, *,
                 timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self._inner = inner
        self._context = context
        self._on_refused = on_refused
        self._listener = listener
        self._timeout = timeout
        self._held: list[bytes] = []
        self._eof = False
        self._lost: tuple[Exception | None] | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self._task = asyncio.get_running_loop().create_task(self._handshake(transport))

    async def _handshake(self, transport: asyncio.Transport) -> None:
        peer = peer_host(transport.get_extra_info("peername"))
        try:
            tls = await asyncio.get_running_loop().start_tls(
                transport, self, self._context, server_side=True,
                ssl_handshake_timeout=self._timeout, ssl_shutdown_timeout=SHUTDOWN_TIMEOUT)
        except OSError as exc:  # SSLError, a timeout, a reset; start_tls closed the transport
            reason = refusal_reason(exc)
            report_refusal(self._on_refused, peer, self._listener, reason)
            return
        if tls is None:  # the connection went away in the meantime
            return
        tls.set_protocol(self._inner)
        self._inner.connection_made(tls)
        for data in self._held:
            self._inner.data_received(data)
        self._held.clear()
        if self._eof:
            self._inner.eof_received()
        if self._lost is not None:
            self._inner.connection_lost(self._lost[0])

    # Until the hand-over the TLS transport talks to this protocol.
    def data_received(self, data: bytes) -> None:
        self._held.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = (exc,)


def tls_protocol_class(inner: type[asyncio.Protocol], context: ssl.SSLContext,
                       on_refused: OnRefused | None, listener: str) -> type[asyncio.Protocol]:
    """An HTTP protocol class for uvicorn (``Config(http=...)``, with ``ssl`` left unset) that
    runs the TLS handshake through TlsAccept and then serves with ``inner`` (for instance
    ``uvicorn.protocols.http.httptools_impl.HttpToolsProtocol``). uvicorn sees the TLS
    transport, so requests carry ``scheme="https"``."""

    class _Accept(TlsAccept):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(inner(**kwargs), context, on_refused, listener)

    _Accept.__name__ = f"TlsAccept[{inner.__name__}]"
    return _Accept
