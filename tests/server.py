"""Run an ASGI app under a real uvicorn server on 127.0.0.1 in a background thread (for tests)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from xds.security.accept import OnRefused, tls_protocol_class

__all__ = ["free_port", "running_server", "stop_process"]


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM ``proc``, SIGKILL it if it has not exited after ``grace`` seconds; reaped."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(app: Any, port: int | None = None, *, ssl_context: ssl.SSLContext | None = None,
                   on_refused: OnRefused | None = None) -> Iterator[str]:
    """Serve ``app`` over real HTTP until the block ends; yields the base URL.

    With ``ssl_context`` the port speaks TLS the way ``xds serve --tls-cert`` does (handshake in
    TlsAccept, refusals to ``on_refused``) and the URL is https.
    """
    port = port or free_port()
    http: type[asyncio.Protocol] | str = "auto"
    if ssl_context is not None:
        http = tls_protocol_class(HttpToolsProtocol, ssl_context, on_refused, f"http:{port}")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                            http=http)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
