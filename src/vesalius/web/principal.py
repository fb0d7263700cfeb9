"""The caller of an HTTP request, as the authentication middleware recorded it."""

from __future__ import annotations

from starlette.requests import Request

from vesalius.core.errors import Forbidden
from vesalius.guard import ArchiveGuard, Guard, RecordGuard
from vesalius.security.principal import Principal


def principal_of(request: Request) -> Principal:
    """The authenticated caller. Every route outside the public paths sits behind the
    ``Authenticate`` middleware, so a missing principal is a wiring error: refuse."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise Forbidden("this request was not authenticated")
    return principal


def guard_of(request: Request) -> Guard:
    guard: Guard = request.app.state.node.guard
    return guard


def record_for(request: Request) -> RecordGuard:
    """The record bound to this request's caller (policy, patient scope, audit)."""
    return guard_of(request).record(principal_of(request))


def archive_for(request: Request, how: str = "dicomweb") -> ArchiveGuard:
    """The image archive bound to this request's caller (policy, patient scope, audit)."""
    return guard_of(request).archive(principal_of(request), how)
