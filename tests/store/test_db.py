"""SQLite connections go back to the pool without a statement still running.

A result that is dropped half-read (an exception raised while iterating it keeps the result
alive in its traceback) leaves its SQLite statement open, and an open statement holds a read
snapshot on the connection. Handed out again, that connection would read stale data and fail
every write with "database is locked" (SQLITE_BUSY_SNAPSHOT, no busy wait) once anyone else
has written. These tests leak such a result on purpose and use the same pooled connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, column, table, text

from xds.config import Settings
from xds.store.db import open_engine, read_connection, write_transaction

_T = table("t", column("n"))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = open_engine(Settings(data_dir=tmp_path))
    with write_transaction(eng) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        conn.execute(text("INSERT INTO t (n) VALUES (1), (2), (3)"))
    try:
        yield eng
    finally:
        eng.dispose()


def _leak_a_half_read_result(engine: Engine) -> object:
    with read_connection(engine) as conn:
        result = conn.execute(text("SELECT n FROM t ORDER BY n"))
        assert result.fetchone() == (1,)
    return result  # still referenced, never read to the end


def _write_from_elsewhere(engine: Engine) -> None:
    assert engine.url.database
    other = sqlite3.connect(engine.url.database, isolation_level=None)
    try:
        other.execute("INSERT INTO t (n) VALUES (4)")
    finally:
        other.close()


def test_a_half_read_result_does_not_make_the_next_write_fail(engine: Engine) -> None:
    leaked = _leak_a_half_read_result(engine)
    _write_from_elsewhere(engine)
    with write_transaction(engine) as conn:  # the pool hands out the same connection
        conn.execute(text("INSERT INTO t (n) VALUES (5)"))
    with read_connection(engine) as conn:
        assert [n for (n,) in conn.execute(text("SELECT n FROM t ORDER BY n"))] == [1, 2, 3, 4, 5]
    del leaked


def test_a_half_read_result_does_not_make_later_reads_stale(engine: Engine) -> None:
    leaked = _leak_a_half_read_result(engine)
    _write_from_elsewhere(engine)
    with read_connection(engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 4
    del leaked


def test_the_pool_really_reuses_the_connection_the_result_was_read_on(engine: Engine) -> None:
    # Guards the two tests above: they only prove something if the same DBAPI connection
    # comes back out of the pool.
    with read_connection(engine) as conn:
        first = conn.connection.dbapi_connection
    with write_transaction(engine) as conn:
        assert conn.connection.dbapi_connection is first


def test_after_commit_runs_once_the_write_is_committed_and_never_after_a_rollback(
        engine: Engine) -> None:
    from xds.store.db import after_commit

    seen: list[int] = []
    with write_transaction(engine) as conn:
        conn.execute(text("INSERT INTO t (n) VALUES (6)"))
        after_commit(conn, lambda: seen.append(_count_from_elsewhere(engine)))
        assert seen == []
    assert seen == [4]  # the callback already sees the committed row from another connection
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        after_commit(conn, lambda: seen.append(-1))
        raise RuntimeError("rolled back")
    with write_transaction(engine) as conn:  # the same pooled connection: nothing left over
        pass
    assert seen == [4]


def _count_from_elsewhere(engine: Engine) -> int:
    assert engine.url.database
    other = sqlite3.connect(engine.url.database)
    try:
        return int(other.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        other.close()


def test_after_commit_of_a_transaction_opened_otherwise_never_runs(engine: Engine) -> None:
    from xds.store.db import after_commit

    seen: list[str] = []
    with engine.begin() as conn:  # not a write_transaction: nobody runs its callbacks
        after_commit(conn, lambda: seen.append("stale"))
    with write_transaction(engine) as conn:  # the same pooled connection
        after_commit(conn, lambda: seen.append("ours"))
    assert seen == ["ours"]
