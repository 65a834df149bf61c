"""``xds pix feed/query`` against the PIX Manager's MLLP listener on loopback, ``xds patient
list/show`` on the MPI; all on the session database."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.server import free_port
from xds.cli import app
from xds.cli.pix import pix_query_message, split_messages
from xds.config import Settings
from xds.mpi.index import PatientIndex
from xds.mpi.mllp import start_mllp_server
from xds.mpi.model import Demographics, PatientIdentifier

runner = CliRunner()
LOCAL = "1.2.840.113619.6.197"  # a hospital's assigning authority


def _store_options(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]


def _value() -> str:
    return f"P{uuid.uuid4().hex[:12].upper()}"


# -- the PIX Manager's MLLP listener ----------------------------------------------------------------


@pytest.fixture
def mllp(settings: Settings, engine: Engine) -> Iterator[int]:
    """Port of the real MLLP listener (``start_mllp_server``) on a free 127.0.0.1 port, served
    from its own event loop thread against the session database."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    index = PatientIndex(engine, settings)
    server = asyncio.run_coroutine_threadsafe(
        start_mllp_server(index, settings, host="127.0.0.1", port=0), loop).result(10)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        async def stop() -> None:
            server.close()
            await server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _a04(control: str, *identifiers: PatientIdentifier, family: str = "DOE") -> str:
    pid3 = "~".join(f"{i.value}^^^&{i.domain}&ISO" for i in identifiers)
    return "\n".join([
        f"MSH|^~\\&|ADT|HOSP|XDS|AFFDOM|20240101120000||ADT^A04^ADT_A01|{control}|P|2.3.1",
        "EVN||20240101120000",
        f"PID|||{pid3}||{family}^JANE||19800101|F",
        "PV1||N",
    ])


# -- xds pix feed -----------------------------------------------------------------------------------


def test_split_messages_starts_one_at_each_msh_and_ends_segments_with_cr() -> None:
    data = (b"MSH|^~\\&|A|B\r\nPID|||1\r\n\r\nMSH|^~\\&|C|D\nPID|||2\n"
            b"\x0bMSH|^~\\&|E|F\rPID|||3\r\x1c\r")
    assert split_messages(data) == [b"MSH|^~\\&|A|B\rPID|||1\r", b"MSH|^~\\&|C|D\rPID|||2\r",
                                    b"MSH|^~\\&|E|F\rPID|||3\r"]
    with pytest.raises(ValueError):
        split_messages(b"PID|||1\rMSH|^~\\&|A|B\r")


