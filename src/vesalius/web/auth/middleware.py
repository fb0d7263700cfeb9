"""``Authenticate``: every HTTP request outside the public paths carries a bearer token.

Pure ASGI (house style 8): only the request head is read, so streamed STOW-RS uploads and
multipart WADO-RS answers pass through untouched. The verified :class:`Principal` goes into
``scope["state"]["principal"]``, which Starlette exposes as ``request.state.principal``.

A request without a token, or with one that fails verification (expired, forged, ``alg:
none``, wrong audience, revoked…), is answered 401 with a ``WWW-Authenticate: Bearer``
challenge (RFC 6750 §3, https://www.rfc-editor.org/rfc/rfc6750#section-3): an
OperationOutcome under ``/fhir``, OAuth-style JSON elsewhere. Refused tokens are audited as
failed User Authentication (DCM 110114); the token is never recorded or logged.

This decides only *who* is calling. Whether they may do what they ask is the policy's
question, asked by the services.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from vesalius.security.audit.auditor import Auditor
from vesalius.security.authn import AuthService, Unauthenticated
from vesalius.web.auth.bearer import (
    BadCredentials,
    audit_refused_token,
    bearer_token,
    challenge,
)
from vesalius.web.fhir.outcome import outcome

PublicPath = Callable[[str, str], bool]

#: Path prefixes anyone may reach: health checks, the provider itself, discovery documents.
PUBLIC_PREFIXES = ("/auth/", "/.well-known/", "/fhir/.well-known/")
PUBLIC_PATHS = frozenset({"/healthz", "/auth"})
#: Anyone may read the CapabilityStatement (a SMART client reads it before signing in).
PUBLIC_READS = frozenset({"/fhir/metadata", "/fhir/metadata/"})


def is_public(method: str, path: str) -> bool:
    """Whether ``method path`` needs no credentials. Extend by wrapping:
    ``Authenticate(app, auth, public=lambda m, p: is_public(m, p) or p.startswith("/ui/"))``.
    """
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return True
    return method in ("GET", "HEAD") and path in PUBLIC_READS


def surface(path: str) -> str:
    """The audit trail's ``how`` for a path."""
    if path == "/fhir" or path.startswith("/fhir/"):
        return "fhir"
    if path.startswith(("/dicom-web/", "/wado")) or path == "/dicom-web":
        return "dicomweb"
    return "web"


class Authenticate:
    def __init__(self, app: ASGIApp, auth: AuthService, *, auditor: Auditor | None = None,
                 public: PublicPath = is_public) -> None:
        self.app = app
        self.auth = auth
        self.auditor = auditor
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        path = scope["path"]
        if self.public(method, path):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else ""
        header = _header(scope, b"authorization")
        try:
            token = bearer_token(header)
            if token is None:
                await self._refuse(scope, send, None, "no bearer token was sent")
                return
            principal = await run_in_threadpool(self.auth.verify_access_token, token,
                                                address=address)
        except (BadCredentials, Unauthenticated) as exc:
            reason = exc.reason if isinstance(exc, Unauthenticated) else str(exc)
            audit_refused_token(self.auditor, address, surface(path), reason)
            await self._refuse(scope, send, "invalid_token", reason)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, error: str | None, reason: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope["path"]
        if path == "/fhir" or path.startswith("/fhir/"):
            body = outcome("error", "login", f"authentication required: {reason}")
            media_type = b"application/fhir+json"
        else:
            body = {"error": error or "unauthorized", "error_description": reason}
            media_type = b"application/json"
        payload = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", media_type),
            (b"content-length", str(len(payload)).encode()),
            (b"www-authenticate", challenge(error).encode()),
            (b"cache-control", b"no-store"),
        ]})
        await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
