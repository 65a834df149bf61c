"""The Imaging Document Source's SOAP operations by wsa:Action: RAD-69, answered as MTOM with
the ITI-43 response action (RAD TF-3 §4.69.4.2.2)."""

from __future__ import annotations

import logging

from xds.actions import Action
from xds.imaging.context import ImagingSource
from xds.imaging.rad69 import retrieve_imaging_document_set
from xds.repository.iti43 import retrieve_failure
from xds.model.errors import ErrorCode, RegistryError, XdsError
from xds.soap import Operation, SoapRequest, SoapResponse

__all__ = ["imaging_operations"]

log = logging.getLogger("xds.imaging")


def _internal(exc: Exception) -> list[RegistryError]:
    # The traceback is logged by the SOAP endpoint; the wire gets the code and no internals.
    return [RegistryError(code=ErrorCode.XDSRepositoryError,
                          context=f"internal error ({type(exc).__name__}); see the imaging "
                                  "source's log")]


def imaging_operations(source: ImagingSource) -> dict[str, Operation]:
    """wsa:Action -> Operation for the Imaging Document Source endpoint."""

    def rad69(request: SoapRequest) -> SoapResponse:
        try:
            return retrieve_imaging_document_set(source, request.body)
        except XdsError as exc:
            log.info("RAD-69 failed: %s", "; ".join(f"{e.code} {e.context}" for e in exc.errors))
            return SoapResponse(body=retrieve_failure(exc.errors))

    return {
        Action.RetrieveImagingDocumentSet: Operation(
            handler=rad69, response_action=Action.RetrieveImagingDocumentSet.response,
            on_error=lambda exc: retrieve_failure(_internal(exc)), mtom=True),
    }
