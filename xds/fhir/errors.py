"""FHIR errors as answers: ``FhirError`` carries the HTTP status and the OperationOutcome issue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FhirError", "Issue", "outcome", "not_found", "invalid"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One ``OperationOutcome.issue``: severity, IssueType code, text, optional IHE error code."""

    code: str
    diagnostics: str
    severity: str = "error"
    #: An IHE error code (``XDSRegistryMetadataError``) put in ``details.coding``.
    ihe_code: str | None = None
    expression: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The issue as FHIR JSON."""
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code,
                                 "diagnostics": self.diagnostics}
        if self.ihe_code:
            # As MHD implementations do (CH EPR): the XDS error code (ITI TF-3 Table 4.2.4.1-2)
            # is the details' text and code; XDS defines no code system URI for it.
            issue["details"] = {"coding": [{"code": self.ihe_code}], "text": self.ihe_code}
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


class FhirError(Exception):
    """An interaction that ends in an OperationOutcome with ``status``."""

    def __init__(self, status: int, *issues: Issue) -> None:
        super().__init__("; ".join(i.diagnostics for i in issues))
        self.status = status
        self.issues = issues


def outcome(issues: tuple[Issue, ...] | list[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource (JSON) holding ``issues``."""
    return {"resourceType": "OperationOutcome", "issue": [i.as_json() for i in issues]}


def not_found(diagnostics: str) -> FhirError:
    """404 ``not-found``."""
    return FhirError(404, Issue("not-found", diagnostics))


def invalid(diagnostics: str, *, status: int = 400, code: str = "invalid",
            expression: str | None = None) -> FhirError:
    """400 (or ``status``) ``invalid`` (or ``code``): a request the server cannot use."""
    return FhirError(status, Issue(code, diagnostics, expression=expression))
