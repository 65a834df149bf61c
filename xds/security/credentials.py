"""What an initiator presents and trusts: its TLS certificate, the CAs it verifies servers
with (ITI-19) and, on SOAP, an XUA assertion (ITI-40). One value handed to every client."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from lxml import etree

from xds.config import Settings
from xds.security.tls import client_context, httpx_verify
from xds.security.wsse import security_header

__all__ = ["Credentials", "NO_CREDENTIALS"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """PEM paths ``ca`` (empty: the system store), ``cert`` + ``key`` (empty: no client
    certificate) and ``saml``, the bytes of a signed ``saml2:Assertion`` (None: no XUA).

    >>> creds = Credentials(ca="ca.pem", cert="client.pem", key="client-key.pem")
    >>> httpx.post(url, content=envelope, verify=creds.verify())
    """

    ca: str = ""
    cert: str = ""
    key: str = ""
    saml: bytes | None = None
    legacy: bool = False

    @classmethod
    def of_settings(cls, settings: Settings) -> Credentials:
        """This node's own: ``client_cert``/``client_key``, servers checked against
        ``client_ca`` (default ``tls_ca``)."""
        return cls(ca=settings.client_ca or settings.tls_ca, cert=settings.client_cert,
                   key=settings.client_key, legacy=settings.tls_legacy == "yes")

    def verify(self) -> ssl.SSLContext | bool:
        """httpx's ``verify=``: True (httpx's defaults) without options, else a client context."""
        return httpx_verify(self.ca, self.cert, self.key, self.legacy)

    def tls_context(self) -> ssl.SSLContext:
        """The client context for a raw TLS connection (MLLP, DICOM)."""
        return client_context(self.ca, self.cert, self.key, self.legacy)

    def soap_headers(self) -> list[etree._Element]:
        """The SOAP header blocks these credentials add: ``wsse:Security`` when ``saml`` is set
        (a fresh timestamp on each call)."""
        return [security_header(self.saml)] if self.saml is not None else []


#: Nothing presented, servers checked against the system store.
NO_CREDENTIALS = Credentials()
