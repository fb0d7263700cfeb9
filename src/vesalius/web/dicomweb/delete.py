"""DELETE of studies, series and instances (PS3.18 §10.8 is reserved; modelled on dcm4chee)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vesalius.web.dicomweb.common import blocking, guarded, service


@guarded
async def delete_resource(request: Request) -> Response:
    p = request.path_params
    reason = request.query_params.get("reason", "")[:500]
    await blocking(service(request).delete, p["study"], p.get("series"), p.get("instance"),
                   reason=reason)
    return Response(status_code=204)
