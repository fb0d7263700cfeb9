"""The clinician's web app at ``/``: the Vite build in ``vesalius/web/ui/dist``, as an ASGI app.

Mounted after every API route, so it only sees paths nothing else answered. It serves:

- the build's files (``/assets/*`` carry a content hash in their names and are cached for a
  year; ``index.html`` is revalidated on every load so a new release is picked up);
- ``index.html`` for the app's own routes (``/``, ``/callback``, ``/viewer``,
  ``/patients/<id>``), which the browser-side router then renders.

None of these carry patient data (the app fetches that with the user's token), so they are
public: :func:`is_ui_path` extends the authentication middleware's public paths. Anything else
is 404 (and API prefixes are never answered with the app). When the app was not built, a
503 page says how to build it. Security headers, the CSP included, come from
:class:`vesalius.web.headers.SecurityHeaders` like every other answer.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

DIST = Path(__file__).parent / "ui" / "dist"

#: The browser-side router's routes (see web/src/app/App.tsx).
SPA_PATHS = frozenset({"/", "/callback", "/viewer"})
SPA_PATTERN = re.compile(r"/patients/[^/]+/?")
#: Files of the build at the top level (Vite copies web/public/ there) and under assets/.
FILE_PATTERN = re.compile(r"/(?:assets/)?[A-Za-z0-9][A-Za-z0-9._-]*\.[A-Za-z0-9]+")
#: Paths the app never answers, even when nothing else did.
RESERVED_PREFIXES = ("/api", "/fhir", "/dicom-web", "/wado", "/auth", "/.well-known",
                     "/healthz")

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
MEDIA_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
               ".html": "text/html; charset=utf-8", ".wasm": "application/wasm",
               ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png",
               ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8",
               ".webmanifest": "application/manifest+json", ".map": "application/json",
               ".woff2": "font/woff2"}
#: Compressed copies that scripts/build-ui.sh writes next to these files.
GZIPPED = frozenset({".js", ".mjs", ".css", ".wasm", ".json", ".svg", ".map"})

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vesalius: web app not built</title></head>
<body><main><h1>The web app has not been built</h1>
<p>This server has no built web app to serve. Build it with <code>make ui</code>
(<code>make run</code> builds it too), then reload this page.</p>
<p>The APIs (<code>/fhir</code>, <code>/dicom-web</code>, <code>/api</code>) work without it.</p>
</main></body></html>
"""


def _reserved(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in RESERVED_PREFIXES)


def is_spa_route(path: str) -> bool:
    return path in SPA_PATHS or SPA_PATTERN.fullmatch(path) is not None


def is_ui_path(method: str, path: str) -> bool:
    """Whether ``method path`` is the web app's (public: no patient data in it)."""
    if method not in ("GET", "HEAD") or _reserved(path):
        return False
    return is_spa_route(path) or FILE_PATTERN.fullmatch(path) is not None


class UserInterface:
    """ASGI app serving the build in ``dist`` (see the module docstring)."""

    def __init__(self, dist: Path = DIST) -> None:
        self.dist = dist

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = self._respond(scope)
        await response(scope, receive, send)

    def _respond(self, scope: Scope) -> Response:
        method = scope["method"]
        path = scope["path"]
        if not is_ui_path(method if method in ("GET", "HEAD") else "GET", path):
            return PlainTextResponse("Not Found", status_code=404)
        if method not in ("GET", "HEAD"):
            return PlainTextResponse("Method Not Allowed", status_code=405,
                                     headers={"Allow": "GET, HEAD"})
        index = self.dist / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503,
                                headers={"Retry-After": "60", "Cache-Control": "no-store"})
        if is_spa_route(path) or path == "/index.html":
            return FileResponse(index, media_type=MEDIA_TYPES[".html"],
                                headers={"Cache-Control": REVALIDATE})
        # FILE_PATTERN admits no "..", no separators but the one after assets/, no leading
        # dot: the file is inside dist (and we still check, in case of links).
        target = (self.dist / path.lstrip("/")).resolve()
        if not target.is_file() or not target.is_relative_to(self.dist.resolve()):
            return PlainTextResponse("Not Found", status_code=404)
        cache = IMMUTABLE if path.startswith("/assets/") else REVALIDATE
        media_type = MEDIA_TYPES.get(target.suffix, "application/octet-stream")
        headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
        gzipped = target.with_name(target.name + ".gz")
        accepts = Headers(scope=scope).get("accept-encoding", "")
        if target.suffix in GZIPPED and "gzip" in accepts.lower() and gzipped.is_file():
            return FileResponse(gzipped, media_type=media_type,
                                headers={**headers, "Content-Encoding": "gzip"})
        return FileResponse(target, media_type=media_type, headers=headers)
