"""The local trail: Security Alert and Application Activity events, ``xds audit list``."""

from __future__ import annotations

import json
import time

from lxml import etree
from sqlalchemy import update
from typer.testing import CliRunner

from tests.audit.conftest import Outbox
from xds.audit.events import (
    Action, AuditEvent, CodedValue, EventId, Outcome, ParticipantObject,
)
from xds.audit.trail import application_activity, local_trail, record_now, security_alert
from xds.cli import app as cli
from xds.cli.audit import parse_since
from xds.store.db import write_transaction
from xds.store.tables import audit_outbox

PATIENT_NUMBER = CodedValue("2", "RFC-3881", "Patient Number")
ITI18 = CodedValue("ITI-18", "IHE Transactions", "Registry Stored Query")
ITI8 = CodedValue("ITI-8", "IHE Transactions", "Patient Identity Feed")


def about(patient: str, event_id: EventId, event_type: CodedValue, at: float) -> AuditEvent:
    return AuditEvent(event_id, Action.EXECUTE, Outcome.SUCCESS, event_type, time=at,
                      objects=(ParticipantObject(patient, 1, 1, PATIENT_NUMBER),))


def test_security_alert_of_a_tls_refusal(outbox: Outbox) -> None:
    security_alert(outbox.engine, outbox.settings, peer="10.9.8.7:51234",
                   endpoint="https://xds.example.org:8443/xds/registry",
                   reason="certificate verify failed")
    [row] = local_trail(outbox.engine)
    assert (row.event_id, row.event_type, row.outcome, row.patient) == ("110113", "110126", 8, None)
    root = etree.fromstring(row.message.encode())
    ident = root.find("EventIdentification")
    assert ident is not None and ident.get("EventActionCode") == "E"
    assert ident.findtext("EventOutcomeDescription") == "certificate verify failed"
    reporter, peer = root.findall("ActiveParticipant")
    assert reporter.get("UserID") == outbox.settings.audit_source_id
    assert reporter.get("UserIsRequestor") == "false"
    assert (peer.get("UserID"), peer.get("NetworkAccessPointID"),
            peer.get("NetworkAccessPointTypeCode"), peer.get("UserIsRequestor")) == \
        ("10.9.8.7:51234", "10.9.8.7", "2", "true")
    [obj] = root.findall("ParticipantObjectIdentification")
    assert obj.get("ParticipantObjectID") == "https://xds.example.org:8443/xds/registry"
    assert (obj.get("ParticipantObjectTypeCode"), obj.get("ParticipantObjectTypeCodeRole")) == \
        ("2", "13")


def test_security_alert_of_a_rejected_assertion(outbox: Outbox) -> None:
    security_alert(outbox.engine, outbox.settings, peer="[::1]:4000", endpoint="/xds/registry",
                   reason="assertion expired", transaction="ITI-18",
                   requestor="alice<alice@idp>", outcome=Outcome.MAJOR_FAILURE)
    [row] = local_trail(outbox.engine)
    assert (row.event_type, row.outcome) == ("110143", 12)
    root = etree.fromstring(row.message.encode())
    peer = root.findall("ActiveParticipant")[1]
    assert (peer.get("UserID"), peer.get("NetworkAccessPointID")) == ("alice<alice@idp>", "::1")
    details = [d.get("type") for d in root.iter("ParticipantObjectDetail")]
    assert details == ["Alert Description", "IHE Transaction"]


def test_application_start_and_stop(outbox: Outbox) -> None:
    application_activity(outbox.engine, outbox.settings, started=True)
    application_activity(outbox.engine, outbox.settings, started=False)
    stop, start = local_trail(outbox.engine)
    assert (start.event_id, start.event_type, stop.event_type) == ("110100", "110120", "110121")
    root = etree.fromstring(start.message.encode())
    [app] = root.findall("ActiveParticipant")
    assert app.get("UserIsRequestor") == "true" and app.get("AlternativeUserID", "").isdigit()
    role = app.find("RoleIDCode")
    assert role is not None and role.get("csd-code") == "110150"


