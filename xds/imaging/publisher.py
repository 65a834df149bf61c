"""PLACEHOLDER (helper B replaces): quiet-period manifest publisher."""
from __future__ import annotations
import asyncio
from xds.imaging.context import ImagingSource


async def run_publisher(source: ImagingSource) -> None:
    await asyncio.Event().wait()
