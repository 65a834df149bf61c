"""ITI-42 initiator for a Document Repository whose registry runs elsewhere (over SOAP 1.2)."""

from __future__ import annotations

import ssl

import httpx

from xds.actions import Action
from xds.audit.events import REQUEST
from xds.ebrim.response import response_status
from xds.ebrim.rim import Element
from xds.ebrim.vocabulary import NS_RS, ResponseStatus
from xds.model.errors import ErrorCode, RegistryError, Severity, XdsError
from xds.security.wsse import security_header
from xds.soap.envelope import build_envelope
from xds.soap.ns import SOAP12_ENV
from xds.soap.xmlparse import XmlError, parse_xml

__all__ = ["RemoteRegistry"]

_MAX_RESPONSE = 16 * 1024 * 1024
_RS = f"{{{NS_RS}}}"


class RemoteRegistry:
    """Registers SubmitObjectsRequests at ``url`` (ITI-42) and reads back the RegistryResponse.

    ``verify`` is httpx's: for an https URL, the client context that checks the registry and
    presents this node's certificate (``xds.security.tls.outbound_verify``)."""

    def __init__(self, url: str, *, timeout: float = 120.0,
                 verify: ssl.SSLContext | bool = True) -> None:
        self.url = url
        self._http = httpx.Client(timeout=timeout, verify=verify)

    def __call__(self, submit_objects_request: Element) -> list[RegistryError]:
        """Warnings of a Success; XdsError with the registry's errors otherwise.

        An unreachable registry or an answer that is not a RegistryResponse raises
        XDSRegistryNotAvailable (ITI TF-2 §3.41.4.1.3).
        """
        # The client's XUA assertion goes on with the registration (IHE XUA propagation):
        # a registry requiring XUA then sees the same user the repository accepted.
        request = REQUEST.get()
        headers = [security_header(request.assertion)] if request and request.assertion else []
        envelope = build_envelope(submit_objects_request, action=Action.RegisterDocumentSet_b,
                                  headers=headers)
        try:
            reply = self._http.post(self.url, content=envelope, headers={
                "Content-Type": "application/soap+xml; charset=UTF-8"})
            body = _body(reply.content)
        except (httpx.HTTPError, XmlError, ValueError) as exc:
            raise XdsError(ErrorCode.XDSRegistryNotAvailable,
                           f"registry {self.url} did not answer ITI-42: {exc}") from None
        errors = [_error(e) for e in body.iterfind(f"{_RS}RegistryErrorList/{_RS}RegistryError")]
        status = body.get("status")
        if status != ResponseStatus.Success or response_status(errors) != ResponseStatus.Success:
            if not any(e.severity == Severity.Error for e in errors):
                errors.append(RegistryError(code=ErrorCode.XDSRegistryError,
                                            context=f"registry answered {status}"))
            raise XdsError.of(errors)
        return errors

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()


def _body(content: bytes) -> Element:
    envelope = parse_xml(content, max_bytes=_MAX_RESPONSE)
    body = envelope.find(f"{{{SOAP12_ENV}}}Body")
    if body is None or len(body) == 0 or body[0].tag != f"{_RS}RegistryResponse":
        raise ValueError("the answer is not a RegistryResponse")
    return body[0]


def _error(el: Element) -> RegistryError:
    code = el.get("errorCode") or ErrorCode.XDSRegistryError
    try:
        known = ErrorCode(code)
    except ValueError:
        known = ErrorCode.XDSRegistryError  # an extension code we cannot name; context keeps it
    context = el.get("codeContext") or ""
    if known != code:
        context = f"{code}: {context}"
    severity = Severity.Warning if el.get("severity") == Severity.Warning else Severity.Error
    return RegistryError(code=known, context=context, location=el.get("location") or "",
                         severity=severity)
