"""The Range header parser of xds.ranges (RFC 9110 §14.1.2), edge cases the endpoints share."""

from __future__ import annotations

import pytest

from xds.ranges import Unsatisfiable, byte_range, plan_range


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None), ("bytes=0-0", (0, 1)), ("bytes=0-", (0, 100)),
    ("bytes=99-", (99, 100)), ("bytes=-1", (99, 100)), ("bytes=-500", (0, 100)),
    ("bytes=50-1000", (50, 100)), ("BYTES = 1 - 2", (1, 3)), ("bytes=2-1", None),
    ("bytes=-", None), ("bytes=0-1,3-4", None), ("pages=1-2", None), ("bytes=a-b", None),
])
def test_byte_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=500-600", "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, 100)


def test_empty_content_cannot_satisfy_any_range() -> None:
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=0-", 0)
    assert plan_range({"range": "bytes=0-"}, 0).status == 416
    assert plan_range({}, 0).headers["Content-Length"] == "0"
