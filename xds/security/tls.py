"""One place for TLS (ITI-19 Authenticate Node): the server and client ``ssl.SSLContext``.

Every listener (HTTP, MLLP, DICOM) and every outbound client takes its context from here, so
the protocol floor, the cipher suites and the certificate checks are the same on every port.
ATNA asks for TLS 1.2 or newer with ECDHE and AES-GCM; ``legacy`` adds
TLS_RSA_WITH_AES_128_CBC_SHA (``AES128-SHA``) for peers that know nothing newer.
"""

from __future__ import annotations

import ssl

from xds.config import Settings

__all__ = ["ATNA_CIPHERS", "LEGACY_CIPHERS", "CLIENT_AUTH", "server_context", "client_context",
           "httpx_verify", "listener_context"]

#: ECDHE key exchange with AES-GCM (TLS 1.2); TLS 1.3 suites are all AEAD and always on.
ATNA_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
               "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#: The ATNA baseline suite TLS_RSA_WITH_AES_128_CBC_SHA, offered only when asked for.
LEGACY_CIPHERS = "AES128-SHA"
#: ``--client-auth`` values and what the server asks of the peer.
CLIENT_AUTH = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL,
               "none": ssl.CERT_NONE}


def _harden(context: ssl.SSLContext, legacy: bool) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ATNA_CIPHERS + (":" + LEGACY_CIPHERS if legacy else ""))
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION


def server_context(cert: str, key: str, ca: str = "", client_auth: str = "required",
                   legacy: bool = False) -> ssl.SSLContext:
    """The context of a TLS listener: our chain ``cert`` + ``key``; peers verified against
    ``ca`` as ``client_auth`` says (``required``: a peer without a certificate chaining to
    ``ca`` is refused at the handshake)."""
    if client_auth not in CLIENT_AUTH:
        raise ValueError(f"client auth {client_auth!r}: choose {', '.join(CLIENT_AUTH)}")
    if client_auth != "none" and not ca:
        raise ValueError(f"client auth {client_auth} needs a CA bundle (--tls-ca)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(context, legacy)
    context.load_cert_chain(cert, key)
    context.verify_mode = CLIENT_AUTH[client_auth]
    if ca:
        context.load_verify_locations(cafile=ca)
    return context


def client_context(ca: str = "", cert: str = "", key: str = "",
                   legacy: bool = False) -> ssl.SSLContext:
    """The context of an outbound connection: the server verified against ``ca`` (the system
    store when empty) with its host name checked; ``cert`` + ``key`` presented when given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(context, legacy)
    if ca:
        context.load_verify_locations(cafile=ca)
    else:
        context.load_default_certs()
    if cert:
        context.load_cert_chain(cert, key or None)
    return context


def httpx_verify(ca: str = "", cert: str = "", key: str = "",
                 legacy: bool = False) -> ssl.SSLContext | bool:
    """httpx's ``verify=`` for these client options: ``True`` (httpx's own defaults) when none
    is given, else ``client_context``."""
    if not (ca or cert):
        return True
    return client_context(ca, cert, key, legacy)


def listener_context(settings: Settings) -> ssl.SSLContext | None:
    """The server context of ``settings`` (``tls_*``), or None when TLS is off (no
    ``tls_cert``)."""
    if not settings.tls_cert:
        return None
    return server_context(settings.tls_cert, settings.tls_key or settings.tls_cert,
                          settings.tls_ca, settings.tls_client_auth,
                          settings.tls_legacy == "yes")

