"""wsa:Action of every IHE transaction served or sent (ITI TF-2 Appendix V)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Action"]


class Action(StrEnum):
    """Request actions; the response action is the request action + ``Response``."""

    RegistryStoredQuery = "urn:ihe:iti:2007:RegistryStoredQuery"  # ITI-18
    MultiPatientStoredQuery = "urn:ihe:iti:2009:MultiPatientStoredQuery"  # ITI-51
    RegisterDocumentSet_b = "urn:ihe:iti:2007:RegisterDocumentSet-b"  # ITI-42
    ProvideAndRegisterDocumentSet_b = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"  # ITI-41
    RetrieveDocumentSet = "urn:ihe:iti:2007:RetrieveDocumentSet"  # ITI-43
    RetrieveImagingDocumentSet = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"  # RAD-69

    @property
    def response(self) -> str:
        """The response wsa:Action (RAD-69 answers with ITI-43's, RAD TF-3 §4.69.4.2.2)."""
        if self is Action.RetrieveImagingDocumentSet:
            return Action.RetrieveDocumentSet.response
        return self.value + "Response"
