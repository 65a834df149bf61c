"""TLS on every port (ITI-19 Authenticate Node): HTTP, MLLP and DICOM accept a peer whose
certificate chains to the CA and refuse, at the handshake and visibly, every other peer.

Certificates come from ``xds certs init`` and from ``xds.security.certs`` for the ones no
deployment should hold (another CA, expired, not yet valid). Everything runs over real sockets.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree
from sqlalchemy import func, select
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from typer.testing import CliRunner

from tests.mpi.support import AFFINITY, adt, cx, frame, new_value, qbp, read_frame
from tests.server import free_port, running_server
from xds.app import build_app
from xds.cli import app as cli
from xds.clients.registration import RemoteRegistry
from xds.clients.source import build_submission, provide_and_register
from xds.config import Settings
from xds.model.errors import ErrorCode, XdsError
from xds.mpi.iti10 import NotificationRefused, send_iti10
from xds.mpi.iti46 import Iti46Error, send_iti46
from xds.mpi.model import PatientIdentifier, Person
from xds.security.certs import Issued, issue, make_ca
from xds.security.credentials import Credentials
from xds.security.idp import issue_assertion
from xds.security.tls import client_context, listener_context
from xds.store import tables
from xds.store.db import open_engine
from xds.store.patients import add_patient

WAIT = 10.0
HTTP_PROBE = b"GET /xds/registry?wsdl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class Pki:
    """The files of ``xds certs init`` and the test's own bad client certificates."""

    folder: Path
    bad: dict[str, tuple[Path, Path]]

    def file(self, name: str) -> str:
        return str(self.folder / name)

    @property
    def ca(self) -> str:
        return self.file("ca.pem")

    @property
    def client(self) -> Credentials:
        return Credentials(ca=self.ca, cert=self.file("client.pem"),
                           key=self.file("client-key.pem"))


@dataclass
class Node:
    """A running ``xds`` with TLS on its HTTP, MLLP and DICOM ports."""

    settings: Settings
    url: str
    refusals: list[tuple[str, str, str]] = field(default_factory=list)
    refused: threading.Event = field(default_factory=threading.Event)

    def on_refused(self, peer: str, listener: str, reason: str) -> None:
        self.refusals.append((peer, listener, reason))
        self.refused.set()


