"""One domain error tree for the whole system.

Services raise these; edges translate them (HTTP problem responses, DIMSE
statuses, OperationOutcome). Nothing outside an edge knows about protocols.
"""

from __future__ import annotations


class VesaliusError(Exception):
    """Root of every error Vesalius raises on purpose."""

    #: Short machine-readable code, stable across versions.
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(VesaliusError):
    """The caller sent something malformed (not DICOM, bad UID, bad parameter)."""

    code = "invalid"


class MissingAttribute(InvalidInput):
    """A required DICOM attribute is absent or empty."""

    code = "missing-attribute"


class DoesNotMatchRequest(InvalidInput):
    """The data set contradicts the request that carried it.

    E.g. an instance STOWed to another study's URL, or a C-STORE whose data set
    names another SOP instance than its command (PS3.4 §B.2.3).
    """

    code = "does-not-match-request"


class NotFound(VesaliusError):
    """The addressed object does not exist (or the caller may not know it does)."""

    code = "not-found"


class Forbidden(VesaliusError):
    """The caller is known but may not do this. Used for functions and types a role lacks;
    a record or study outside the caller's patients is :class:`NotFound` instead, so its
    existence does not leak."""

    code = "forbidden"


class Conflict(VesaliusError):
    """The request contradicts what is already stored (e.g. same UID, other bytes)."""

    code = "conflict"


class TooLarge(InvalidInput):
    """A body, part or instance exceeds a configured limit."""

    code = "too-large"


class UnsupportedMediaType(InvalidInput):
    """The request body's media type is not one this surface accepts (HTTP 415)."""

    code = "unsupported-media-type"


class NotAcceptable(VesaliusError):
    """None of the representations the caller accepts can be produced."""

    code = "not-acceptable"


class StorageFailure(VesaliusError):
    """The blob store or index could not complete a write; nothing was kept."""

    code = "storage-failure"


class PreconditionFailed(Conflict):
    """A version or condition the caller required does not hold (HTTP 412)."""

    code = "precondition-failed"


class Gone(NotFound):
    """The addressed resource existed and was deleted (HTTP 410)."""

    code = "gone"


class ValidationFailed(InvalidInput):
    """Content breaks the rules of its definition; ``issues`` name each element.

    Each issue is a mapping with ``severity``, ``code``, ``expression`` (FHIRPath of the
    element) and ``diagnostics``, the shape of an OperationOutcome issue.
    """

    code = "validation-failed"

    def __init__(self, message: str, issues: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.issues = issues


class NotSupported(VesaliusError):
    """A valid request for something this server does not do (HTTP 501/400 by surface)."""

    code = "not-supported"
