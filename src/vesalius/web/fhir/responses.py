"""Writing FHIR responses: JSON bodies, version headers, ``Prefer: return``.

https://hl7.org/fhir/R4/http.html#versioning, https://hl7.org/fhir/R4/http.html#ops
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vesalius.record.unit_of_work import Version
from vesalius.web.fhir.outcome import outcome
from vesalius.web.fhir.requests import prefer, pretty, response_media_type


def fhir_response(request: Request, body: dict[str, Any] | None, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """``body`` as FHIR JSON (indented with ``_pretty=true``); no body for None."""
    if body is None:
        return Response(status_code=status, headers=headers)
    if pretty(request):
        text = json.dumps(body, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(text.encode("utf-8"), status_code=status, headers=headers,
                    media_type=f"{response_media_type(request)}; charset=utf-8")


def http_date(ts: datetime) -> str:
    """RFC 9110 HTTP-date; database timestamps without a zone are UTC."""
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return format_datetime(aware.astimezone(UTC), usegmt=True)


def version_headers(version: Version, base: str, *, location: bool = False) -> dict[str, str]:
    """ETag ``W/"n"`` and Last-Modified; Location ``{base}/{type}/{id}/_history/{n}`` on writes."""
    headers = {"ETag": version.etag, "Last-Modified": http_date(version.last_updated)}
    if location:
        headers["Location"] = f"{base}/{version.location}"
    return headers


def written(request: Request, version: Version, base: str, status: int,
            message: str) -> Response:
    """The answer to a create/update/patch, shaped by ``Prefer: return``."""
    headers = version_headers(version, base, location=True)
    wanted = prefer(request).get("return", "representation")
    if wanted == "minimal":
        return fhir_response(request, None, status, headers)
    if wanted == "OperationOutcome":
        return fhir_response(request, outcome("information", "informational", message),
                             status, headers)
    return fhir_response(request, version.resource, status, headers)
