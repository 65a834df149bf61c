"""The XUA replay cache: assertion IDs already accepted, in the database every worker shares.

An ID is remembered until its assertion can no longer be valid (NotOnOrAfter + skew); a second
INSERT of the same ID hits the primary key, which is the replay. Expired rows are purged now
and then by whichever worker notices first.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from xds.store.db import write_transaction
from xds.store.tables import xua_assertion

__all__ = ["ReplayCache"]

#: How often (seconds) one process deletes the expired rows.
PURGE_INTERVAL = 300.0


class ReplayCache:
    """``first_use(id, expires)`` is True once per assertion ID across all workers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def first_use(self, assertion_id: str, expires: float) -> bool:
        """Record ``assertion_id`` (kept until ``expires``); False when it was seen before."""
        now = time.time()
        self._purge(now)
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(insert(xua_assertion).values(id=assertion_id, expires=expires))
        except IntegrityError:
            return False
        return True

    def _purge(self, now: float) -> None:
        with self._lock:
            if now < self._next_purge:
                return
            self._next_purge = now + PURGE_INTERVAL
        with write_transaction(self.engine) as conn:
            conn.execute(delete(xua_assertion).where(xua_assertion.c.expires < now))
