"""The provider's routes, bound to one :class:`Provider`: mount ``auth_routes`` at ``/auth``
and ``well_known_routes`` at ``/.well-known``; ``smart_configuration_route`` serves the same
SMART document under the FHIR base."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vesalius.web.auth import authorize, discovery, signin, token
from vesalius.web.auth.provider import Provider

Endpoint = Callable[[Provider, Request], Awaitable[Response]]


def _bind(provider: Provider, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        return await endpoint(provider, request)
    handle.__name__ = endpoint.__name__
    return handle


def auth_routes(provider: Provider) -> list[BaseRoute]:
    def route(path: str, endpoint: Endpoint, methods: list[str]) -> Route:
        return Route(path, _bind(provider, endpoint), methods=methods)

    return [
        route("/authorize", authorize.authorize, ["GET"]),
        route("/login", signin.login_form, ["GET"]),
        route("/login", signin.login, ["POST"]),
        route("/logout", signin.logout_form, ["GET"]),
        route("/logout", signin.logout, ["POST"]),
        route("/token", token.token, ["POST"]),
        route("/revoke", token.revoke, ["POST"]),
        route("/userinfo", token.userinfo, ["GET", "POST"]),
        route("/jwks", discovery.jwks, ["GET"]),
    ]


def well_known_routes(provider: Provider) -> list[BaseRoute]:
    return [
        Route("/openid-configuration", _bind(provider, discovery.openid_configuration),
              methods=["GET"]),
        Route("/smart-configuration", _bind(provider, discovery.smart_configuration),
              methods=["GET"]),
    ]


def smart_configuration_route(provider: Provider, path: str) -> Route:
    return Route(path, _bind(provider, discovery.smart_configuration), methods=["GET"])
