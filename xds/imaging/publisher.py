"""The quiet-period publisher: a study's manifest goes out once no instance has arrived for
``publish_quiet_seconds`` (and again, replacing it, after the study changes)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from xds.imaging.context import ImagingSource
from xds.imaging.publish import PublishError, publish_study
from xds.store.db import read_connection
from xds.store.instances import studies_due

__all__ = ["run_publisher", "publish_due"]

log = logging.getLogger("xds.imaging.publisher")


def _due(source: ImagingSource) -> Sequence[str]:
    with read_connection(source.engine) as conn:
        return studies_due(conn, source.settings.publish_quiet_seconds)


async def publish_due(source: ImagingSource) -> int:
    """Publish every study that is due now, one after the other; how many were published.

    Failures are logged (``publish_study`` records them; such a study waits for its next change).
    """
    published = 0
    for study_uid in await asyncio.to_thread(_due, source):
        try:
            result = await asyncio.to_thread(publish_study, source, study_uid)
        except PublishError as exc:
            log.warning("manifest of study %s not published: %s", study_uid, exc)
            continue
        if not result.up_to_date:
            published += 1
    return published


async def run_publisher(source: ImagingSource) -> None:
    """Publish due studies every min(5, quiet/2) seconds until cancelled; never stops on an
    error."""
    period = max(0.1, min(5.0, source.settings.publish_quiet_seconds / 2))
    while True:
        try:
            await publish_due(source)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("manifest publisher: a round failed")
        await asyncio.sleep(period)
