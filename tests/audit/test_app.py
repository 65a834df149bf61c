"""The server's lifespan: Application Start on the way up, Application Stop on the way down,
both shipped to the configured Audit Record Repository."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.audit.receiver import SyslogReceiver
from tests.server import running_server
from xds.app import build_app
from xds.config import Settings


def test_application_start_and_stop_reach_the_arr(tmp_path: Path) -> None:
    with SyslogReceiver("tcp") as arr:
        settings = Settings(data_dir=tmp_path, actors="registry", mllp_port=0, dicom_port=0,
                            audit_url=arr.url, audit_source_id="xds-app-test")
        with running_server(build_app(settings)) as base:
            [start] = arr.wait_for(1)
            assert httpx.get(base + "/xds/registry?wsdl").status_code == 200
        [_, stop] = arr.wait_for(2)
    for message, code in ((start, "110120"), (stop, "110121")):
        assert message.app_name == "xds-app-test"
        ident = message.xml.find("EventIdentification")
        assert ident is not None
        assert [c.get("csd-code") for c in ident] == ["110100", code]


def test_without_an_arr_the_trail_stays_local(tmp_path: Path) -> None:
    from xds.audit.trail import local_trail
    from xds.store.db import open_engine

    settings = Settings(data_dir=tmp_path, actors="registry", mllp_port=0, dicom_port=0)
    with running_server(build_app(settings)):
        pass
    engine = open_engine(settings)
    try:
        rows = local_trail(engine)
    finally:
        engine.dispose()
    assert [(r.event_type, r.sent) for r in rows] == [("110121", None), ("110120", None)]
