"""``GET /api/patients/{id}/chart``: the web chart's one-call patient summary.

The record sections and the imaging timeline of one patient (see ``vesalius.record.chart``);
errors are OperationOutcomes, as on ``/fhir``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vesalius.config import Settings
from vesalius.core.errors import VesaliusError
from vesalius.record.service import RecordService
from vesalius.web.fhir.outcome import error_outcome


async def chart(request: Request) -> Response:
    record: RecordService = request.app.state.record
    settings: Settings = request.app.state.settings
    if settings.public_base_url:
        root = settings.base_url
    else:
        root = f"{request.url.scheme}://{request.headers.get('host') or request.url.netloc}"
    try:
        summary = record.chart(request.path_params["id"], dicomweb=f"{root}/dicom-web")
    except VesaliusError as exc:
        status, body = error_outcome(exc)
        return JSONResponse(body, status_code=status, media_type="application/fhir+json")
    return JSONResponse(summary.as_json())
