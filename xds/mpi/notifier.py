"""Delivery of PIX Update Notifications (ITI-10 MLLP, ITI-46 SOAP) queued in ``mpi_notification``.

Rows are written by the index with each change; this loop sends them, woken by the index
after every commit and polling otherwise, so a feed never waits for a consumer. A row is
claimed with a lease before sending (several processes may run the loop on one database);
failures back off exponentially. Each send carries the link group as it is at send time,
so one success also settles the older rows of the same subscriber and person.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import and_, func, select, update

from xds.audit.events import Outcome
from xds.audit.pix_events import notification_event
from xds.audit.transactions import record_after
from xds.config import Settings
from xds.mpi.index import PatientIndex
from xds.mpi.iti10 import SEND_TIMEOUT, send_iti10
from xds.mpi.model import PatientIdentifier, Person
from xds.store.db import read_connection, write_transaction
from xds.store.tables import mpi_identifier, mpi_notification

__all__ = ["Sender", "UnsupportedScheme", "default_senders", "run_notifier", "POLL_SECONDS",
           "BACKOFF_SECONDS", "BACKOFF_MAX_SECONDS"]

#: Send one notification for a person to a subscriber URL; raise on any failure.
Sender = Callable[[str, Person], Awaitable[None]]

POLL_SECONDS = 5.0
#: Delay after the first failure; doubled after each further one, up to BACKOFF_MAX_SECONDS.
BACKOFF_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 3600.0
#: How long a claimed row is left alone by other senders (longer than one send may take).
_LEASE = timedelta(seconds=SEND_TIMEOUT * 4)
_BATCH = 100
_FORMAT = "%Y%m%d%H%M%S"

log = logging.getLogger("xds.mpi.notifier")


class UnsupportedScheme(Exception):
    """No sender for a subscriber URL's scheme."""


def default_senders(settings: Settings) -> dict[str, Sender]:
    """``mllp``/``mllps`` (TLS) -> ITI-10; ``http``/``https`` -> ITI-46
    (``xds.mpi.iti46.send_iti46``, imported when first used: when it is missing those
    subscribers stay queued)."""

    async def iti10(url: str, person: Person) -> None:
        await send_iti10(url, person, settings)

    async def iti46(url: str, person: Person) -> None:
        try:
            module = importlib.import_module("xds.mpi.iti46")
        except ImportError:
            raise UnsupportedScheme("no ITI-46 sender (xds.mpi.iti46) in this installation") from None
        send = cast(Callable[[str, Person, Settings], Awaitable[None]], module.send_iti46)
        await send(url, person, settings)

    return {"mllp": iti10, "mllps": iti10, "http": iti46, "https": iti46}


async def run_notifier(index: PatientIndex, settings: Settings,
                       senders: dict[str, Sender] | None = None, *,
                       poll_seconds: float = POLL_SECONDS,
                       backoff_seconds: float = BACKOFF_SECONDS) -> None:
    """Deliver queued notifications until cancelled.

    ``senders`` maps a URL scheme to its Sender (default: ``default_senders(settings)``).

    >>> task = asyncio.create_task(run_notifier(index, settings))
    """
    senders = default_senders(settings) if senders is None else senders
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def listener() -> None:  # called in the feeding thread after its commit
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the loop has closed; the row waits for the next notifier
            pass

    index.listeners.append(listener)
    try:
        while True:
            wake.clear()
            try:
                await _round(index, senders, backoff_seconds)
                due_in = await asyncio.to_thread(_seconds_to_next, index)
            except Exception:
                log.exception("PIX notification round failed")
                due_in = None
            timeout = poll_seconds if due_in is None else min(poll_seconds, max(due_in, 0.2))
            try:
                async with asyncio.timeout(timeout):
                    await wake.wait()
            except TimeoutError:
                pass
    finally:
        index.listeners.remove(listener)


async def _round(index: PatientIndex, senders: dict[str, Sender], backoff: float) -> None:
    rows = await asyncio.to_thread(_due, index)
    by_subscriber: dict[str, list[Any]] = {}
    for row in rows:
        by_subscriber.setdefault(row.subscriber, []).append(row)
    # Subscribers in parallel, each one's rows in order: one slow consumer delays only itself.
    await asyncio.gather(*(_deliver_all(index, senders, backoff, subscriber_rows)
                           for subscriber_rows in by_subscriber.values()))


