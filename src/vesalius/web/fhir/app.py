"""Routes of the FHIR REST API, to be mounted at ``/fhir`` (https://hl7.org/fhir/R4/http.html).

Every request passes one guard: content negotiation first (JSON only), then the handler; any
error becomes an OperationOutcome with its status, never a stack trace. Paths are matched in
order, so the fixed segments (``metadata``, ``_history``, ``_search``, ``$validate``) come
before the ``{type}/{id}`` patterns they would otherwise fall into.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vesalius.core.errors import InvalidInput, NotFound, NotSupported, VesaliusError
from vesalius.web.fhir import interactions, merge, operations, searching
from vesalius.web.fhir.outcome import error_outcome, outcome
from vesalius.web.fhir.requests import check_accept, query_params, resource_id
from vesalius.web.fhir.responses import fhir_response

Handler = Callable[[Request], Awaitable[Response]]

log = logging.getLogger(__name__)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def _guarded(handler: Handler, request: Request) -> Response:
    try:
        check_accept(request)
        return await handler(request)
    except Exception as exc:
        if not isinstance(exc, VesaliusError):
            log.exception("FHIR %s failed unexpectedly", request.method)
        status, body = error_outcome(exc)
        return fhir_response(request, body, status)


def _route(path: str, **handlers: Handler) -> Route:
    """One path, a handler per method; other methods get 405 with an OperationOutcome."""
    table = {method.upper(): handler for method, handler in handlers.items()}
    if "GET" in table:
        table.setdefault("HEAD", table["GET"])

    async def dispatch(request: Request) -> Response:
        handler = table.get(request.method)
        if handler is None:
            return _not_allowed(request, sorted(table))
        return await _guarded(handler, request)

    return Route(path, dispatch, methods=METHODS)


def _not_allowed(request: Request, allowed: list[str]) -> Response:
    return fhir_response(request, outcome(
        "error", "not-supported",
        f"{request.method} is not supported here; allowed: {', '.join(allowed)}"),
        405, {"Allow": ", ".join(allowed)})


async def _post_instance(request: Request) -> Response:
    """``POST [type]/$op`` lands here: unknown operations are 501, anything else 405."""
    resource_id(request)
    return _not_allowed(request, ["DELETE", "GET", "HEAD", "PATCH", "PUT"])


def _by_query(without: Handler, with_query: Handler) -> Handler:
    """Type-level PUT/DELETE: conditional when search parameters are given."""
    async def handler(request: Request) -> Response:
        return await (with_query if query_params(request) else without)(request)
    return handler


async def _unknown(request: Request) -> Response:
    operation = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    if operation.startswith("$"):
        raise NotSupported(f"the operation {operation} is not supported here")
    raise NotFound(f"no FHIR interaction at {request.url.path}")


async def _type_without_id(request: Request) -> Response:
    raise InvalidInput(f"{request.method} needs a resource id or search parameters")


def fhir_routes() -> list[BaseRoute]:
    return [
        _route("/metadata", get=operations.metadata),
        _route("/_history", get=searching.history),
        _route("/", get=searching.search_system, post=interactions.bundle),
        _route("/{type}/_history", get=searching.history),
        _route("/{type}/_search", post=searching.search_post),
        _route("/{type}/$validate", post=operations.validate),
        _route("/Patient/$merge", post=merge.merge),
        _route("/{type}", get=searching.search_type, post=interactions.create,
               put=_by_query(_type_without_id, interactions.conditional_update),
               delete=_by_query(_type_without_id, interactions.conditional_delete)),
        _route("/{type}/{id}/_history", get=searching.history),
        _route("/{type}/{id}/_history/{vid}", get=interactions.vread),
        _route("/{type}/{id}/$validate", post=operations.validate),
        _route("/{type}/{id}/$everything", get=operations.everything),
        _route("/{type}/{id}", get=interactions.read, put=interactions.update,
               patch=interactions.patch, delete=interactions.delete, post=_post_instance),
        _route("/{rest:path}", get=_unknown, post=_unknown, put=_unknown, patch=_unknown,
               delete=_unknown),
    ]
