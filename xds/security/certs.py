"""Certificates for a test day or a first deployment: a CA, server and client certificates.

``xds certs init DIR --host NAME`` writes, in PEM: ``ca.pem`` (+ ``ca-key.pem``), ``server.pem``
+ ``server-key.pem`` (serverAuth, the given DNS names / IP addresses as SANs) and ``client.pem``
+ ``client-key.pem`` (clientAuth), ready for ``xds serve --tls-*`` and the clients'
``--cert/--key/--ca``. RSA 2048 keys, so the legacy ATNA suite (RSA key exchange) and XUA's
RSA-SHA256 signatures work with the same files. Tests use ``make_ca``/``issue`` for the
certificates no deployment should have (another CA, expired, not yet valid).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Issued", "make_ca", "issue", "init_certs", "CERT_FILES"]

#: What ``init_certs`` writes, by role.
CERT_FILES = {"ca": ("ca.pem", "ca-key.pem"), "server": ("server.pem", "server-key.pem"),
              "client": ("client.pem", "client-key.pem")}


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, cert_path: Path, key_path: Path) -> None:
        """The certificate and key as PEM files (the key readable by its owner only)."""
        cert_path.write_bytes(self.cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.key_pem)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "xds"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = "xds CA", days: int = 3650) -> Issued:
    """A self-signed CA certificate with a new key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def _san(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue(ca: Issued, common_name: str, *, hosts: Sequence[str] = (), server: bool = True,
          client: bool = True, not_before: datetime.datetime | None = None,
          not_after: datetime.datetime | None = None, days: int = 825) -> Issued:
    """A certificate for ``common_name`` signed by ``ca``, for TLS servers and/or clients,
    with ``hosts`` (DNS names or IP addresses) as subjectAltNames."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = not_before or _now() - datetime.timedelta(minutes=5)
    end = not_after or start + datetime.timedelta(days=days)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + \
        ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name)).issuer_name(ca.cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, key_encipherment=True, content_commitment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=False,
                   crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def init_certs(directory: Path, hosts: Sequence[str] = ("localhost", "127.0.0.1"),
               days: int = 825) -> dict[str, tuple[Path, Path]]:
    """A new CA with one server and one client certificate in ``directory`` (see CERT_FILES);
    returns the (certificate, key) paths by role. Refuses to overwrite an existing CA."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / CERT_FILES["ca"][0]).exists():
        raise FileExistsError(f"{directory / CERT_FILES['ca'][0]} exists; choose another folder")
    ca = make_ca()
    issued = {"ca": ca,
              "server": issue(ca, hosts[0] if hosts else "localhost", hosts=hosts, client=False,
                              days=days),
              "client": issue(ca, "xds client", server=False, days=days)}
    paths = {}
    for role, (cert_name, key_name) in CERT_FILES.items():
        paths[role] = (directory / cert_name, directory / key_name)
        issued[role].write(*paths[role])
    return paths
