"""ASGI composition root: builds the services once and mounts each protocol surface."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from vesalius import __version__
from vesalius.archive.service import ArchiveService
from vesalius.web.dicomweb.app import routes as dicomweb_routes
from vesalius.web.wado_uri import wado_uri


async def healthz(request: Request) -> Response:
    archive: ArchiveService = request.app.state.archive
    return JSONResponse({"status": "ok", "version": __version__,
                         "ae_title": archive.settings.ae_title})


def create_app(archive: ArchiveService) -> Starlette:
    app = Starlette(routes=[
        Route("/healthz", healthz, methods=["GET"]),
        Route("/wado", wado_uri, methods=["GET"]),
        Mount("/dicom-web", routes=dicomweb_routes),
    ])
    app.state.archive = archive
    return app
