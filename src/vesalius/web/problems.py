"""Translation of the domain error tree to HTTP (RFC 9457 problem details)."""

from __future__ import annotations

from starlette.responses import JSONResponse

from vesalius.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotAcceptable,
    NotFound,
    StorageFailure,
    TooLarge,
    VesaliusError,
)

STATUS_BY_ERROR: list[tuple[type[VesaliusError], int]] = [
    (TooLarge, 413),
    (InvalidInput, 400),
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (NotAcceptable, 406),
    (StorageFailure, 503),
]


def status_for(error: VesaliusError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500


def problem(status: int, detail: str, *, code: str = "error") -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": code, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def problem_for(error: VesaliusError) -> JSONResponse:
    return problem(status_for(error), error.message, code=error.code)
