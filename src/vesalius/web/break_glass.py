"""``/api/break-glass``: ask for, list and end emergency access to one patient's record.

- ``POST /api/break-glass`` with ``{"patient": "<Patient id>", "reason": "..."}``: a grant
  for ``break_glass_minutes`` (201 with the grant). Who may is the policy's ``break-glass``
  function; the patient must exist (404 otherwise). The grant is a durable Security Alert in
  the audit trail before the answer leaves (``security.break_glass``).
- ``GET /api/break-glass[?since=<ISO 8601 instant>]``: every grant, newest first, for
  auditors (the policy's ``audit.read`` function).
- ``DELETE /api/break-glass/{id}``: end one of one's own grants early (someone else's grant
  is not found).

Break-the-glass is a function, not patient data, so a role without it gets 403 (RFC 9457
problem details), not the 404 that hides a patient's record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from vesalius.core.errors import InvalidInput, NotFound, TooLarge, VesaliusError
from vesalius.node import Node
from vesalius.security.break_glass import check_patient, check_reason
from vesalius.web.principal import principal_of, record_for
from vesalius.web.problems import problem_for

#: Largest request body read: a patient id and a 500-character reason fit many times over.
MAX_BODY = 16 * 1024


async def _json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise TooLarge(f"a break-the-glass request has at most {MAX_BODY} bytes")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise InvalidInput("send the request as application/json")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise TooLarge(f"a break-the-glass request has at most {MAX_BODY} bytes")
    except ClientDisconnect as error:
        raise InvalidInput("the request body was cut short") from error
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise InvalidInput("the request body is not JSON") from error
    if not isinstance(parsed, dict):
        raise InvalidInput('send a JSON object: {"patient": "<id>", "reason": "<why>"}')
    return parsed


async def start(request: Request) -> Response:
    node: Node = request.app.state.node
    try:
        record_for(request).require_function("break-glass")
        body = await _json_body(request)
        patient = check_patient(body.get("patient"))
        reason = check_reason(body.get("reason"))
        try:
            await run_in_threadpool(node.record.read, "Patient", patient)
        except NotFound as error:
            raise NotFound(f"Patient/{patient} is not known") from error
        grant = await run_in_threadpool(node.break_glass.grant, principal_of(request), patient,
                                        reason, node.settings.break_glass_minutes)
    except VesaliusError as error:
        return problem_for(error)
    return JSONResponse(grant.to_json(), status_code=201,
                        headers={"Location": f"/api/break-glass/{grant.id}"})


async def listing(request: Request) -> Response:
    node: Node = request.app.state.node
    try:
        record_for(request).require_function("audit.read")
        unknown = set(request.query_params) - {"since"}
        if unknown:
            raise InvalidInput(f"unknown parameter {sorted(unknown)[0][:40]!r}")
        since = _instant(request.query_params.get("since"))
        grants = await run_in_threadpool(node.break_glass.list, since)
    except VesaliusError as error:
        return problem_for(error)
    return JSONResponse([grant.to_json() for grant in grants])


async def end(request: Request) -> Response:
    node: Node = request.app.state.node
    try:
        grant = await run_in_threadpool(node.break_glass.end, principal_of(request),
                                        request.path_params["id"])
    except VesaliusError as error:
        return problem_for(error)
    return JSONResponse(grant.to_json())


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidInput("since is an ISO 8601 date or date-time") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


routes: list[BaseRoute] = [
    Route("/api/break-glass", start, methods=["POST"]),
    Route("/api/break-glass", listing, methods=["GET"]),
    Route("/api/break-glass/{id}", end, methods=["DELETE"]),
]
