"""Open the registry database (SQLite in WAL mode by default, PostgreSQL by URL) and migrate it."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event

from xds.config import Settings

__all__ = ["open_engine", "migrate", "write_transaction", "read_connection"]

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_WRITE = "xds_write"
_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def open_engine(settings: Settings) -> Engine:
    """An Engine on the configured database; creates the data directory for SQLite."""
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60}, pool_size=8, max_overflow=8)
        _sqlite_tuning(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _sqlite_tuning(engine: Engine) -> None:
    _WRITER_LOCKS[engine] = threading.Lock()

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is switched off so that "begin" below decides
        # between BEGIN IMMEDIATE (writers queue for the lock up front, no upgrade deadlocks)
        # and a deferred BEGIN (readers, which WAL never blocks).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction: committed on success, rolled back on any error."""
    lock = _WRITER_LOCKS.get(engine)
    if lock is None:
        with engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
            yield conn
        return
    # SQLite has one writer at a time; threads that queue on a lock here wake the moment it is
    # free, where SQLite's busy handler would poll with growing sleeps (measured: 4 concurrent
    # clients got half the registrations per second without this lock).
    with lock, engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
        yield conn


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a read transaction (one consistent snapshot)."""
    with engine.connect() as conn, conn.begin():
        yield conn
