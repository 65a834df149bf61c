"""Fixtures of the ops tests: a database of their own, fresh per test (they stamp and downgrade
schemas), on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_database
from xds.config import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, made for this test alone."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def fresh_settings(fresh_url: str, tmp_path: Path) -> Settings:
    """Settings on ``fresh_url`` and a data directory of this test; MLLP and DICOM off."""
    return Settings(data_dir=tmp_path / "data", database_url=fresh_url, mllp_port=0,
                    dicom_port=0)
