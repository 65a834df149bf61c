"""HTTP byte ranges (RFC 9110 §14) over stored bytes, for the endpoints that serve a document or
an instance as it is stored: ITI-68 Binary and WADO-URI.

A single ``Range: bytes=first-last`` (or ``first-``, or the suffix ``-length``) is answered 206
with ``Content-Range``, read from the blob store as that range only (an S3 ranged GET); a range
past the end is 416. Several ranges, a malformed header or an ``If-Range`` that does not match
the strong ETag (the content's SHA-256, its address) get the whole content with 200, as the RFC
allows a server to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from starlette.responses import Response, StreamingResponse

__all__ = ["RangePlan", "plan_range", "byte_range", "Unsatisfiable"]

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)

class Unsatisfiable(ValueError):
    """The range starts past the end of the content (answer 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of the single range ``header`` asks of ``size`` bytes; None when the
    whole content is to be sent (no header, several ranges, or one that does not parse).
    Raises Unsatisfiable when no byte of the range exists."""
    if not header or "," in header:
        return None
    match = _RANGE.match(header)
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:  # suffix: the last N bytes
        length = int(match[2])
        if length == 0:
            raise Unsatisfiable(header)
        return max(0, size - length), size
    start = int(match[1])
    end = int(match[2]) + 1 if match[2] else size
    if match[2] and end <= start:
        return None  # last < first: invalid, ignored
    if start >= size:
        raise Unsatisfiable(header)
    return start, min(end, size)


@dataclass(frozen=True, slots=True)
class RangePlan:
    """What to send: ``status`` 200 (all), 206 (bytes ``[start, end)``) or 416 (nothing), and
    the headers that say so. The caller opens the bytes (off the event loop: an S3 GET)."""

    status: int
    start: int
    end: int | None
    headers: dict[str, str]

    def response(self, body: Iterator[bytes] | None, media_type: str) -> Response:
        """The Response streaming ``body`` (None for HEAD and 416: headers only)."""
        if body is None:
            return Response(b"", status_code=self.status, media_type=media_type,
                            headers=self.headers)
        return StreamingResponse(body, status_code=self.status, media_type=media_type,
                                 headers=self.headers)


def plan_range(headers: Mapping[str, str], size: int, *, etag: str | None = None,
               extra: Mapping[str, str] | None = None) -> RangePlan:
    """The RangePlan for content of ``size`` bytes, strong ETag ``etag``, asked for with the
    request ``headers`` (``Range``, ``If-Range``)."""
    out = {"Accept-Ranges": "bytes", **(extra or {})}
    if etag is not None:
        out["ETag"] = f'"{etag}"'
    wanted = headers.get("range")
    if_range = headers.get("if-range")
    if wanted and if_range is not None and (etag is None or if_range.strip() != f'"{etag}"'):
        wanted = None  # the client's copy is another version: send it all
    try:
        span = byte_range(wanted, size)
    except Unsatisfiable:
        return RangePlan(416, 0, 0, {**out, "Content-Range": f"bytes */{size}"})
    if span is None:
        return RangePlan(200, 0, None, {**out, "Content-Length": str(size)})
    start, end = span
    return RangePlan(206, start, end, {**out, "Content-Range": f"bytes {start}-{end - 1}/{size}",
                                       "Content-Length": str(end - start)})
