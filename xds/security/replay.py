"""The XUA replay cache: assertion IDs already accepted, in the database every worker shares.

An ID is remembered until its assertion can no longer be valid (NotOnOrAfter + skew); a second
INSERT of the same ID hits the primary key, which is the replay. Expired rows are purged now
and then by whichever worker notices first.

A SOAP request does not pay a write of its own for this: the endpoint checks the ID is new (a
read), and the ID's row goes into the request's first audit write, the transaction that also
holds the change the request made (``ReplayClaim``). A concurrent replay that got there first
makes that INSERT fail, which rolls the change back with it; ``ReplayClaim.settle`` then turns
the answer into the replay fault. On SQLite this keeps one writer-lock turn per registration
instead of two.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, delete, text
from sqlalchemy.exc import IntegrityError

from xds.store.db import after_commit, read_connection, write_transaction
from xds.store.tables import xua_assertion

__all__ = ["ReplayCache", "ReplayClaim"]

#: How often (seconds) one process deletes the expired rows.
PURGE_INTERVAL = 300.0
#: Built once: the check runs on every request, and building a select costs more than running it.
_SEEN = text("SELECT 1 FROM xua_assertion WHERE id = :id")
_INSERT = text("INSERT INTO xua_assertion (id, expires) VALUES (:id, :expires)")


class ReplayCache:
    """``first_use(id, expires)`` is True once per assertion ID across all workers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def first_use(self, assertion_id: str, expires: float) -> bool:
        """Record ``assertion_id`` (kept until ``expires``); False when it was seen before."""
        self._purge(time.time())
        try:
            with write_transaction(self.engine) as conn:
                self.insert(conn, assertion_id, expires)
        except IntegrityError:
            return False
        return True

    def seen(self, assertion_id: str) -> bool:
        """Whether ``assertion_id`` was recorded (a read: no writer lock)."""
        self._purge(time.time())
        with read_connection(self.engine) as conn:
            return conn.execute(_SEEN, {"id": assertion_id}).first() is not None

    @staticmethod
    def insert(conn: Connection, assertion_id: str, expires: float) -> None:
        """Record ``assertion_id`` in the caller's transaction; IntegrityError if it is known."""
        conn.execute(_INSERT, {"id": assertion_id, "expires": expires})

    def _purge(self, now: float) -> None:
        with self._lock:
            if now < self._next_purge:
                return
            self._next_purge = now + PURGE_INTERVAL
        with write_transaction(self.engine) as conn:
            conn.execute(delete(xua_assertion).where(xua_assertion.c.expires < now))


@dataclass(slots=True)
class ReplayClaim:
    """An accepted assertion's ID on its way into the replay cache with the request's writes.

    ``record(conn)`` is called by the audit trail in the request's first audit write;
    ``settle()`` after the request: the ID is in the cache, or the request was a replay.
    """

    cache: ReplayCache
    key: str
    expires: float
    state: Literal["pending", "inserted", "committed", "replayed", "refused"] = "pending"

    @property
    def pending(self) -> bool:
        """Not yet written by any audit write of the request."""
        return self.state == "pending"

    def record(self, conn: Connection) -> None:
        """Insert the ID in ``conn``'s transaction, the first time; re-raises the IntegrityError
        of a replay, so the transaction (and the change it holds) rolls back, and raises it
        again for every later attempt (a registration that retries its transaction)."""
        if self.state in ("inserted", "committed", "refused"):
            return
        try:
            self.cache.insert(conn, self.key, self.expires)
        except IntegrityError:
            self.state = "replayed"
            raise
        self.state = "inserted"
        after_commit(conn, self._committed)

    def _committed(self) -> None:
        self.state = "committed"

    def settle(self) -> bool:
        """After the request: True when the ID is now recorded as this request's, False when
        the request turned out to be a replay (the claim then writes nothing more). An ID
        inserted in a transaction that rolled back, or never inserted (no audit write), is
        recorded now."""
        if self.state == "committed" or (self.state == "inserted" and self.cache.seen(self.key)):
            return True
        if self.state in ("pending", "inserted") and self.cache.first_use(self.key, self.expires):
            self.state = "inserted"
            return True
        self.state = "refused"
        return False
