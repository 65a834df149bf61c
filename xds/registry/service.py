"""The registry's SOAP operations by wsa:Action: ITI-42, ITI-18, ITI-51 and their error answers."""

from __future__ import annotations

import logging

from xds.actions import Action
from xds.ebrim.response import adhoc_query_response, registry_response
from xds.ebrim.rim import Element
from xds.model.errors import ErrorCode, RegistryError, XdsError
from xds.registry.context import Registry
from xds.registry.iti18 import stored_query
from xds.registry.iti42 import register_document_set
from xds.soap import Operation, SoapRequest, SoapResponse
from xds.store.db import database_unavailable

__all__ = ["registry_operations"]

log = logging.getLogger("xds.registry")


def _internal(exc: Exception) -> list[RegistryError]:
    # The traceback is logged by the SOAP endpoint; the wire gets the code and no internals.
    if database_unavailable(exc):  # restarted, failed over: a retry will do
        return [RegistryError(code=ErrorCode.XDSRegistryError,
                              context="the database is unavailable; retry")]
    return [RegistryError(code=ErrorCode.XDSRegistryError,
                          context=f"internal error ({type(exc).__name__}); see registry log")]


def registry_operations(registry: Registry) -> dict[str, Operation]:
    """wsa:Action -> Operation for the Document Registry endpoint."""

    def iti42(request: SoapRequest) -> SoapResponse:
        try:
            warnings = register_document_set(registry, request.body)
        except XdsError as exc:
            log.info("ITI-42 failed: %s", "; ".join(f"{e.code} {e.context}" for e in exc.errors))
            return SoapResponse(body=registry_response(exc.errors))
        return SoapResponse(body=registry_response(warnings))

    def iti18(request: SoapRequest) -> SoapResponse:
        return SoapResponse(body=stored_query(registry, request.body))

    def iti51(request: SoapRequest) -> SoapResponse:
        return SoapResponse(body=stored_query(registry, request.body, multi_patient=True))

    def registry_error(exc: Exception) -> Element:
        return registry_response(_internal(exc))

    def query_error(exc: Exception) -> Element:
        return adhoc_query_response([], _internal(exc))

    return {
        Action.RegisterDocumentSet_b: Operation(
            handler=iti42, response_action=Action.RegisterDocumentSet_b.response,
            on_error=registry_error),
        Action.RegistryStoredQuery: Operation(
            handler=iti18, response_action=Action.RegistryStoredQuery.response,
            on_error=query_error),
        Action.MultiPatientStoredQuery: Operation(
            handler=iti51, response_action=Action.MultiPatientStoredQuery.response,
            on_error=query_error),
    }
