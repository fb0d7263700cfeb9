"""ASGI composition root: builds the services once and mounts each protocol surface."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from vesalius import __version__
from vesalius.archive.service import ArchiveService
from vesalius.config import load_settings
from vesalius.node import Node, build_node
from vesalius.security.principal import SYSTEM_PRINCIPAL
from vesalius.web.audit_events import routes as audit_event_routes
from vesalius.web.auth import (
    Authenticate,
    Provider,
    auth_routes,
    is_public,
    smart_configuration_route,
    well_known_routes,
)
from vesalius.web.break_glass import routes as break_glass_routes
from vesalius.web.chart import chart
from vesalius.web.dicomweb.app import routes as dicomweb_routes
from vesalius.web.fhir.app import fhir_routes
from vesalius.web.headers import SecurityHeaders
from vesalius.web.imaging_link import problems as imaging_link_problems
from vesalius.web.ui import DIST, UserInterface, is_ui_path
from vesalius.web.wado_uri import wado_uri


async def healthz(request: Request) -> Response:
    archive: ArchiveService = request.app.state.archive
    return JSONResponse({"status": "ok", "version": __version__,
                         "ae_title": archive.settings.ae_title})


def app_from_environment() -> Starlette:
    """ASGI app factory for HTTP worker processes: settings come from ``VESALIUS_*``."""
    return create_app(build_node(load_settings()))


class FhirBase:
    """``/fhir`` itself is the FHIR base (batch/transaction POST, system search): route it as
    ``/fhir/`` instead of answering with a redirect most FHIR clients do not follow."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/fhir":
            scope = {**scope, "path": "/fhir/", "raw_path": b"/fhir/"}
        await self.app(scope, receive, send)


def create_app(node: Node, *, ui: Path | None = None) -> Starlette:
    """``ui``: the web app's build to serve at ``/`` (the one shipped in the package by
    default)."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Each serving process rebuilds the ImagingStudies of what it stored (and helps with
        # the shared queue); stopping leaves pending studies queued in the database.
        node.link.start()
        node.auditor.record(SYSTEM_PRINCIPAL, type="110100", subtype="110120", action="E",
                            outcome=0, how="system", durable=True)
        try:
            yield
        finally:
            node.link.stop()
            node.auditor.record(SYSTEM_PRINCIPAL, type="110100", subtype="110121",
                                action="E", outcome=0, how="system")
            node.auditor.stop()

    provider = Provider(node.auth, node.settings, node.auditor)
    app = Starlette(lifespan=lifespan, middleware=[
        Middleware(SecurityHeaders, hsts_max_age=node.settings.hsts_max_age),
        Middleware(FhirBase),
        Middleware(Authenticate, auth=node.auth, auditor=node.auditor,
                   public=lambda method, path: is_public(method, path)
                   or is_ui_path(method, path))], routes=[
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/auth", routes=auth_routes(provider)),
        Mount("/.well-known", routes=well_known_routes(provider)),
        smart_configuration_route(provider, "/fhir/.well-known/smart-configuration"),
        Route("/wado", wado_uri, methods=["GET"]),
        Route("/api/patients/{id}/chart", chart, methods=["GET"]),
        Route("/api/imaging-link/problems", imaging_link_problems, methods=["GET"]),
        *break_glass_routes,
        *audit_event_routes,  # before the /fhir mount, which would answer them otherwise
        Mount("/dicom-web", routes=dicomweb_routes),
        Mount("/fhir", routes=fhir_routes()),
    ])
    # The web app answers only what no route did (after the router's trailing-slash
    # redirects), so it can never shadow an API.
    app.router.default = UserInterface(ui or DIST)
    app.state.node = node
    app.state.settings = node.settings
    app.state.archive = node.archive
    app.state.record = node.record
    return app
