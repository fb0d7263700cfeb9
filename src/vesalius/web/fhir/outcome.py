"""Domain errors → OperationOutcome and HTTP status (https://hl7.org/fhir/R4/http.html#Status).

The only place the FHIR edge turns the error tree into a response body; internals (messages of
unexpected exceptions, stack traces) never reach the caller.
"""

from __future__ import annotations

from typing import Any

from vesalius.core.errors import (
    Conflict,
    Forbidden,
    Gone,
    InvalidInput,
    NotAcceptable,
    NotFound,
    NotSupported,
    PreconditionFailed,
    StorageFailure,
    TooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    VesaliusError,
)

#: (error class, HTTP status, IssueType code https://hl7.org/fhir/R4/valueset-issue-type.html);
#: the first class the error is an instance of wins, so subclasses come first.
STATUS_BY_ERROR: list[tuple[type[VesaliusError], int, str]] = [
    (ValidationFailed, 422, "invalid"),
    (UnsupportedMediaType, 415, "not-supported"),
    (TooLarge, 413, "too-long"),
    (InvalidInput, 400, "invalid"),
    (Gone, 410, "deleted"),
    (NotFound, 404, "not-found"),
    (Forbidden, 403, "forbidden"),
    (PreconditionFailed, 412, "conflict"),
    (Conflict, 409, "conflict"),
    (NotAcceptable, 406, "not-supported"),
    (NotSupported, 501, "not-supported"),
    (StorageFailure, 503, "transient"),
]


def outcome(severity: str, code: str, diagnostics: str,
            expression: str | None = None) -> dict[str, Any]:
    """An OperationOutcome with one issue (https://hl7.org/fhir/R4/operationoutcome.html)."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def issues_outcome(issues: list[dict[str, str]]) -> dict[str, Any]:
    """The validator's flat issues as OperationOutcome issues (``expression`` is a list)."""
    out = []
    for issue in issues:
        entry: dict[str, Any] = {"severity": issue.get("severity", "error"),
                                 "code": issue.get("code", "invalid")}
        if issue.get("diagnostics"):
            entry["diagnostics"] = issue["diagnostics"]
        if issue.get("expression"):
            entry["expression"] = [issue["expression"]]
        out.append(entry)
    return {"resourceType": "OperationOutcome", "issue": out}


def error_outcome(error: Exception, *, not_supported_status: int = 501
                  ) -> tuple[int, dict[str, Any]]:
    """(status, OperationOutcome) for any exception; non-domain errors are a bare 500.

    ``not_supported_status``: search answers an unsupported parameter or modifier with 400
    (https://hl7.org/fhir/R4/search.html#errors), an unsupported interaction is 501.
    """
    if not isinstance(error, VesaliusError):
        return 500, outcome("fatal", "exception", "internal server error")
    for cls, status, code in STATUS_BY_ERROR:
        if isinstance(error, cls):
            if cls is NotSupported:
                status = not_supported_status
            if isinstance(error, ValidationFailed) and error.issues:
                return status, issues_outcome(error.issues)
            return status, outcome("error", code, error.message)
    return 500, outcome("error", "exception", error.message)
