"""Fixtures of the PIX Manager tests: our MLLP listener on a free loopback port over the session's
database, and an ITI-10 PIX Consumer (python-hl7's asyncio MLLP server) recording what it gets.

    def test_feed(mllp_server):
        ack = support.exchange(mllp_server, support.adt("A01", support.cx("P1", support.GREEN)))
        assert support.field(ack, "MSA", 1) == "AA"
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import hl7
import hl7.mllp
import pytest
from sqlalchemy import delete

from xds.mpi.index import PatientIndex
from xds.mpi.mllp import start_mllp_server
from xds.mpi.notifier import run_notifier
from xds.store.tables import mpi_notification

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from xds.config import Settings

T = TypeVar("T")


class LoopThread:
    """An asyncio event loop running in a daemon thread; ``run`` waits for a coroutine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close_server(self, server: Any) -> None:
        """``server.close()`` in the loop's thread (asyncio servers are not thread-safe)."""
        async def close() -> None:
            server.close()
        self.run(close())

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        async def start() -> asyncio.Task[None]:
            return asyncio.get_running_loop().create_task(coro)
        return self.run(start())

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class PixManager:
    """One running MLLP listener: its address, index and settings."""

    host: str
    port: int
    index: PatientIndex
    settings: Settings

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    """The event loop the module's listeners run in."""
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()


@pytest.fixture(scope="module")
def start_pix(loop_thread: LoopThread, engine: Engine,
              settings: Settings) -> Iterator[Callable[..., PixManager]]:
    """``start_pix(pix_domains=..., pix_subscribers=..., **listener options)``: a new MLLP
    listener on a free port over the session's database, with its own PatientIndex built from
    the session's Settings and those overrides; with subscribers, a notifier runs too
    (``backoff_seconds`` short). Everything stops at the module's end."""
    servers: list[asyncio.Server] = []
    subscribers: list[str] = []

    def start(*, backoff_seconds: float = 0.5, **options: Any) -> PixManager:
        overrides = {k: options.pop(k) for k in list(options) if k.startswith("pix_")}
        own = dataclasses.replace(settings, **overrides)
        index = PatientIndex(engine, own)
        server = loop_thread.run(start_mllp_server(index, own, host="127.0.0.1", port=0, **options))
        servers.append(server)
        if own.pix_subscribers:
            subscribers.extend(s.strip() for s in own.pix_subscribers.split(","))
            loop_thread.spawn(run_notifier(index, own, poll_seconds=1.0,
                                           backoff_seconds=backoff_seconds))
        host, port = server.sockets[0].getsockname()[:2]
        return PixManager(host, port, index, own)

    yield start
    for server in servers:
        loop_thread.close_server(server)
    if subscribers:  # leave no queued rows for the notifiers of later modules
        with engine.begin() as conn:
            conn.execute(delete(mpi_notification).where(mpi_notification.c.subscriber.in_(subscribers)))


@pytest.fixture(scope="module")
def pix(start_pix: Callable[..., PixManager]) -> PixManager:
    """The module's PIX Manager on the session's settings (any domain accepted)."""
    return start_pix()


@pytest.fixture(scope="module")
def mllp_server(pix: PixManager) -> tuple[str, int]:
    """(host, port) of the module's PIX Manager MLLP listener."""
    return pix.address


@dataclass
class Consumer:
    """An ITI-10 PIX Consumer: records each message; answers ``answers`` in turn, then AA."""

    loop_thread: LoopThread
    received: queue.Queue[Any] = field(default_factory=queue.Queue)
    answers: list[str] = field(default_factory=list)
    server: Any = None  # asyncio.Server (python-hl7 is untyped)
    port: int = 0

    def start(self, port: int = 0) -> int:
        async def connected(reader: Any, writer: Any) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    message = await reader.readmessage()
                    self.received.put(message)
                    code = self.answers.pop(0) if self.answers else "AA"
                    writer.writemessage(message.create_ack(code))
                    await writer.drain()
            writer.close()

        self.server = self.loop_thread.run(
            hl7.mllp.start_hl7_server(connected, "127.0.0.1", port, encoding="utf-8"))
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    def url(self) -> str:
        return f"mllp://127.0.0.1:{self.port}"

    def next(self, timeout: float = 20.0) -> Any:
        """The next message received, waiting at most ``timeout`` seconds."""
        return self.received.get(timeout=timeout)

    def stop(self) -> None:
        if self.server is not None:
            self.loop_thread.close_server(self.server)
            self.server = None


@pytest.fixture
def consumer(loop_thread: LoopThread) -> Iterator[Consumer]:
    """A PIX Consumer, not yet listening (``consumer.start()``)."""
    c = Consumer(loop_thread)
    try:
        yield c
    finally:
        c.stop()
