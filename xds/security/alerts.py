"""What a listener does with a refused TLS handshake: log it and write a Security Alert.

The audit trail (``xds.audit.trail.security_alert``, DCM 110113) records the refusal; the
write runs in a worker thread when called from an event loop, so a burst of bad handshakes
never stalls the listener.
"""

from __future__ import annotations

import asyncio
import importlib
import logging

from sqlalchemy import Engine

from xds.config import Settings
from xds.security.accept import OnRefused

__all__ = ["refusal_recorder"]

log = logging.getLogger("xds.security.alerts")


def refusal_recorder(engine: Engine, settings: Settings) -> OnRefused:
    """``on_refused`` for the listeners of ``settings``: a Security Alert in the audit trail of
    ``engine`` (the refusal itself is logged by the listener)."""

    def record(peer: str, listener: str, reason: str) -> None:
        try:
            # Looked up when needed: the trail may be absent from a build without auditing.
            security_alert = importlib.import_module("xds.audit.trail").security_alert
        except (ImportError, AttributeError):
            log.warning("no audit trail: refused handshake from %s not audited", peer)
            return

        def write() -> None:
            try:
                security_alert(engine, settings, peer=peer, endpoint=listener, reason=reason)
            except Exception:
                log.exception("Security Alert for %s on %s not written", peer, listener)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            write()
            return
        loop.run_in_executor(None, write)

    return record