async def _deliver_all(index: PatientIndex, senders: dict[str, Sender], backoff: float,
                       rows: list[Any]) -> None:
    for row in rows:
        if not await asyncio.to_thread(_claim, index, row):
            continue
        person: Person | None = None
        try:
            person = await asyncio.to_thread(_person, index, row.person_id)
            if person is None:
                # The group was joined into another or merged; that one was queued too.
                await asyncio.to_thread(_settle, index, row, "link group no longer exists")
                continue
            scheme = urlsplit(row.subscriber).scheme.lower()
            sender = senders.get(scheme)
            if sender is None:
                raise UnsupportedScheme(f"no sender for {scheme or 'a URL without scheme'}://")
            await asyncio.wait_for(sender(row.subscriber, person), SEND_TIMEOUT)
        except Exception as exc:
            if person is not None:
                await asyncio.to_thread(_audit, index, row.subscriber, person,
                                        f"{type(exc).__name__}: {exc}")
            attempts = row.attempts + 1
            delay = min(BACKOFF_MAX_SECONDS, backoff * 2 ** (attempts - 1))
            log.warning("PIX notification %s to %s failed (attempt %d, next in %.0f s): %s",
                        row.id, row.subscriber, attempts, delay, exc or type(exc).__name__)
            await asyncio.to_thread(_failed, index, row, f"{type(exc).__name__}: {exc}", delay)
        else:
            await asyncio.to_thread(_audit, index, row.subscriber, person, "")
            await asyncio.to_thread(_settle, index, row, None)


def _audit(index: PatientIndex, url: str, person: Person, error: str) -> None:
    """Patient Record R, success or (``error``) failure, of one ITI-10 / ITI-46 sent."""
    code = "ITI-10" if url.lower().startswith("mllp") else "ITI-46"
    outcome = Outcome.SERIOUS_FAILURE if error else Outcome.SUCCESS
    record_after(index.engine, index.settings, lambda: notification_event(
        index.settings, code, url, [i.cx for i in person.identifiers], outcome,
        description=error))


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(at: datetime) -> str:
    return at.strftime(_FORMAT)


def _due(index: PatientIndex) -> list[Any]:
    with read_connection(index.engine) as conn:
        return list(conn.execute(
            select(mpi_notification).where(and_(mpi_notification.c.delivered.is_(None),
                                                mpi_notification.c.next_attempt <= _stamp(_now())))
            .order_by(mpi_notification.c.id).limit(_BATCH)))


def _seconds_to_next(index: PatientIndex) -> float | None:
    with read_connection(index.engine) as conn:
        first = conn.execute(select(func.min(mpi_notification.c.next_attempt)).where(
            mpi_notification.c.delivered.is_(None))).scalar()
    if first is None:
        return None
    at = datetime.strptime(first, _FORMAT).replace(tzinfo=UTC)
    return (at - _now()).total_seconds()


def _claim(index: PatientIndex, row: Any) -> bool:
    """Take ``row`` for one send unless another sender did (compare-and-set on next_attempt)."""
    with write_transaction(index.engine) as conn:
        result = conn.execute(update(mpi_notification).where(and_(
            mpi_notification.c.id == row.id, mpi_notification.c.delivered.is_(None),
            mpi_notification.c.next_attempt == row.next_attempt)).values(
            next_attempt=_stamp(_now() + _LEASE)))
        return result.rowcount == 1


def _person(index: PatientIndex, person_id: str) -> Person | None:
    with read_connection(index.engine) as conn:
        member = conn.execute(select(mpi_identifier.c.domain, mpi_identifier.c.value).where(
            mpi_identifier.c.person_id == person_id).limit(1)).first()
    return index.person(PatientIdentifier(member.domain, member.value)) if member else None


def _settle(index: PatientIndex, row: Any, note: str | None) -> None:
    """Mark ``row`` delivered, and with it the older undelivered rows of its subscriber and
    person (what they would send is older than what was sent)."""
    now = _stamp(_now())
    with write_transaction(index.engine) as conn:
        conn.execute(update(mpi_notification).where(mpi_notification.c.id == row.id).values(
            delivered=now, attempts=row.attempts + 1, last_error=note))
        conn.execute(update(mpi_notification).where(and_(
            mpi_notification.c.subscriber == row.subscriber,
            mpi_notification.c.person_id == row.person_id,
            mpi_notification.c.delivered.is_(None), mpi_notification.c.id < row.id)).values(
            delivered=now, last_error=f"covered by notification {row.id}"))


def _failed(index: PatientIndex, row: Any, error: str, delay: float) -> None:
    with write_transaction(index.engine) as conn:
        conn.execute(update(mpi_notification).where(mpi_notification.c.id == row.id).values(
            attempts=row.attempts + 1, last_error=error[:2000],
            next_attempt=_stamp(_now() + timedelta(seconds=delay))))