def _load(folder: Path, name: str) -> Issued:
    cert = x509.load_pem_x509_certificate((folder / f"{name}.pem").read_bytes())
    key = load_pem_private_key((folder / f"{name}-key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return Issued(cert, key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki") / "certs"
    result = CliRunner().invoke(cli, ["certs", "init", str(folder)])
    assert result.exit_code == 0, result.output
    ca = _load(folder, "ca")
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    made = {
        "other-ca": issue(make_ca("another CA"), "intruder", server=False),
        "expired": issue(ca, "expired", server=False, not_before=now - 10 * day,
                         not_after=now - day),
        "not-yet-valid": issue(ca, "early", server=False, not_before=now + day,
                               not_after=now + 10 * day),
        "other-server": issue(make_ca("another CA"), "localhost",
                              hosts=["localhost", "127.0.0.1"], client=False),
    }
    bad = {}
    for name, issued in made.items():
        paths = folder / f"{name}.pem", folder / f"{name}-key.pem"
        issued.write(*paths)
        bad[name] = paths
    return Pki(folder, bad)


def _tls_settings(pki: Pki, tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        data_dir=tmp, database_url=f"sqlite:///{tmp / 'registry.sqlite'}", port=free_port(),
        mllp_port=0, dicom_port=0, actors="registry", tls_cert=pki.file("server.pem"),
        tls_key=pki.file("server-key.pem"), tls_ca=pki.ca, tls_client_auth="required")
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def _serving(settings: Settings) -> Iterator[Node]:
    node = Node(settings, "")
    with running_server(build_app(settings), port=settings.port,
                        ssl_context=listener_context(settings),
                        on_refused=node.on_refused) as url:
        node.url = url
        yield node


@pytest.fixture(scope="module")
def node(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """Registry, PIX Manager and imaging source with TLS required on all three ports."""
    settings = _tls_settings(pki, tmp_path_factory.mktemp("node"), actors="registry,pix,imaging",
                             mllp_port=free_port(), dicom_port=free_port())
    with _serving(settings) as running:
        yield running


def _client(pki: Pki, case: str) -> ssl.SSLContext:
    """The client context of ``case``: ``good``, ``no-cert``, one of ``pki.bad``, ``tls1.1``."""
    if case == "tls1.1":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with warnings.catch_warnings():  # deprecated: the point of the test
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        context.load_verify_locations(pki.ca)
        context.load_cert_chain(pki.file("client.pem"), pki.file("client-key.pem"))
        return context
    if case == "no-cert":
        return client_context(pki.ca)
    cert, key = pki.bad.get(case, (pki.folder / "client.pem", pki.folder / "client-key.pem"))
    return client_context(pki.ca, str(cert), str(key))


def _answer(port: int, context: ssl.SSLContext | None, probe: bytes) -> bytes | None:
    """What the server sends back to ``probe`` before it closes; None when the TLS layer
    failed (on either side)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        try:
            if context is None:
                raw.sendall(probe)
                return raw.recv(65536)
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(probe)
                return tls.recv(65536)
        except (ssl.SSLError, ConnectionError):
            return None


def _wait_for_refusal(caplog: pytest.LogCaptureFixture, listener: str) -> tuple[str, ...]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for record in caplog.records:
            if record.name == "xds.security.accept" and "refused" in record.msg \
                    and isinstance(record.args, tuple) and record.args[1] == listener:
                return tuple(str(a) for a in record.args)
        time.sleep(0.02)
    raise AssertionError(f"no refusal logged for {listener}")


def _dicom_echo(port: int, context: ssl.SSLContext | None) -> bool:
    ae = AE(ae_title="TLS_TEST")
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = 5
    ae.add_requested_context(Verification)
    tls = (context, "localhost") if context is not None else None
    assoc = ae.associate("127.0.0.1", port, ae_title="XDS_IDS", tls_args=tls)
    try:
        return assoc.is_established and assoc.send_c_echo().Status == 0x0000
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


# --- xds certs init --------------------------------------------------------------------------

def test_certs_init_writes_a_ca_server_and_client(tmp_path: Path) -> None:
    folder = tmp_path / "pki"
    result = CliRunner().invoke(cli, ["certs", "init", str(folder), "--host", "xds.example",
                                      "--host", "10.1.2.3"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == [
        "ca-key.pem", "ca.pem", "client-key.pem", "client.pem", "server-key.pem", "server.pem"]
    assert "--tls-cert" in result.output and "--client-auth required" in result.output
    server = x509.load_pem_x509_certificate((folder / "server.pem").read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["xds.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert (folder / "server-key.pem").stat().st_mode & 0o077 == 0


def test_certs_init_refuses_to_overwrite(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["certs", "init", str(tmp_path)]).exit_code == 0
    before = (tmp_path / "ca.pem").read_bytes()
    result = CliRunner().invoke(cli, ["certs", "init", str(tmp_path)])
    assert result.exit_code == 1
    assert "exists" in result.output
    assert (tmp_path / "ca.pem").read_bytes() == before


# --- the good peer on every port --------------------------------------------------------------

def test_http_serves_the_wsdl_over_mutual_tls(node: Node, pki: Pki) -> None:
    response = httpx.get(node.url + "/xds/registry?wsdl", verify=pki.client.verify(),
                         timeout=WAIT)
    assert response.status_code == 200
    assert b"DocumentRegistry" in response.content
    # uvicorn saw the TLS transport: the WSDL's address is the https one.
    assert f"https://127.0.0.1:{node.settings.port}/xds/registry".encode() in response.content


def test_mllp_answers_iti9_over_mutual_tls(node: Node, pki: Pki) -> None:
    context = _client(pki, "good")
    with socket.create_connection(("127.0.0.1", node.settings.mllp_port), timeout=WAIT) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(frame(qbp("NOBODY^^^&1.3.6.1.4.1.21367.13.20.1000&ISO").encode()))
        answer = read_frame(tls)
    assert answer.startswith(b"MSH|") and b"RSP^K23" in answer


def test_dicom_echo_over_mutual_tls(node: Node, pki: Pki) -> None:
    assert _dicom_echo(node.settings.dicom_port, _client(pki, "good"))


# --- every other peer is refused at the handshake ---------------------------------------------

BAD_PEERS = ["no-cert", "other-ca", "expired", "not-yet-valid", "plain", "tls1.1"]


@pytest.mark.parametrize("case", BAD_PEERS)
def test_http_refuses(node: Node, pki: Pki, case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "xds.security.accept")
    node.refused.clear()
    context = None if case == "plain" else _client(pki, case)
    answer = _answer(node.settings.port, context, HTTP_PROBE)
    assert not (answer or b"").startswith(b"HTTP/")
    if case != "tls1.1":  # an OpenSSL build may refuse to even send a TLS 1.1 hello
        assert node.refused.wait(WAIT)
        peer, listener, _reason = node.refusals[-1]
        assert (peer, listener) == ("127.0.0.1", f"http:{node.settings.port}")


@pytest.mark.parametrize("case", BAD_PEERS)
def test_mllp_refuses(node: Node, pki: Pki, case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "xds.security.accept")
    context = None if case == "plain" else _client(pki, case)
    message = frame(qbp("NOBODY^^^&1.3.6.1.4.1.21367.13.20.1000&ISO").encode())
    answer = _answer(node.settings.mllp_port, context, message)
    assert not (answer or b"").startswith(b"\x0bMSH")
    if case != "tls1.1":
        peer = _wait_for_refusal(caplog, f"mllp:{node.settings.mllp_port}")[0]
        assert peer == "127.0.0.1"


@pytest.mark.parametrize("case", BAD_PEERS)
def test_dicom_refuses(node: Node, pki: Pki, case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "xds.security.accept")
    context = None if case == "plain" else _client(pki, case)
    assert not _dicom_echo(node.settings.dicom_port, context)
    if case != "tls1.1":
        peer = _wait_for_refusal(caplog, f"dicom:{node.settings.dicom_port}")[0]
        assert peer == "127.0.0.1"


def test_client_refuses_a_server_outside_its_ca(node: Node, pki: Pki) -> None:
    cert, key = pki.bad["other-server"]
    stranger = Credentials(ca=str(cert), cert=pki.file("client.pem"),
                           key=pki.file("client-key.pem"))
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(node.url + "/xds/registry?wsdl", verify=stranger.verify(), timeout=WAIT)


def test_optional_client_auth_lets_a_certless_client_in(pki: Pki, tmp_path: Path) -> None:
    with _serving(_tls_settings(pki, tmp_path, tls_client_auth="optional")) as node:
        certless = Credentials(ca=pki.ca)
        response = httpx.get(node.url + "/xds/registry?wsdl", verify=certless.verify(),
                             timeout=WAIT)
        assert response.status_code == 200
        # A certificate, when presented, must still chain to the CA.
        answer = _answer(node.settings.port, _client(pki, "other-ca"), HTTP_PROBE)
        assert not (answer or b"").startswith(b"HTTP/")
        assert node.refused.wait(WAIT)


# --- repository -> registry over mutual TLS ---------------------------------------------------

def test_iti41_registers_over_mutual_tls(pki: Pki, tmp_path: Path) -> None:
    registry = _tls_settings(pki, tmp_path / "registry", actors="registry")
    with _serving(registry) as registry_node:
        repository = _tls_settings(
            pki, tmp_path / "repository", actors="repository",
            registry_url=registry_node.url + "/xds/registry",
            client_cert=pki.file("client.pem"), client_key=pki.file("client-key.pem"))
        engine = open_engine(registry)
        pid = f"TLS{free_port()}^^^&{registry.affinity_domain}&ISO"
        add_patient(engine, pid)
        engine.dispose()
        document = tmp_path / "report.txt"
        document.write_text("over mutual TLS\n")
        with _serving(repository) as repository_node:
            url = repository_node.url + "/xds/repository"
            answer = provide_and_register(url, build_submission([document], pid), [document],
                                          credentials=pki.client)
            assert answer.success, answer.errors
            # The same through the command line: xds submit, then xds retrieve.
            submitted = CliRunner().invoke(cli, ["submit", str(document), "--patient", pid,
                                                 "--url", url, *_tls_options(pki)])
            assert submitted.exit_code == 0, submitted.output
            unique_id = submitted.output.split("document uniqueId: ")[1].split()[0]
            out = tmp_path / "back.txt"
            retrieved = CliRunner().invoke(cli, [
                "retrieve", "--document", unique_id, "--out", str(out), "--url", url,
                "--repository", repository.repository_unique_id, *_tls_options(pki)])
            assert retrieved.exit_code == 0, retrieved.output
            assert out.read_text() == "over mutual TLS\n"
        assert not registry_node.refusals


def test_repository_without_certificate_cannot_register(pki: Pki, tmp_path: Path) -> None:
    with _serving(_tls_settings(pki, tmp_path, actors="registry")) as registry_node:
        register = RemoteRegistry(registry_node.url + "/xds/registry",
                                  verify=Credentials(ca=pki.ca).verify())
        try:
            with pytest.raises(XdsError) as raised:
                register(etree.Element("{urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0}"
                                       "SubmitObjectsRequest"))
        finally:
            register.close()
        assert raised.value.errors[0].code == ErrorCode.XDSRegistryNotAvailable
        assert registry_node.refused.wait(WAIT)
        assert registry_node.refusals[-1][0] == "127.0.0.1"


# --- clients: CLI commands and notifications ---------------------------------------------------

def _tls_options(pki: Pki) -> list[str]:
    return ["--cert", pki.file("client.pem"), "--key", pki.file("client-key.pem"),
            "--ca", pki.ca]


def test_cli_query_over_mutual_tls(node: Node, pki: Pki) -> None:
    pid = "NOBODY^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    url = node.url + "/xds/registry"
    result = CliRunner().invoke(cli, ["query", "find-documents", pid, "--url", url,
                                      *_tls_options(pki)])
    assert result.exit_code == 0, result.output
    assert "status: Success" in result.output
    certless = CliRunner().invoke(cli, ["query", "find-documents", pid, "--url", url,
                                        "--ca", pki.ca])
    assert certless.exit_code == 1
    assert "ITI-18 to" in certless.output


def test_cli_pix_feed_over_mutual_tls(node: Node, pki: Pki, tmp_path: Path) -> None:
    feed = tmp_path / "feed.hl7"
    feed.write_text(adt("A01", cx(new_value(), AFFINITY)))
    port = str(node.settings.mllp_port)
    result = CliRunner().invoke(cli, ["pix", "feed", str(feed), "--port", port,
                                      *_tls_options(pki)])
    assert result.exit_code == 0, result.output
    assert ": AA" in result.output
    plain = CliRunner().invoke(cli, ["pix", "feed", str(feed), "--port", port])
    assert plain.exit_code == 1


def test_iti10_over_mllps_presents_the_node_certificate(node: Node, pki: Pki) -> None:
    person = Person(person_id="p1", identifiers=[PatientIdentifier(AFFINITY, new_value())])
    url = f"mllps://localhost:{node.settings.mllp_port}"
    sender = Settings(client_cert=pki.file("client.pem"), client_key=pki.file("client-key.pem"),
                      client_ca=pki.ca)
    # The PIX Manager is no PIX Consumer: it answers the A31, but not with AA.
    with pytest.raises(NotificationRefused):
        asyncio.run(send_iti10(url, person, sender))
    # Refused without a certificate: in TLS 1.3 the client learns it when reading the ACK.
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        asyncio.run(send_iti10(url, person, Settings(client_ca=pki.ca)))


# --- xds serve ---------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_speaks_tls_with_its_options(pki: Pki, tmp_path: Path, workers: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDS_")}
    command = [sys.executable, "-m", "xds", "serve", "--port", str(port), "--data-dir",
               str(tmp_path), "--actors", "registry", "--mllp-port", "0", "--dicom-port", "0",
               "--workers", workers, "--tls-cert", pki.file("server.pem"),
               "--tls-key", pki.file("server-key.pem"), "--tls-ca", pki.ca,
               "--client-auth", "required"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}/xds/registry"
    try:
        wsdl = None
        deadline = time.monotonic() + 30
        while wsdl is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                wsdl = httpx.get(url + "?wsdl", verify=pki.client.verify(), timeout=2)
            except httpx.ConnectError:
                time.sleep(0.1)
        assert wsdl is not None and wsdl.status_code == 200, \
            proc.stdout.read() if proc.stdout and proc.poll() is not None else "no answer"
        assert url.encode() in wsdl.content
        answer = _answer(port, _client(pki, "no-cert"), HTTP_PROBE)
        assert not (answer or b"").startswith(b"HTTP/")
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
    assert b"TLS handshake from 127.0.0.1 on http:" in output


def _node_alerts(node: Node) -> int:
    """Security Alerts (110113) of Node Authentication (110126) in the node's audit outbox."""
    outbox = tables.audit_outbox
    engine = open_engine(node.settings)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.event_id == "110113", outbox.c.event_type == "110126")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("listener", ["mllp", "dicom"])
def test_refused_handshake_is_audited(node: Node, pki: Pki, listener: str) -> None:
    before = _node_alerts(node)
    if listener == "mllp":
        _answer(node.settings.mllp_port, _client(pki, "expired"), b"\x0b")
    else:
        assert not _dicom_echo(node.settings.dicom_port, _client(pki, "expired"))
    deadline = time.monotonic() + WAIT
    while _node_alerts(node) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _node_alerts(node) > before


@pytest.mark.parametrize("legacy", ["yes", "no"])
def test_legacy_suite_only_when_asked_for(pki: Pki, tmp_path: Path, legacy: str) -> None:
    context = _client(pki, "good")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("AES128-SHA")  # TLS_RSA_WITH_AES_128_CBC_SHA, the ATNA baseline
    with _serving(_tls_settings(pki, tmp_path, tls_legacy=legacy)) as node:
        with socket.create_connection(("127.0.0.1", node.settings.port), timeout=WAIT) as raw:
            try:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    cipher = tls.cipher()
            except ssl.SSLError:
                cipher = None
    if legacy == "yes":
        assert cipher is not None and cipher[0] == "AES128-SHA"
    else:
        assert cipher is None


def test_iti46_over_https_presents_the_node_certificate(node: Node, pki: Pki) -> None:
    # The PIX Manager's ITI-44 endpoint takes the same PRPA_IN201302UV02 a consumer would.
    person = Person(person_id="p2", identifiers=[PatientIdentifier(AFFINITY, new_value())])
    sender = Settings(client_cert=pki.file("client.pem"), client_key=pki.file("client-key.pem"),
                      client_ca=pki.ca)
    asyncio.run(send_iti46(node.url + "/pix", person, sender))
    with pytest.raises(Iti46Error, match="failed"):
        asyncio.run(send_iti46(node.url + "/pix", person, Settings(client_ca=pki.ca)))


def test_cli_query_with_saml_over_mutual_tls(pki: Pki, tmp_path: Path) -> None:
    idp = issue(make_ca("idp CA"), "idp", server=False)
    idp.write(tmp_path / "idp.pem", tmp_path / "idp-key.pem")
    audience = "urn:xds:test:tls"
    token = tmp_path / "assertion.xml"
    token.write_bytes(issue_assertion(idp.key_pem, idp.cert_pem, subject="alice",
                                      audience=audience))
    settings = _tls_settings(pki, tmp_path / "data", xua="required",
                             xua_idp_certs=str(tmp_path / "idp.pem"), xua_audience=audience)
    pid = "NOBODY^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    with _serving(settings) as node:
        query = ["query", "find-documents", pid, "--url", node.url + "/xds/registry",
                 *_tls_options(pki)]
        without = CliRunner().invoke(cli, query)
        assert without.exit_code == 1
        assert "SOAP fault" in without.output
        result = CliRunner().invoke(cli, [*query, "--saml", str(token)])
        assert result.exit_code == 0, result.output
        assert "status: Success" in result.output


@pytest.mark.parametrize("database", ["own", "shared"])
def test_registry_and_repository_over_mutual_tls_with_xua(pki: Pki, tmp_path: Path,
                                                          database: str) -> None:
    """The README's secure pair: both require XUA; the repository passes the submitter's
    assertion on with its ITI-42 (also when both share one database, whose replay memory is
    per service), and the registry audits the same user."""
    idp = issue(make_ca("idp CA"), "idp", server=False)
    idp.write(tmp_path / "idp.pem", tmp_path / "idp-key.pem")
    audience = "urn:xds:test:pair"
    xua = dict(xua="required", xua_idp_certs=str(tmp_path / "idp.pem"), xua_audience=audience)

    def token(name: str) -> str:
        path = tmp_path / f"{name}.xml"
        path.write_bytes(issue_assertion(idp.key_pem, idp.cert_pem, subject="dr-who",
                                         audience=audience))
        return str(path)

    registry = _tls_settings(pki, tmp_path / "registry", actors="registry", **xua)
    shared = {"database_url": registry.database_url} if database == "shared" else {}
    with _serving(registry) as registry_node:
        repository = _tls_settings(
            pki, tmp_path / "repository", actors="repository",
            registry_url=registry_node.url + "/xds/registry",
            client_cert=pki.file("client.pem"), client_key=pki.file("client-key.pem"),
            **xua, **shared)
        engine = open_engine(registry)
        pid = f"XUA{free_port()}^^^&{registry.affinity_domain}&ISO"
        add_patient(engine, pid)
        document = tmp_path / "note.txt"
        document.write_text("signed in\n")
        with _serving(repository) as repository_node:
            url = repository_node.url + "/xds/repository"
            unsigned = CliRunner().invoke(cli, ["submit", str(document), "--patient", pid,
                                                "--url", url, *_tls_options(pki)])
            assert unsigned.exit_code == 1, unsigned.output
            submitted = CliRunner().invoke(cli, [
                "submit", str(document), "--patient", pid, "--url", url, *_tls_options(pki),
                "--saml", token("submit")])
            assert submitted.exit_code == 0, submitted.output
        found = CliRunner().invoke(cli, [
            "query", "find-documents", pid, "--url", registry_node.url + "/xds/registry",
            *_tls_options(pki), "--saml", token("query")])
        assert found.exit_code == 0, found.output
        assert submitted.output.split("document uniqueId: ")[1].split()[0] in found.output
        outbox = tables.audit_outbox.c
        with engine.connect() as conn:
            imports = conn.execute(select(outbox.message).where(
                outbox.event_type == "ITI-42", outbox.patient == pid)).scalars().all()
        engine.dispose()
        assert imports and all("dr-who" in m for m in imports), imports
