"""PLACEHOLDER (helper A replaces): DICOM C-STORE SCP."""
from __future__ import annotations
from typing import Any
from xds.imaging.context import ImagingSource


def start_storage_scp(source: ImagingSource) -> Any:
    raise OSError("C-STORE SCP not built yet")