def test_pix_feed_sends_each_message_and_prints_its_ack(
    tmp_path: Path, engine: Engine, settings: Settings, mllp: int
) -> None:
    ids = [PatientIdentifier(settings.affinity_domain, _value()) for _ in range(3)]
    feed = tmp_path / "feed.hl7"
    # LF between the first two messages' segments, CRLF in the third
    text = _a04("M1", ids[0]) + "\n" + _a04("M2", ids[1]) + "\n"
    feed.write_bytes(text.encode() + _a04("M3", ids[2]).replace("\n", "\r\n").encode() + b"\r\n")
    result = runner.invoke(app, ["pix", "feed", str(feed), "--port", str(mllp)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "M1 ADT^A04^ADT_A01: AA M1", "M2 ADT^A04^ADT_A01: AA M2", "M3 ADT^A04^ADT_A01: AA M3"]
    index = PatientIndex(engine, settings)
    for pid in ids:
        person = index.person(pid)
        assert person is not None and person.demographics.family == "DOE"


def test_pix_feed_prints_err_and_exits_1_when_an_ack_is_not_aa(
    tmp_path: Path, settings: Settings, mllp: int
) -> None:
    good = _a04("G1", PatientIdentifier(settings.affinity_domain, _value()))
    bad = "\r".join(["MSH|^~\\&|ADT|HOSP|XDS|AFFDOM|20240101120000||ADT^A04^ADT_A01|B1|P|2.3.1",
                     "EVN||20240101120000", "PID|||||DOE^JANE", "PV1||N"])
    feed = tmp_path / "feed.hl7"
    feed.write_text(bad + "\r" + good + "\r")
    result = runner.invoke(app, ["pix", "feed", str(feed), "--port", str(mllp)])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("B1 ADT^A04^ADT_A01: AE B1") or lines[0].startswith(
        "B1 ADT^A04^ADT_A01: AR B1"), lines
    assert lines[1].startswith("  ERR|"), lines
    assert "G1 ADT^A04^ADT_A01: AA G1" in lines
    assert "1 of 2 messages not accepted" in result.output


def test_pix_feed_refuses_a_file_without_messages(tmp_path: Path) -> None:
    feed = tmp_path / "feed.hl7"
    feed.write_text("PID|||1\n")
    result = runner.invoke(app, ["pix", "feed", str(feed), "--port", "1"])
    assert result.exit_code == 2 and "before the first MSH" in result.output
    feed.write_text("\n\n")
    assert runner.invoke(app, ["pix", "feed", str(feed), "--port", "1"]).exit_code == 2


def test_pix_feed_without_a_listener_exits_1(tmp_path: Path, settings: Settings) -> None:
    feed = tmp_path / "feed.hl7"
    feed.write_text(_a04("M1", PatientIdentifier(settings.affinity_domain, _value())))
    result = runner.invoke(app, ["pix", "feed", str(feed), "--port", str(free_port())])
    assert result.exit_code == 1 and "cannot connect" in result.output


# -- xds pix query ----------------------------------------------------------------------------------


def test_pix_query_message_is_a_qbp_q23() -> None:
    segments = pix_query_message("X1^^^&1.2.3&ISO", ["1.2.4", "1.2.5"], "Q1").split(b"\r")
    assert segments[0].split(b"|")[8:12] == [b"QBP^Q23^QBP_Q21", b"Q1", b"P", b"2.5"]
    assert segments[1] == b"QPD|IHE PIX Query|Q1|X1^^^&1.2.3&ISO|^^^&1.2.4&ISO~^^^&1.2.5&ISO"
    assert segments[2] == b"RCP|I"


def test_pix_query_prints_the_linked_ids(
    tmp_path: Path, engine: Engine, settings: Settings, mllp: int
) -> None:
    aff = PatientIdentifier(settings.affinity_domain, _value())
    local, other = PatientIdentifier(LOCAL, _value()), PatientIdentifier("1.2.3.99", _value())
    feed = tmp_path / "feed.hl7"
    feed.write_text(_a04("Q0", aff, local, other))
    assert runner.invoke(app, ["pix", "feed", str(feed), "--port", str(mllp)]).exit_code == 0

    result = runner.invoke(app, ["pix", "query", local.cx, "--domain", settings.affinity_domain,
                                 "--port", str(mllp)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [aff.cx]
    every = runner.invoke(app, ["pix", "query", aff.cx, "--port", str(mllp)])
    assert every.exit_code == 0, every.output
    assert sorted(every.output.splitlines()) == sorted([local.cx, other.cx])
    # a known domain the patient has no id in: NF, nothing printed on stdout
    solo = PatientIdentifier(settings.affinity_domain, _value())
    feed.write_text(_a04("Q1", solo))
    assert runner.invoke(app, ["pix", "feed", str(feed), "--port", str(mllp)]).exit_code == 0
    none = runner.invoke(app, ["pix", "query", solo.cx, "--domain", LOCAL, "--port", str(mllp)])
    assert none.exit_code == 0, none.output
    assert none.stdout == "" and "no ids in the requested domains (NF)" in none.stderr


def test_pix_query_of_an_unknown_id_prints_the_error_and_exits_1(
    settings: Settings, mllp: int
) -> None:
    result = runner.invoke(app, ["pix", "query", f"{_value()}^^^&{settings.affinity_domain}&ISO",
                                 "--port", str(mllp)])
    assert result.exit_code == 1, result.output
    assert "error: AE AE" in result.output and "QPD^1^3^1^1" in result.output


@pytest.mark.parametrize("args", [["12345"], ["X^^^&1.2.3&ISO", "--domain", "not-an-oid"]])
def test_pix_query_refuses_bad_arguments(args: list[str]) -> None:
    assert runner.invoke(app, ["pix", "query", *args, "--port", "1"]).exit_code == 2


# -- xds patient list/show --------------------------------------------------------------------------


def test_patient_list_and_show_read_the_mpi(engine: Engine, settings: Settings) -> None:
    index = PatientIndex(engine, settings)
    aff = PatientIdentifier(settings.affinity_domain, _value())
    local = PatientIdentifier(LOCAL, _value())
    person = index.feed([aff, local], Demographics(family="LISTER", given="ANN",
                                                   birth_date="19700203", sex="F"))

    listed = runner.invoke(app, ["patient", "list", "--limit", "1000000", *_store_options(settings)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    at = lines.index(f"{person.person_id}  LISTER^ANN 19700203 F")
    assert f"  {settings.affinity_domain} (affinity domain): {aff.value}" in lines[at:at + 3]
    assert f"  {LOCAL}: {local.value}" in lines[at:at + 3]
    assert runner.invoke(app, ["patient", "list", "--limit", "1", *_store_options(settings)]
                         ).output.count("urn:uuid:") == 1

    shown = runner.invoke(app, ["patient", "show", aff.cx, *_store_options(settings)])
    assert shown.exit_code == 0, shown.output
    for line in (f"person {person.person_id}", f"  {LOCAL}: {local.value}", "  family: LISTER",
                 "  birth_date: 19700203", "history:"):
        assert line in shown.output.splitlines(), shown.output
    assert " created" in shown.output


def test_patient_show_of_a_merged_id_shows_the_merge(engine: Engine, settings: Settings) -> None:
    index = PatientIndex(engine, settings)
    a, b = (PatientIdentifier(settings.affinity_domain, _value()) for _ in range(2))
    index.feed([a], Demographics())
    index.feed([b], Demographics())
    index.merge(a, b)
    shown = runner.invoke(app, ["patient", "show", b.cx, *_store_options(settings)])
    assert shown.exit_code == 0, shown.output
    assert f"  merged away into {a.cx}" in shown.output
    assert f" merged {a.cx}" in shown.output
    survivor = runner.invoke(app, ["patient", "show", a.cx, *_store_options(settings)])
    assert f"{settings.affinity_domain} (affinity domain): {a.value}" in survivor.output


def test_patient_show_of_unknown_or_malformed_id(settings: Settings) -> None:
    unknown = runner.invoke(app, ["patient", "show", f"{_value()}^^^&{settings.affinity_domain}&ISO",
                                  *_store_options(settings)])
    assert unknown.exit_code == 1 and "not known" in unknown.output
    assert runner.invoke(app, ["patient", "show", "12345", *_store_options(settings)]).exit_code == 2
