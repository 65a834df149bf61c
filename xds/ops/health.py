"""Probes of the HTTP app: ``GET /healthz`` while the process runs, ``GET /readyz`` while the
database (at the schema head) and the blob store answer."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xds.store.blobs import BlobStore
from xds.store.db import schema_state

__all__ = ["Readiness", "health_routes", "HEALTHZ_PATH", "READYZ_PATH", "READY_TIMEOUT"]

log = logging.getLogger("xds.ops")

HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
#: Seconds /readyz waits for its checks; one that has not answered by then fails.
READY_TIMEOUT = 4.0


class _NotReady(Exception):
    """A check's failure, its message the reason /readyz gives."""


class Readiness:
    """The /readyz checks of an app on ``engine`` and ``blobs`` (``probe`` is the endpoint).

    Each check runs in a worker thread. A check still running when the next probe comes
    (a database that hangs) is awaited again rather than started twice, so a stuck backend
    holds one thread per check, not one per probe.
    """

    def __init__(self, engine: Engine, blobs: BlobStore, timeout: float = READY_TIMEOUT) -> None:
        self.engine, self.blobs, self.timeout = engine, blobs, timeout
        self._running: dict[str, asyncio.Task[None]] = {}

    def _database(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            state = schema_state(self.engine)
        except SQLAlchemyError as exc:
            # The DBAPI's own message; SQLAlchemy's adds the SQL and a link.
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise _NotReady(reason[0] if reason else type(exc).__name__) from exc
        if not state.is_current:
            raise _NotReady(state.describe())

    def _blob_store(self) -> None:
        try:
            self.blobs.check()
        except Exception as exc:  # StoreUnavailable, or whatever else a backend raises
            raise _NotReady(f"{self.blobs.describe()}: {exc}") from exc

    def _task(self, name: str) -> asyncio.Task[None]:
        task = self._running.get(name)
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            check = self._database if name == "database" else self._blob_store
            task = self._running[name] = asyncio.ensure_future(run_in_threadpool(check))
            # Read here as well: a result no probe waited for must not be logged as lost.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def probe(self, _request: Request) -> Response:
        """The answer to one probe: 200, or 503 naming the checks that failed."""
        tasks = {name: self._task(name) for name in ("database", "blob_store")}
        # shield: a probe that times out must not cancel the check a later probe awaits.
        await asyncio.wait([asyncio.shield(t) for t in tasks.values()], timeout=self.timeout)
        checks: dict[str, str] = {}
        for name, task in tasks.items():
            if not task.done():
                checks[name] = f"no answer within {self.timeout:g} s"
            elif (exc := task.exception()) is None:
                checks[name] = "ok"
            elif isinstance(exc, _NotReady):
                checks[name] = str(exc)
            else:
                log.error("readiness check %s failed", name, exc_info=exc)
                checks[name] = f"{type(exc).__name__}: {exc}"
        failed = [name for name, result in checks.items() if result != "ok"]
        if failed:
            log.warning("not ready: %s", "; ".join(f"{n}: {checks[n]}" for n in failed))
            return JSONResponse({"status": "unavailable", "failed": failed, "checks": checks},
                                503)
        return JSONResponse({"status": "ok", "checks": checks})


async def _healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def health_routes(engine: Engine, blobs: BlobStore) -> list[Route]:
    """``GET /healthz`` (200 ``{"status":"ok"}``, no I/O) and ``GET /readyz`` (200, or 503
    with ``failed``: the checks that did not pass, and each check's reason in ``checks``)."""
    return [Route(HEALTHZ_PATH, _healthz, methods=["GET"]),
            Route(READYZ_PATH, Readiness(engine, blobs).probe, methods=["GET"])]
