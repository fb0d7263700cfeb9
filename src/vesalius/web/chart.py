"""``GET /api/patients/{id}/chart``: the web chart's one-call patient summary.

The record sections and the imaging timeline of one patient (see ``vesalius.record.chart``);
errors are OperationOutcomes, as on ``/fhir``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vesalius.core.errors import VesaliusError
from vesalius.web.fhir.outcome import error_outcome
from vesalius.web.fhir.requests import server_root
from vesalius.web.principal import record_for


async def chart(request: Request) -> Response:
    try:
        summary = record_for(request).chart(request.path_params["id"],
                                            dicomweb=f"{server_root(request)}/dicom-web")
    except VesaliusError as exc:
        status, body = error_outcome(exc)
        return JSONResponse(body, status_code=status, media_type="application/fhir+json")
    return JSONResponse(summary.as_json())
