"""Search and history interactions (https://hl7.org/fhir/R4/http.html#search,
https://hl7.org/fhir/R4/http.html#history)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from vesalius.core.errors import InvalidInput, NotSupported
from vesalius.record.presentation import history_bundle, searchset
from vesalius.web.fhir.requests import (
    base_url,
    form_body,
    parse_count,
    parse_instant,
    query_params,
    record,
    resource_id,
    resource_type,
    strict_handling,
)
from vesalius.web.fhir.responses import fhir_response


async def _search(request: Request, kind: str | None,
                  params: list[tuple[str, str]]) -> Response:
    service = record(request)
    strict = strict_handling(request)
    try:
        result = await run_in_threadpool(
            lambda: service.search(kind, params, strict=strict))
    except NotSupported as exc:  # an unsupported parameter or modifier is the client's error
        raise InvalidInput(exc.message) from exc
    return fhir_response(request, searchset(result, base=base_url(request), resource_type=kind,
                                            defs=service.defs))


async def search_type(request: Request) -> Response:
    """``GET [type]?…``; ``Prefer: handling=strict`` makes unknown parameters an error."""
    kind = resource_type(request, record(request).defs)
    return await _search(request, kind, query_params(request))


async def search_post(request: Request) -> Response:
    """``POST [type]/_search``: form parameters, plus any in the URL."""
    kind = resource_type(request, record(request).defs)
    return await _search(request, kind, [*query_params(request), *await form_body(request)])


async def search_system(request: Request) -> Response:
    """``GET [base]?…`` across every type (common parameters and ``_type``)."""
    return await _search(request, None, query_params(request))


async def history(request: Request) -> Response:
    """Instance, type or system history, as the path says; ``_since``, ``_count``, ``_offset``."""
    service = record(request)
    kind = resource_type(request, service.defs) if "type" in request.path_params else None
    id = resource_id(request) if "id" in request.path_params else None
    since_text = request.query_params.get("_since")
    since = parse_instant("_since", since_text) if since_text else None
    count = parse_count("_count", request.query_params.get("_count"))
    offset = parse_count("_offset", request.query_params.get("_offset")) or 0
    page = await run_in_threadpool(
        lambda: service.history(kind, id, since=since, count=count, offset=offset))
    path = "/".join(p for p in (kind, id, "_history") if p)
    return fhir_response(request, history_bundle(
        page, base=base_url(request), path=path,
        params=[("_since", since_text)] if since_text else []))
