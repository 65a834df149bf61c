"""The repository's SOAP operations by wsa:Action: ITI-41 and ITI-43, both answered as MTOM."""

from __future__ import annotations

import logging


from xds.actions import Action
from xds.ebrim.response import registry_response
from xds.model.errors import ErrorCode, RegistryError, XdsError
from xds.repository.context import Repository
from xds.repository.iti41 import provide_and_register
from xds.repository.iti43 import retrieve_document_set, retrieve_failure
from xds.soap import Operation, SoapRequest, SoapResponse
from xds.store.db import database_unavailable

__all__ = ["repository_operations"]

log = logging.getLogger("xds.repository")


def _internal(exc: Exception) -> list[RegistryError]:
    # The traceback is logged by the SOAP endpoint; the wire gets the code and no internals.
    if database_unavailable(exc):  # restarted, failed over: a retry will do
        return [RegistryError(code=ErrorCode.XDSRepositoryError,
                              context="the database is unavailable; retry")]
    return [RegistryError(code=ErrorCode.XDSRepositoryError,
                          context=f"internal error ({type(exc).__name__}); see repository log")]


def repository_operations(repository: Repository) -> dict[str, Operation]:
    """wsa:Action -> Operation for the Document Repository endpoint."""

    def iti41(request: SoapRequest) -> SoapResponse:
        try:
            warnings = provide_and_register(repository, request)
        except XdsError as exc:
            log.info("ITI-41 failed: %s", "; ".join(f"{e.code} {e.context}" for e in exc.errors))
            return SoapResponse(body=registry_response(exc.errors))
        return SoapResponse(body=registry_response(warnings))

    def iti43(request: SoapRequest) -> SoapResponse:
        try:
            return retrieve_document_set(repository, request.body)
        except XdsError as exc:
            log.info("ITI-43 failed: %s", "; ".join(f"{e.code} {e.context}" for e in exc.errors))
            return SoapResponse(body=retrieve_failure(exc.errors))

    return {
        Action.ProvideAndRegisterDocumentSet_b: Operation(
            handler=iti41, response_action=Action.ProvideAndRegisterDocumentSet_b.response,
            on_error=lambda exc: registry_response(_internal(exc)), mtom=True),
        Action.RetrieveDocumentSet: Operation(
            handler=iti43, response_action=Action.RetrieveDocumentSet.response,
            on_error=lambda exc: retrieve_failure(_internal(exc)), mtom=True),
    }
