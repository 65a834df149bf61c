"""ITI-8 Patient Identity Feed over MLLP: create, update, link, merge, and each refusal's ACK."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from tests import samples, soapclient
from tests.mpi import support
from tests.mpi.conftest import PixManager
from tests.mpi.support import AFFINITY, BLUE, GREEN, adt, cx, exchange, field, qbp
from xds.mpi.model import PatientIdentifier
from xds.store.patients import is_known


def _affinity_id(pix: PixManager, value: str, domain: str = GREEN) -> PatientIdentifier:
    person = pix.index.person(PatientIdentifier(domain, value))
    assert person is not None
    (affinity,) = person.in_domain(AFFINITY)
    return affinity


def _known(engine: Engine, pid: PatientIdentifier) -> bool:
    with engine.connect() as conn:
        return is_known(conn, pid.cx)


def _assert_error(ack: object, code: str, location: str, msa: str = "AE") -> None:
    assert field(ack, "MSA", 1) == msa
    assert field(ack, "ERR", 2) == location
    assert field(ack, "ERR", 3).split("^")[0] == code
    assert field(ack, "ERR", 4) == "E"


@pytest.mark.parametrize("trigger", ["A01", "A04", "A05"])
def test_create_then_registry_knows_the_assigned_affinity_id(
        trigger: str, pix: PixManager, engine: Engine) -> None:
    value = support.new_value()
    ack = exchange(pix.address, adt(trigger, cx(value, GREEN, "IHEGREEN"), control_id="CTL" + trigger))
    assert field(ack, "MSA", 1) == "AA"
    assert field(ack, "MSA", 2) == "CTL" + trigger
    assert str(ack.segment("MSH")[9]) == f"ACK^{trigger}^ACK"
    assert field(ack, "MSH", 12) == "2.3.1"
    assert [str(s[0]) for s in ack] == ["MSH", "MSA"]
    assert _known(engine, _affinity_id(pix, value))


def test_registry_accepts_a_submission_for_the_fed_patient(pix: PixManager,
                                                           registry_url: str) -> None:
    value = support.new_value()
    assert field(exchange(pix.address, adt("A04", cx(value, GREEN))), "MSA", 1) == "AA"
    affinity = _affinity_id(pix, value)
    _, body = soapclient.post(registry_url, soapclient.ITI42,
                              samples.single_document_submission(affinity.cx))
    assert soapclient.status(body) == soapclient.SUCCESS, soapclient.registry_response_errors(body)


def test_a08_updates_demographics(pix: PixManager) -> None:
    value = support.new_value()
    exchange(pix.address, adt("A01", cx(value, GREEN), name="DOE^JANE", birth="19800101"))
    ack = exchange(pix.address, adt("A08", cx(value, GREEN), name="SMITH^JANE^Q", birth="19800102",
                                    version="2.5"))
    assert field(ack, "MSA", 1) == "AA"
    assert field(ack, "MSH", 12) == "2.5"
    person = pix.index.person(PatientIdentifier(GREEN, value))
    assert person is not None
    demo = person.demographics
    assert (demo.family, demo.given, demo.birth_date, demo.sex) == ("SMITH", "JANE", "19800102", "F")
    assert demo.address == "1 MAIN ST^^SPRINGFIELD^IL^62701"


def test_two_domains_in_pid3_are_linked(pix: PixManager) -> None:
    green, blue = support.new_value(), support.new_value()
    ack = exchange(pix.address, adt("A01", f"{cx(green, GREEN)}~{cx(blue, BLUE)}"))
    assert field(ack, "MSA", 1) == "AA"
    rsp = exchange(pix.address, qbp(cx(green, GREEN), f"^^^&{BLUE}&ISO"))
    assert field(rsp, "QAK", 2) == "OK"
    assert field(rsp, "PID", 3) == cx(blue, BLUE)


def test_ids_without_an_oid_assigning_authority_are_not_taken(pix: PixManager,
                                                              engine: Engine) -> None:
    green, local = support.new_value(), support.new_value()
    ack = exchange(pix.address, adt("A01", f"{local}^^^HOSP~{cx(green, GREEN)}~{local}^^^&HOSP&L"))
    assert field(ack, "MSA", 1) == "AA"
    assert support.identifier_rows(engine, local) == []
    assert [r.domain for r in support.identifier_rows(engine, green)] == [GREEN]


def test_a40_merge_retires_the_subsumed_id(pix: PixManager, engine: Engine) -> None:
    surviving, subsumed = support.new_value(), support.new_value()
    exchange(pix.address, adt("A01", cx(surviving, GREEN)))
    exchange(pix.address, adt("A01", cx(subsumed, GREEN)))
    subsumed_affinity = _affinity_id(pix, subsumed)
    ack = exchange(pix.address, adt("A40", cx(surviving, GREEN), mrg1=cx(subsumed, GREEN),
                                    control_id="MERGE1"))
    assert (field(ack, "MSA", 1), field(ack, "MSA", 2)) == ("AA", "MERGE1")
    assert str(ack.segment("MSH")[9]) == "ACK^A40^ACK"
    rsp = exchange(pix.address, qbp(cx(subsumed, GREEN)))
    assert field(rsp, "MSA", 1) == "AE"
    assert field(rsp, "ERR", 2) == "QPD^1^3^1^1"
    assert not _known(engine, subsumed_affinity)
    assert _known(engine, _affinity_id(pix, surviving))


def test_a40_with_mrg1_equal_to_pid3_is_refused(pix: PixManager) -> None:
    value = support.new_value()
    exchange(pix.address, adt("A01", cx(value, GREEN)))
    ack = exchange(pix.address, adt("A40", cx(value, GREEN), mrg1=cx(value, GREEN)))
    _assert_error(ack, "205", "MRG^1^1")
    assert pix.index.person(PatientIdentifier(GREEN, value)) is not None


def test_circular_merge_is_refused(pix: PixManager) -> None:
    a, b = support.new_value(), support.new_value()
    exchange(pix.address, adt("A01", cx(a, GREEN)))
    exchange(pix.address, adt("A01", cx(b, GREEN)))
    assert field(exchange(pix.address, adt("A40", cx(a, GREEN), mrg1=cx(b, GREEN))), "MSA", 1) == "AA"
    ack = exchange(pix.address, adt("A40", cx(b, GREEN), mrg1=cx(a, GREEN)))
    assert field(ack, "MSA", 1) == "AE"
    assert field(ack, "ERR", 2) == "MRG^1^1"
    assert pix.index.person(PatientIdentifier(GREEN, a)) is not None
    assert pix.index.person(PatientIdentifier(GREEN, b)) is None


def test_a40_of_an_unknown_id_is_refused(pix: PixManager) -> None:
    surviving = support.new_value()
    ack = exchange(pix.address, adt("A40", cx(surviving, GREEN), mrg1=cx(support.new_value(), GREEN)))
    _assert_error(ack, "204", "MRG^1^1")


def test_a40_without_mrg1_id_is_refused(pix: PixManager, engine: Engine) -> None:
    surviving = support.new_value()
    ack = exchange(pix.address, adt("A40", cx(surviving, GREEN), mrg1=""))
    _assert_error(ack, "101", "MRG^1^1")
    assert support.identifier_rows(engine, surviving) == []


@pytest.mark.parametrize("pid3", ["", "X1^^^HOSPITAL", "^^^&1.3.6.1.4.1.21367.13.20.2000&ISO"])
def test_missing_pid3_is_refused_and_nothing_stored(pid3: str, pix: PixManager,
                                                    engine: Engine) -> None:
    before = support.count_identifiers(engine)
    ack = exchange(pix.address, adt("A01", pid3))
    _assert_error(ack, "101", "PID^1^3")
    assert support.count_identifiers(engine) == before


def test_unknown_domain_is_refused(start_pix: Callable[..., PixManager], engine: Engine) -> None:
    strict = start_pix(pix_domains=GREEN)
    green, blue = support.new_value(), support.new_value()
    ack = exchange(strict.address, adt("A01", f"{cx(green, GREEN)}~{cx(blue, BLUE)}"))
    _assert_error(ack, "204", "PID^1^3^2^4")
    assert support.identifier_rows(engine, green) == []
    assert support.identifier_rows(engine, blue) == []


@pytest.mark.parametrize("version", ["2.4", "2.6", "3.0", ""])
def test_wrong_version_is_rejected(version: str, pix: PixManager, engine: Engine) -> None:
    value = support.new_value()
    ack = exchange(pix.address, adt("A01", cx(value, GREEN), version=version))
    _assert_error(ack, "203", "MSH^1^12", msa="AR")
    assert support.identifier_rows(engine, value) == []


@pytest.mark.parametrize(("trigger", "omit", "segment"), [
    ("A01", "PID", "PID"), ("A04", "PV1", "PV1"), ("A08", "EVN", "EVN"), ("A40", "MRG", "MRG"),
])
def test_missing_segment_is_refused(trigger: str, omit: str, segment: str, pix: PixManager,
                                    engine: Engine) -> None:
    value = support.new_value()
    mrg1 = cx(support.new_value(), GREEN) if trigger == "A40" else None
    ack = exchange(pix.address, adt(trigger, cx(value, GREEN), mrg1=mrg1, omit=[omit]))
    _assert_error(ack, "100", segment)
    assert support.identifier_rows(engine, value) == []


@pytest.mark.parametrize(("changes", "code", "location"), [
    ({"birth": "1980-01-01"}, "102", "PID^1^7"),
    ({"sex": "X"}, "103", "PID^1^8"),
    ({"name": "D" * 300 + "^JANE"}, "102", "PID^1^5"),
])
def test_bad_demographics_are_refused(changes: dict[str, str], code: str, location: str,
                                      pix: PixManager, engine: Engine) -> None:
    value = support.new_value()
    ack = exchange(pix.address, adt("A01", cx(value, GREEN), **changes))
    _assert_error(ack, code, location)
    assert support.identifier_rows(engine, value) == []


def test_unsupported_message_types_are_rejected(pix: PixManager) -> None:
    oru = adt("A01", cx(support.new_value(), GREEN)).replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01")
    _assert_error(exchange(pix.address, oru), "200", "MSH^1^9", msa="AR")
    a02 = adt("A02", cx(support.new_value(), GREEN))
    _assert_error(exchange(pix.address, a02), "201", "MSH^1^9^1^2", msa="AR")


def test_escape_sequences_are_unescaped(pix: PixManager) -> None:
    value = support.new_value()
    name = r"O\F\B\S\R\T\Y\E\Z\R\W^ANN\T\MARIE"
    assert field(exchange(pix.address, adt("A01", cx(value, GREEN), name=name)), "MSA", 1) == "AA"
    person = pix.index.person(PatientIdentifier(GREEN, value))
    assert person is not None
    assert person.demographics.family == "O|B^R&Y\\Z~W"
    assert person.demographics.given == "ANN&MARIE"


@pytest.mark.parametrize(("charset", "encoding", "family", "given"), [
    ("UNICODE UTF-8", "utf-8", "ŁUKASIEWICZ", "ZOË"),
    ("8859/1", "iso8859-1", "MÜLLER", "JOSÉ"),
    ("", "utf-8", "GARCÍA", "ÑANDÚ"),  # no MSH-18: UTF-8 taken
    ("", "iso8859-1", "SØRENSEN", "ÅSE"),  # no MSH-18, not UTF-8: ISO 8859-1 taken
])
def test_non_ascii_names(charset: str, encoding: str, family: str, given: str,
                         pix: PixManager) -> None:
    value = support.new_value()
    message = adt("A01", cx(value, GREEN), name=f"{family}^{given}", charset=charset)
    ack = exchange(pix.address, message.encode(encoding), encoding=encoding)
    assert field(ack, "MSA", 1) == "AA"
    assert field(ack, "MSH", 18) == charset
    person = pix.index.person(PatientIdentifier(GREEN, value))
    assert person is not None
    assert (person.demographics.family, person.demographics.given) == (family, given)


def test_bytes_not_valid_in_the_declared_charset_are_rejected(pix: PixManager,
                                                              engine: Engine) -> None:
    value = support.new_value()
    message = adt("A01", cx(value, GREEN), name="MÜLLER^X", charset="UNICODE UTF-8")
    ack = exchange(pix.address, message.encode("iso8859-1"), encoding="iso8859-1")
    _assert_error(ack, "102", "MSH^1^18", msa="AR")
    unknown = adt("A01", cx(value, GREEN), charset="EBCDIC")
    _assert_error(exchange(pix.address, unknown), "103", "MSH^1^18", msa="AR")
    assert support.identifier_rows(engine, value) == []


def test_lf_line_ends_and_blank_lines_are_tolerated(pix: PixManager) -> None:
    value = support.new_value()
    message = adt("A01", cx(value, GREEN), control_id="LF1").replace("\r", "\r\n\n")
    ack = exchange(pix.address, message)
    assert (field(ack, "MSA", 1), field(ack, "MSA", 2)) == ("AA", "LF1")
    assert pix.index.person(PatientIdentifier(GREEN, value)) is not None
