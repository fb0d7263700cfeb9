"""ASGI composition root: builds the services once and mounts each protocol surface."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from vesalius import __version__
from vesalius.archive.factory import build_archive
from vesalius.archive.service import ArchiveService
from vesalius.config import load_settings
from vesalius.web.dicomweb.app import routes as dicomweb_routes
from vesalius.web.wado_uri import wado_uri


async def healthz(request: Request) -> Response:
    archive: ArchiveService = request.app.state.archive
    return JSONResponse({"status": "ok", "version": __version__,
                         "ae_title": archive.settings.ae_title})


def app_from_environment() -> Starlette:
    """ASGI app factory for HTTP worker processes: settings come from ``VESALIUS_*``."""
    settings = load_settings()
    return create_app(build_archive(settings))


def create_app(archive: ArchiveService) -> Starlette:
    app = Starlette(routes=[
        Route("/healthz", healthz, methods=["GET"]),
        Route("/wado", wado_uri, methods=["GET"]),
        Mount("/dicom-web", routes=dicomweb_routes),
    ])
    app.state.archive = archive
    return app
