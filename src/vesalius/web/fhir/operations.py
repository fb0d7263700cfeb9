"""Operations: ``$validate``, ``Patient/$everything`` and the capabilities interaction."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from vesalius.core.errors import InvalidInput, NotSupported
from vesalius.record.presentation import everything_bundle
from vesalius.record.service import RecordService
from vesalius.record.unit_of_work import instant, utcnow
from vesalius.web.fhir.capability import capability_statement, smart_security
from vesalius.web.fhir.outcome import issues_outcome, outcome
from vesalius.web.fhir.requests import (
    base_url,
    json_body,
    parse_count,
    parse_instant,
    record,
    resource_id,
    resource_type,
    settings_of,
)
from vesalius.web.fhir.responses import fhir_response


async def metadata(request: Request) -> Response:
    """``GET [base]/metadata`` (https://hl7.org/fhir/R4/http.html#capabilities); ``mode=full``
    and ``normative`` give the same statement, ``terminology`` is not supported."""
    mode = request.query_params.get("mode", "full")
    if mode not in ("full", "normative"):
        raise InvalidInput(f"mode={mode!r} is not supported (full or normative)")
    # Public (clients discover how to sign in here): definitions only, no caller needed.
    service: RecordService = request.app.state.record
    statement = capability_statement(
        service.defs, base=base_url(request),
        referential_integrity=service.options.referential_integrity, date=instant(utcnow()))
    statement["rest"][0]["security"] = smart_security(settings_of(request).issuer)
    return fhir_response(request, statement)


def _parameter(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    for parameter in body.get("parameter") or []:
        if isinstance(parameter, dict) and parameter.get("name") == name:
            return parameter
    return None


async def validate(request: Request) -> Response:
    """``POST [type]/$validate`` and ``[type]/[id]/$validate``: the body is the resource or a
    Parameters with ``resource``; always 200 with the issues found, "All OK" when none
    (https://hl7.org/fhir/R4/resource-operation-validate.html)."""
    service = record(request)
    kind = resource_type(request, service.defs)
    id = resource_id(request) if "id" in request.path_params else None
    body = await json_body(request)
    if isinstance(body, dict) and body.get("resourceType") == "Parameters" and kind != "Parameters":
        mode = _parameter(body, "mode")
        if mode is not None and mode.get("valueCode") not in ("create", "update"):
            raise NotSupported(f"$validate mode {mode.get('valueCode')!r} is not supported")
        parameter = _parameter(body, "resource")
        if parameter is None:
            raise InvalidInput("$validate needs the resource, or a Parameters with 'resource'")
        body = parameter.get("resource")
    issues = list(await run_in_threadpool(service.validate, body))
    if isinstance(body, dict):
        if body.get("resourceType") != kind:
            issues.append({"severity": "error", "code": "invalid", "expression": "resourceType",
                           "diagnostics": f"the resource is not a {kind}"})
        if id is not None and body.get("id") != id:
            issues.append({"severity": "error", "code": "invalid", "expression": f"{kind}.id",
                           "diagnostics": f"the resource's id is not {id!r}"})
    if not issues:
        return fhir_response(request, outcome("information", "informational", "All OK"))
    return fhir_response(request, issues_outcome(issues))


async def everything(request: Request) -> Response:
    """``GET Patient/[id]/$everything`` with ``_since``, ``_type``, ``_count``, ``_offset``
    (https://hl7.org/fhir/R4/patient-operation-everything.html)."""
    service = record(request)
    if resource_type(request, service.defs) != "Patient":
        raise NotSupported("$everything is supported on Patient only")
    id = resource_id(request)
    query = request.query_params
    since = parse_instant("_since", query["_since"]) if query.get("_since") else None
    types = [t.strip() for t in query.get("_type", "").split(",") if t.strip()] or None
    asked = parse_count("_count", query.get("_count"))
    count = min(service.options.default_count if asked is None else asked,
                service.options.max_count)
    offset = parse_count("_offset", query.get("_offset")) or 0
    resources, total = await run_in_threadpool(
        lambda: service.everything(id, since=since, types=types, count=count, offset=offset))
    params = [(k, query[k]) for k in ("_since", "_type") if query.get(k)]
    return fhir_response(request, everything_bundle(
        resources, total, base=base_url(request), patient_id=id, count=count, offset=offset,
        params=params))
