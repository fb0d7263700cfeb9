"""TEST ONLY: a stand-in for the sign-in middleware, for tests that mount a few routes on a
bare Starlette app and need to choose the caller per request."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from vesalius.security.principal import USER, Principal


class PrincipalFromTestHeader:
    """Puts the principal named by ``X-Test-User: <id>:<role>`` into
    ``scope["state"]["principal"]`` where the real sign-in middleware would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-test-user":
                    user, _, role = value.decode().partition(":")
                    scope.setdefault("state", {})["principal"] = Principal(
                        kind=USER, id=user, roles=frozenset({role}), address="127.0.0.1")
        await self.app(scope, receive, send)
