"""The background sender: ships ``audit_outbox`` rows to the Audit Record Repository.

A thread polls the rows not yet sent, in id order and in batches, writes each to the syslog
transport and stamps it ``sent`` only after the transport took it. Any failure (ARR down,
refused, stalled past the socket timeout) leaves the rest unsent and retries with exponential
backoff (0.2 s doubling to 30 s). Transactions only ever insert rows, so a slow or absent ARR
never slows them.

Delivery is at least once: a message written just before its connection broke may be sent
again on the next one, and syslog has no acknowledgement, so bytes the kernel accepted but a
crashing ARR never read are gone (ITI-20 accepts both). Worker processes sharing PostgreSQL
claim disjoint batches (``FOR UPDATE SKIP LOCKED``, held while the batch is written); on
SQLite one process per database sends, the one holding ``<database>.audit-sender-lock``.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from sqlalchemy import Connection, Engine, select, update

from xds.audit.syslog import Transport, syslog_message, transport_for
from xds.audit.trail import application_activity, on_record
from xds.config import Settings
from xds.store.db import read_connection, write_transaction
from xds.store.tables import audit_outbox

__all__ = ["AuditSender", "audit_running", "MIN_BACKOFF", "MAX_BACKOFF"]

log = logging.getLogger("xds.audit.sender")
MIN_BACKOFF = 0.2
MAX_BACKOFF = 30.0
#: Seconds a wake-up waits for more records before a pass (batching under load).
LINGER = 0.05


@dataclass(frozen=True, slots=True)
class _Pending:
    """An outbox row to send."""

    id: int
    created: float
    message: str


class _SqliteSenderLock:
    """One sender per SQLite database across processes: a non-blocking flock."""

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database or ""
        self._path = Path(database + ".audit-sender-lock") if database and \
            database != ":memory:" else None
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._path is None or self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class AuditSender:
    """Ships the outbox of ``engine`` to ``settings.audit_url`` (or ``transport``) from a thread.

    ``start``/``stop`` bracket its life; ``wake`` asks for a pass now rather than at the next
    poll (``record``/``record_now`` call it once their row is committed).
    """

    def __init__(self, engine: Engine, settings: Settings, transport: Transport | None = None,
                 *, batch: int = 100, poll: float = 1.0, timeout: float = 10.0,
                 min_backoff: float = MIN_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 linger: float = LINGER) -> None:
        self.engine, self.settings = engine, settings
        self.transport = transport or transport_for(settings, timeout)
        self.batch, self.poll, self.linger = batch, poll, linger
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self._sqlite = engine.dialect.name == "sqlite"
        self._lock = _SqliteSenderLock(engine) if self._sqlite else None
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0

    def start(self) -> None:
        on_record(self.engine, self.wake)
        self._thread = threading.Thread(target=self._run, name="xds-audit-sender", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after a last pass (if the ARR is reachable), waiting at most ``timeout`` s."""
        on_record(self.engine, None)
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("audit sender still waiting on the repository at shutdown")
                return  # a daemon thread: it dies with the process
        self.transport.close()
        if self._lock is not None:
            self._lock.release()

    def _run(self) -> None:
        backoff = self.min_backoff
        while True:
            stopping = self._stopping.is_set()
            self._wakeup.clear()  # a wake-up during the pass below makes another one
            result = self._pass_safely()
            if stopping:
                return
            if result is True:
                continue  # a full batch went: there may be more
            if result is None:
                backoff = self.min_backoff
                if self._wakeup.wait(self.poll) and self.linger:
                    # Let the records of a burst gather: one connection write and one
                    # UPDATE per batch instead of per record (stopping cuts it short).
                    self._stopping.wait(self.linger)
            else:
                # New rows do not cut a backoff short; stopping does.
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def _pass_safely(self) -> bool | None:
        """One pass: True when a full batch was sent, None when the outbox is drained (or
        another process sends), False after a failure."""
        try:
            if self._lock is not None and not self._lock.acquire():
                return None
            sent = self.send_pending()
        except Exception as exc:
            self.failures += 1
            if self.failures == 1:
                log.warning("audit repository %s unreachable (%s); retrying",
                            self.settings.audit_url or "transport", exc)
            return False
        if self.failures:
            log.info("audit repository reachable again after %d failed attempts", self.failures)
            self.failures = 0
        return True if sent >= self.batch else None

    def _pending(self, conn: Connection, lock: bool) -> list[_Pending]:
        query = (select(audit_outbox.c.id, audit_outbox.c.created, audit_outbox.c.message)
                 .where(audit_outbox.c.sent.is_(None))
                 .order_by(audit_outbox.c.id).limit(self.batch))
        if lock:
            query = query.with_for_update(skip_locked=True)
        return [_Pending(*row) for row in conn.execute(query)]

    def _deliver(self, rows: list[_Pending]) -> tuple[list[int], int | None, Exception | None]:
        """Write ``rows`` in order; the ids taken, the id that failed and why."""
        done: list[int] = []
        for row in rows:
            try:
                self.transport.send(syslog_message(
                    row.message, app_name=self.settings.audit_source_id, timestamp=row.created))
            except Exception as exc:
                return done, row.id, exc
            done.append(row.id)
        return done, None, None

    @staticmethod
    def _stamp(conn: Connection, done: list[int], failed: int | None) -> None:
        attempts = audit_outbox.c.attempts + 1
        if done:
            conn.execute(update(audit_outbox).where(audit_outbox.c.id.in_(done))
                         .values(sent=time.time(), attempts=attempts))
        if failed is not None:
            conn.execute(update(audit_outbox).where(audit_outbox.c.id == failed)
                         .values(attempts=attempts))

    def deliver_once(self) -> int:
        """One delivery attempt without the thread (a command-line client, after its
        transaction): send batches until the outbox is drained, then close the transport;
        the number sent. Sends nothing when another process is this SQLite database's sender
        (a ``xds serve`` on the same store ships the rows itself). Raises what the transport
        raised, after stamping what went before."""
        if self._lock is not None and not self._lock.acquire():
            return 0
        total = 0
        try:
            while (sent := self.send_pending()) > 0:
                total += sent
                if sent < self.batch:
                    break
        finally:
            self.transport.close()
            if self._lock is not None:
                self._lock.release()
        return total

    def send_pending(self) -> int:
        """Send one batch of unsent rows; the number sent. Raises what the transport raised
        after stamping the rows that went before it."""
        if self._sqlite:
            # Never hold SQLite's single writer lock while waiting on the network.
            with read_connection(self.engine) as conn:
                rows = self._pending(conn, lock=False)
            done, failed, error = self._deliver(rows)
            if done or failed is not None:
                with write_transaction(self.engine) as conn:
                    self._stamp(conn, done, failed)
        else:
            with write_transaction(self.engine) as conn:
                rows = self._pending(conn, lock=True)
                done, failed, error = self._deliver(rows)
                self._stamp(conn, done, failed)
        if error is not None:
            raise error
        return len(done)


@asynccontextmanager
async def audit_running(engine: Engine, settings: Settings) -> AsyncIterator[None]:
    """For a server's lifespan: Application Start recorded, the sender running when
    ``settings.audit_url`` is set, then Application Stop recorded and shipped on the way out."""
    sender = AuditSender(engine, settings) if settings.audit_url else None
    if sender is not None:
        sender.start()
    await asyncio.to_thread(application_activity, engine, settings, True)
    try:
        yield
    finally:
        await asyncio.to_thread(application_activity, engine, settings, False)
        if sender is not None:
            await asyncio.to_thread(sender.stop)
