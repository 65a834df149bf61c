"""Fixtures of the SOAP layer tests: one real uvicorn server with the toy endpoint per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.server import running_server
from xds.config import WSDL_DIR

from .app import build_app


@pytest.fixture(scope="module")
def spool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def base_url(spool_dir: Path) -> Iterator[str]:
    with running_server(build_app(spool_dir)) as url:
        yield url


@pytest.fixture()
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def envelope_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(WSDL_DIR / "w3" / "soap-1.2-envelope.xsd")))