def test_parse_since() -> None:
    assert parse_since("1h", now=10_000) == 10_000 - 3600
    assert parse_since("90s", now=100) == 10
    assert parse_since("2026-12-03T10:00:00") == parse_since("2026-12-03T10:00:00+00:00")
    assert parse_since("2026-12-03T12:00:00+02:00") == parse_since("2026-12-03T10:00:00Z")


def test_audit_list_filters(outbox: Outbox) -> None:
    now = time.time()
    record_now(outbox.engine, about("p1^^^&1.2&ISO", EventId.QUERY, ITI18, now - 7200),
               outbox.settings)
    record_now(outbox.engine, about("p1^^^&1.2&ISO", EventId.PATIENT_RECORD, ITI8, now - 60),
               outbox.settings)
    record_now(outbox.engine, about("p2^^^&1.2&ISO", EventId.QUERY, ITI18, now - 30),
               outbox.settings)
    store = ["--database-url", outbox.engine.url.render_as_string(hide_password=False),
             "--data-dir", str(outbox.settings.data_dir)]
    runner = CliRunner()

    def listed(*options: str) -> list[tuple[str, str]]:
        result = runner.invoke(cli, ["audit", "list", *store, "--json", *options])
        assert result.exit_code == 0, result.output
        return [(e["event_type"], e["patient"]) for e in json.loads(result.output)]

    assert listed() == [("ITI-18", "p2^^^&1.2&ISO"), ("ITI-8", "p1^^^&1.2&ISO"),
                        ("ITI-18", "p1^^^&1.2&ISO")]
    assert listed("--patient", "p1^^^&1.2&ISO") == [("ITI-8", "p1^^^&1.2&ISO"),
                                                   ("ITI-18", "p1^^^&1.2&ISO")]
    assert listed("--since", "1h") == [("ITI-18", "p2^^^&1.2&ISO"), ("ITI-8", "p1^^^&1.2&ISO")]
    assert listed("--event", "110112") == listed("--event", "ITI-18") == [
        ("ITI-18", "p2^^^&1.2&ISO"), ("ITI-18", "p1^^^&1.2&ISO")]
    assert listed("--limit", "1") == [("ITI-18", "p2^^^&1.2&ISO")]
    table = runner.invoke(cli, ["audit", "list", *store, "--patient", "p2^^^&1.2&ISO"])
    assert table.exit_code == 0
    assert "110112 Query" in table.output and "ITI-18" in table.output
    assert "success" in table.output and " no " in table.output
    bad = runner.invoke(cli, ["audit", "list", *store, "--since", "yesterday"])
    assert bad.exit_code == 2


def test_audit_prune_deletes_only_what_the_arr_took_long_ago(outbox: Outbox) -> None:
    now = time.time()
    for n in range(3):
        record_now(outbox.engine, about(f"p{n}^^^&1.2&ISO", EventId.QUERY, ITI18, now),
                   outbox.settings)
    ids = [row.id for row in reversed(local_trail(outbox.engine))]
    with write_transaction(outbox.engine) as conn:  # p0 delivered 100 days ago, p1 today
        conn.execute(update(audit_outbox).where(audit_outbox.c.id == ids[0])
                     .values(sent=now - 100 * 86400))
        conn.execute(update(audit_outbox).where(audit_outbox.c.id == ids[1]).values(sent=now))
    store = ["--database-url", outbox.engine.url.render_as_string(hide_password=False),
             "--data-dir", str(outbox.settings.data_dir)]
    result = CliRunner().invoke(cli, ["audit", "prune", "--sent-before", "90d", *store])
    assert result.exit_code == 0, result.output
    assert "deleted 1 delivered" in result.output
    assert sorted(r.patient for r in local_trail(outbox.engine)) == ["p1^^^&1.2&ISO",
                                                                     "p2^^^&1.2&ISO"]
    bad = CliRunner().invoke(cli, ["audit", "prune", "--sent-before", "soon", *store])
    assert bad.exit_code == 2
