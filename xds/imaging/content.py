"""An instance's bytes in a transfer syntax the requester accepts: as stored when it may, else
converted between uncompressed syntaxes while streaming (RAD-69 §4.69.4.2.3, WADO-RS)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from functools import partial

from xds.dicom.part10 import read_header, transcode
from xds.dicom.uids import CONVERTIBLE_SYNTAXES
from xds.imaging.context import Content, ImagingSource
from xds.store.instances import Instance

__all__ = ["instance_content", "ANY_SYNTAX"]

#: In an accepted list: the stored syntax, whatever it is (WADO-RS ``transfer-syntax=*``).
ANY_SYNTAX = "*"


def instance_content(source: ImagingSource, instance: Instance,
                     accepted: Sequence[str]) -> Content | None:
    """``instance`` in the first syntax of ``accepted`` that can be produced, or None.

    The stored syntax is preferred wherever it appears in ``accepted`` (no work, bytes as
    received); otherwise the first convertible syntax wins. Raises FileNotFoundError when the
    stored bytes are gone.
    """
    if instance.archive_url is not None:
        if source.archive is None:
            raise FileNotFoundError(f"{instance.sop_instance_uid} is held by an archive that is "
                                    "not configured")
        return source.archive.content(instance, accepted)
    if instance.sha256 is None:
        raise FileNotFoundError(f"{instance.sop_instance_uid} has no stored bytes")
    stored = instance.transfer_syntax_uid
    if ANY_SYNTAX in accepted or stored in accepted:
        sha = instance.sha256
        if not source.blobs.exists(sha):
            raise FileNotFoundError(f"{instance.sop_instance_uid}: blob {sha} is missing")
        return Content(stored, instance.size, partial(source.blobs.open, sha), sha,
                       partial(source.blobs.open, sha))
    if stored not in CONVERTIBLE_SYNTAXES:
        return None
    target = next((ts for ts in accepted if ts in CONVERTIBLE_SYNTAXES), None)
    if target is None:
        return None
    held = ExitStack()  # the file to convert (S3: a local copy) lives as long as the stream
    try:
        path = held.enter_context(source.blobs.local_copy(instance.sha256))
        header = read_header(path)
        size, chunks = transcode(path, header, target)
    except BaseException:
        held.close()
        raise
    return Content(target, size, _once(chunks, held))


def _once(chunks: Iterator[bytes], held: ExitStack) -> partial[Iterator[bytes]]:
    """The converted chunks; ``held`` is released when they are done (or dropped)."""
    def stream() -> Iterator[bytes]:
        with held:
            yield from chunks
    return partial(iter, stream())
