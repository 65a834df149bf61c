"""ITI-9 PIX Query over MLLP: each row of ITI TF-2a §3.9.4.2.2.6's answer table, on the wire."""

from __future__ import annotations

from typing import Any

import pytest

from tests.mpi import support
from tests.mpi.conftest import PixManager
from tests.mpi.support import AFFINITY, BLUE, GREEN, RED, adt, cx, exchange, field, qbp
from xds.mpi.model import PatientIdentifier


@pytest.fixture(scope="module")
def linked(pix: PixManager) -> tuple[str, str, str]:
    """(green, blue, affinity) values of one person fed with two domains."""
    green, blue = support.new_value(), support.new_value()
    ack = exchange(pix.address, adt("A01", f"{cx(green, GREEN)}~{cx(blue, BLUE)}"))
    assert field(ack, "MSA", 1) == "AA"
    person = pix.index.person(PatientIdentifier(GREEN, green))
    assert person is not None
    (affinity,) = person.in_domain(AFFINITY)
    return green, blue, affinity.value


def _query(pix: PixManager, pid: str, domains: str = "", **options: Any) -> Any:
    request = qbp(pid, domains, tag="TAG1", control_id="QRY1", **options)
    rsp = exchange(pix.address, request)
    if field(rsp, "MSH", 9).startswith("RSP"):
        assert field(rsp, "MSH", 9) == "RSP^K23^RSP_K23"
        assert field(rsp, "MSA", 2) == "QRY1"
        assert field(rsp, "QAK", 1) == "TAG1"
        # QPD echoed exactly as sent
        assert str(rsp.segment("QPD")) == request.split("\r")[1]
    return rsp


def test_requested_domain_returns_its_ids(pix: PixManager, linked: tuple[str, str, str]) -> None:
    green, blue, _ = linked
    rsp = _query(pix, cx(green, GREEN), f"^^^&{BLUE}&ISO")
    assert (field(rsp, "MSA", 1), field(rsp, "QAK", 2)) == ("AA", "OK")
    assert field(rsp, "PID", 3) == cx(blue, BLUE)
    assert field(rsp, "PID", 5) == "~^^^^^^S"
    assert [str(s[0]) for s in rsp] == ["MSH", "MSA", "QAK", "QPD", "PID"]


def test_all_domains_returns_every_linked_id_but_the_queried_one(
        pix: PixManager, linked: tuple[str, str, str]) -> None:
    green, blue, affinity = linked
    rsp = _query(pix, cx(green, GREEN))
    assert (field(rsp, "MSA", 1), field(rsp, "QAK", 2)) == ("AA", "OK")
    assert sorted(field(rsp, "PID", 3).split("~")) == sorted([cx(blue, BLUE), cx(affinity, AFFINITY)])


def test_queried_id_is_returned_when_its_domain_is_requested(
        pix: PixManager, linked: tuple[str, str, str]) -> None:
    green, blue, _ = linked
    rsp = _query(pix, cx(green, GREEN), f"^^^&{GREEN}&ISO~^^^&{BLUE}&ISO")
    assert field(rsp, "PID", 3).split("~") == [cx(green, GREEN), cx(blue, BLUE)]


def test_known_id_without_ids_in_the_requested_domain_is_nf(pix: PixManager) -> None:
    green = support.new_value()
    exchange(pix.address, adt("A01", cx(green, GREEN)))
    rsp = _query(pix, cx(green, GREEN), f"^^^&{BLUE}&ISO")
    assert (field(rsp, "MSA", 1), field(rsp, "QAK", 2)) == ("AA", "NF")
    assert [str(s[0]) for s in rsp] == ["MSH", "MSA", "QAK", "QPD"]


def _assert_ae(rsp: Any, location: str) -> None:
    assert (field(rsp, "MSA", 1), field(rsp, "QAK", 2)) == ("AE", "AE")
    assert [str(s[0]) for s in rsp] == ["MSH", "MSA", "ERR", "QAK", "QPD"]
    assert field(rsp, "ERR", 1) == ""
    assert field(rsp, "ERR", 2) == location
    assert field(rsp, "ERR", 3) == "204^Unknown key identifier^HL70357"
    assert field(rsp, "ERR", 4) == "E"


def test_unknown_id_in_a_known_domain(pix: PixManager, linked: tuple[str, str, str]) -> None:
    _assert_ae(_query(pix, cx(support.new_value(), GREEN)), "QPD^1^3^1^1")


def test_unknown_source_domain(pix: PixManager) -> None:
    _assert_ae(_query(pix, cx(support.new_value(), RED)), "QPD^1^3^1^4")
    _assert_ae(_query(pix, f"{support.new_value()}^^^HOSPITAL"), "QPD^1^3^1^4")


def test_unknown_target_domains_one_err2_repetition_each(
        pix: PixManager, linked: tuple[str, str, str]) -> None:
    green = linked[0]
    rsp = _query(pix, cx(green, GREEN), f"^^^&{BLUE}&ISO~^^^&{RED}&ISO~^^^&1.2.3.4.5.999&ISO")
    _assert_ae(rsp, "QPD^1^4^2~QPD^1^4^3")


def test_unknown_source_domain_is_reported_before_target_domains(pix: PixManager) -> None:
    _assert_ae(_query(pix, cx(support.new_value(), RED), f"^^^&{RED}&ISO"), "QPD^1^3^1^4")


def test_merged_away_id_is_unknown(pix: PixManager) -> None:
    a, b = support.new_value(), support.new_value()
    exchange(pix.address, adt("A01", cx(a, GREEN)))
    exchange(pix.address, adt("A01", cx(b, GREEN)))
    exchange(pix.address, adt("A40", cx(a, GREEN), mrg1=cx(b, GREEN)))
    _assert_ae(_query(pix, cx(b, GREEN)), "QPD^1^3^1^1")


def test_wrong_version_is_rejected_with_an_ack(pix: PixManager, linked: tuple[str, str, str]) -> None:
    rsp = _query(pix, cx(linked[0], GREEN), version="2.3.1")
    assert field(rsp, "MSH", 9) == "ACK^Q23^ACK"
    assert (field(rsp, "MSA", 1), field(rsp, "MSA", 2)) == ("AR", "QRY1")
    assert field(rsp, "ERR", 2) == "MSH^1^12"
    assert field(rsp, "ERR", 3).split("^")[0] == "203"


def test_query_without_qpd_is_refused(pix: PixManager) -> None:
    request = "\r".join(qbp(cx("X", GREEN)).split("\r")[::2])  # MSH and RCP only
    rsp = exchange(pix.address, request)
    assert field(rsp, "MSA", 1) == "AE"
    assert field(rsp, "ERR", 2) == "QPD"
    assert field(rsp, "ERR", 3).split("^")[0] == "100"
