"""The PIX Manager's HL7 v3 SOAP operations by wsa:Action: ITI-44 feeds and the ITI-45 query."""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from xds.config import Settings
from xds.hl7v3 import AcknowledgementType, Interaction, build_ack, device_id, internal_error_detail
from xds.mpi.index import PatientIndex
from xds.mpi.iti44 import FEED_INTERACTIONS, patient_identity_feed
from xds.mpi.iti45 import pix_query, query_error_response
from xds.soap import Operation, SoapRequest, SoapResponse

__all__ = ["pix_operations"]


def pix_operations(index: PatientIndex, settings: Settings) -> dict[str, Operation]:
    """wsa:Action -> Operation for the PIX Manager endpoint (PIXManager.wsdl): the three ITI-44
    messages answer MCCI_IN000002UV01, ITI-45 answers PRPA_IN201310UV02. A crash in a handler
    becomes an AE answer of the operation's own message type (INTERR, no traceback)."""
    device = device_id(settings)

    def feed(interaction: Interaction) -> Callable[[SoapRequest], SoapResponse]:
        def handler(request: SoapRequest) -> SoapResponse:
            return SoapResponse(body=patient_identity_feed(
                index, request.body, interaction, device_id=device))
        return handler

    def query(request: SoapRequest) -> SoapResponse:
        return SoapResponse(body=pix_query(index, request.body, device_id=device))

    def feed_error(exc: Exception) -> etree._Element:
        return build_ack(None, AcknowledgementType.AE, [internal_error_detail(exc)], sender=device)

    def query_error(exc: Exception) -> etree._Element:
        return query_error_response(None, [internal_error_detail(exc)], device_id=device)

    operations = {
        interaction.action: Operation(
            handler=feed(interaction), response_action=Interaction.MCCI_IN000002UV01.action,
            on_error=feed_error)
        for interaction in FEED_INTERACTIONS
    }
    operations[Interaction.PRPA_IN201309UV02.action] = Operation(
        handler=query, response_action=Interaction.PRPA_IN201310UV02.action, on_error=query_error)
    return operations
