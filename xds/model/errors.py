"""Error codes of Document Sharing (ITI TF-3 Table 4.2.4.1-2) and the XdsError actors raise."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ErrorCode", "Severity", "RegistryError", "XdsError"]


class ErrorCode(StrEnum):
    """Wire values of ``rs:RegistryError/@errorCode``; names keep the TF spelling."""

    # ITI TF-3 Table 4.2.4.1-2, as used by ITI-42 Register Document Set-b
    UnresolvedReferenceException = "UnresolvedReferenceException"
    XDSDuplicateUniqueIdInRegistry = "XDSDuplicateUniqueIdInRegistry"
    XDSExtraMetadataNotSaved = "XDSExtraMetadataNotSaved"
    XDSNonIdenticalHash = "XDSNonIdenticalHash"
    XDSNonIdenticalSize = "XDSNonIdenticalSize"
    XDSPatientIdDoesNotMatch = "XDSPatientIdDoesNotMatch"
    XDSRegistryBusy = "XDSRegistryBusy"
    XDSRegistryDeprecatedDocumentError = "XDSRegistryDeprecatedDocumentError"
    XDSRegistryDuplicateUniqueIdInMessage = "XDSRegistryDuplicateUniqueIdInMessage"
    XDSRegistryError = "XDSRegistryError"
    XDSRegistryMetadataError = "XDSRegistryMetadataError"
    XDSRegistryOutOfResources = "XDSRegistryOutOfResources"
    XDSUnknownPatientId = "XDSUnknownPatientId"
    # ITI TF-3 Table 4.2.4.1-2, as used by ITI-18 Registry Stored Query
    XDSMissingHomeCommunityId = "XDSMissingHomeCommunityId"
    XDSResultNotSinglePatient = "XDSResultNotSinglePatient"
    XDSStoredQueryMissingParam = "XDSStoredQueryMissingParam"
    XDSStoredQueryParamNumber = "XDSStoredQueryParamNumber"
    XDSTooManyResults = "XDSTooManyResults"
    XDSUnknownCommunity = "XDSUnknownCommunity"
    XDSUnknownStoredQuery = "XDSUnknownStoredQuery"
    # ITI TF-3 Table 4.2.4.1-2, repository side (ITI-41, ITI-43)
    InvalidDocumentContent = "InvalidDocumentContent"
    XDSDocumentUniqueIdError = "XDSDocumentUniqueIdError"
    XDSMissingDocument = "XDSMissingDocument"
    XDSMissingDocumentMetadata = "XDSMissingDocumentMetadata"
    XDSRegistryNotAvailable = "XDSRegistryNotAvailable"
    XDSRepositoryBusy = "XDSRepositoryBusy"
    XDSRepositoryDuplicateUniqueIdInMessage = "XDSRepositoryDuplicateUniqueIdInMessage"
    XDSRepositoryError = "XDSRepositoryError"
    XDSRepositoryMetadataError = "XDSRepositoryMetadataError"
    XDSRepositoryOutOfResources = "XDSRepositoryOutOfResources"
    XDSUnknownRepositoryId = "XDSUnknownRepositoryId"


class Severity(StrEnum):
    """``rs:RegistryError/@severity`` (ebRS 3.0 ErrorSeverityType)."""

    Error = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    Warning = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryError:
    """One entry of a RegistryErrorList: code, free-text context, optional location."""

    code: ErrorCode
    context: str
    location: str = ""
    severity: Severity = Severity.Error


class XdsError(Exception):
    """A protocol error an actor raises; the listener answers it as a RegistryErrorList.

    ``XdsError(ErrorCode.XDSUnknownPatientId, "id^^^&1.2&ISO")`` carries one error;
    ``XdsError.of([...])`` carries several (all reported in one response).
    """

    def __init__(
        self,
        code: ErrorCode,
        context: str,
        location: str = "",
        severity: Severity = Severity.Error,
    ) -> None:
        super().__init__(f"{code}: {context}")
        self.errors: list[RegistryError] = [
            RegistryError(code=code, context=context, location=location, severity=severity)
        ]

    @classmethod
    def of(cls, errors: list[RegistryError]) -> XdsError:
        """Build one exception carrying ``errors`` (at least one)."""
        first = errors[0]
        exc = cls(first.code, first.context, first.location, first.severity)
        exc.errors = list(errors)
        return exc

    @property
    def code(self) -> ErrorCode:
        """The code of the first error."""
        return self.errors[0].code
