"""Instance and type interactions: read, vread, create, update, patch, delete (plain and
conditional), and batch/transaction (https://hl7.org/fhir/R4/http.html)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from vesalius.core.errors import InvalidInput, TooLarge
from vesalius.record.presentation import summarize
from vesalius.record.unit_of_work import Version
from vesalius.web.fhir.outcome import outcome
from vesalius.web.fhir.requests import (
    base_url,
    json_body,
    patch_body,
    prefer,
    query_params,
    record,
    resource_id,
    resource_type,
    settings_of,
)
from vesalius.web.fhir.responses import fhir_response, version_headers, written


def _same_version(etag: str, header: str | None) -> bool:
    if header is None:
        return False
    wanted = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}
    return etag.removeprefix("W/").strip('"') in wanted or "*" in wanted


async def read(request: Request) -> Response:
    """``GET [type]/[id]``; ``If-None-Match`` answers 304 for the current version, ``_summary``
    and ``_elements`` give a view (https://hl7.org/fhir/R4/http.html#read)."""
    service = record(request)
    kind = resource_type(request, service.defs)
    version = await run_in_threadpool(service.read, kind, resource_id(request))
    headers = version_headers(version, base_url(request))
    if _same_version(version.etag, request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    elements = request.query_params.get("_elements")
    body = summarize(version.resource or {}, request.query_params.get("_summary"),
                     [e.strip() for e in elements.split(",")] if elements else None,
                     service.defs)
    return fhir_response(request, body, 200, headers)


async def vread(request: Request) -> Response:
    """``GET [type]/[id]/_history/[vid]`` (https://hl7.org/fhir/R4/http.html#vread)."""
    service = record(request)
    kind = resource_type(request, service.defs)
    version = await run_in_threadpool(service.vread, kind, resource_id(request),
                                      resource_id(request, "vid"))
    return fhir_response(request, version.resource, 200,
                         version_headers(version, base_url(request)))


def _resource_of(body: Any, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object (a resource)")
    if body.get("resourceType") != kind:
        raise InvalidInput(f"the body is a {body.get('resourceType')!r}, the URL names {kind}")
    return body


async def create(request: Request) -> Response:
    """``POST [type]``, conditional with ``If-None-Exist`` (200 when one already matches)
    (https://hl7.org/fhir/R4/http.html#create, https://hl7.org/fhir/R4/http.html#ccreate)."""
    service = record(request)
    kind = resource_type(request, service.defs)
    resource = _resource_of(await json_body(request), kind)
    version = await run_in_threadpool(
        lambda: service.create(resource, if_none_exist=request.headers.get("if-none-exist")))
    if version.created:
        return written(request, version, base_url(request), 201, f"created {version.location}")
    return written(request, version, base_url(request), 200,
                   f"{kind}/{version.id} matches If-None-Exist; nothing was created")


async def update(request: Request) -> Response:
    """``PUT [type]/[id]`` with ``If-Match``; an unknown id is created
    (https://hl7.org/fhir/R4/http.html#update)."""
    service = record(request)
    kind = resource_type(request, service.defs)
    id = resource_id(request)
    resource = _resource_of(await json_body(request), kind)
    version = await run_in_threadpool(
        lambda: service.update(kind, id, resource, if_match=request.headers.get("if-match")))
    return _updated(request, version)


def _updated(request: Request, version: Version) -> Response:
    status = 201 if version.created else 200
    message = ("created" if version.created else "updated" if version.changed
               else "unchanged, no new version")
    return written(request, version, base_url(request), status, f"{message}: {version.location}")


async def conditional_update(request: Request) -> Response:
    """``PUT [type]?[search]`` (https://hl7.org/fhir/R4/http.html#cond-update)."""
    service = record(request)
    kind = resource_type(request, service.defs)
    params = query_params(request)
    if not params:
        raise InvalidInput("PUT on a type needs search parameters (a conditional update)")
    resource = _resource_of(await json_body(request), kind)
    version = await run_in_threadpool(service.conditional_update, kind, params, resource)
    return _updated(request, version)


async def patch(request: Request) -> Response:
    """``PATCH [type]/[id]`` with a JSON Patch document (https://hl7.org/fhir/R4/http.html#patch)."""
    service = record(request)
    kind = resource_type(request, service.defs)
    id = resource_id(request)
    operations = await patch_body(request)
    version = await run_in_threadpool(
        lambda: service.patch(kind, id, operations, if_match=request.headers.get("if-match")))
    return _updated(request, version)


def _deleted(request: Request, message: str) -> Response:
    if prefer(request).get("return") == "OperationOutcome":
        return fhir_response(request, outcome("information", "informational", message), 200)
    return Response(status_code=204)


async def delete(request: Request) -> Response:
    """``DELETE [type]/[id]``: 204, also for an unknown or deleted resource
    (https://hl7.org/fhir/R4/http.html#delete)."""
    service = record(request)
    kind = resource_type(request, service.defs)
    id = resource_id(request)
    await run_in_threadpool(
        lambda: service.delete(kind, id, if_match=request.headers.get("if-match")))
    return _deleted(request, f"{kind}/{id} is deleted")


async def conditional_delete(request: Request) -> Response:
    """``DELETE [type]?[search]`` (https://hl7.org/fhir/R4/http.html#cdelete). Several matches
    are 412 unless ``_multiple=true`` is given (as in FHIR R5), then all are deleted."""
    service = record(request)
    kind = resource_type(request, service.defs)
    params = [(k, v) for k, v in query_params(request) if k != "_multiple"]
    multiple = request.query_params.get("_multiple", "").lower() == "true"
    if not params:
        raise InvalidInput("DELETE on a type needs search parameters (a conditional delete)")
    count = await run_in_threadpool(
        lambda: service.conditional_delete(kind, params, multiple=multiple))
    return _deleted(request, f"{count} {kind} resource(s) deleted")


async def bundle(request: Request) -> Response:
    """``POST [base]`` with a batch or transaction Bundle
    (https://hl7.org/fhir/R4/http.html#transaction)."""
    service = record(request)
    body = await json_body(request)
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise InvalidInput("POST to the base URL takes a batch or transaction Bundle")
    entries = body.get("entry")
    limit = settings_of(request).fhir_max_bundle_entries
    if isinstance(entries, list) and len(entries) > limit:
        raise TooLarge(f"the Bundle has {len(entries)} entries; at most {limit} are accepted")
    representation = prefer(request).get("return") == "representation"
    response = await run_in_threadpool(
        lambda: service.process_bundle(body, base=base_url(request),
                                       representation=representation))
    return fhir_response(request, response, 200)
