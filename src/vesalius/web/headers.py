"""Security headers on every HTTP response (pure ASGI).

Only the ``http.response.start`` message is touched, so streamed and multipart bodies
(WADO-RS retrievals, STOW-RS responses) pass through untouched and unbuffered. A header the
route already set wins: a page that needs its own ``Content-Security-Policy`` or a response
that is meant to be cached says so itself.

- ``Strict-Transport-Security`` (RFC 6797) only on responses sent over HTTPS: §7.2 forbids
  it over plain HTTP, where an attacker could forge or strip it anyway.
- ``Content-Security-Policy`` (https://www.w3.org/TR/CSP3/): our own origin only; images
  and workers may also come from ``data:``/``blob:`` URLs the viewer creates from pixel
  data, WebAssembly codecs may compile (``'wasm-unsafe-eval'``), inline styles are allowed
  for the viewer's layout, and no one may frame us (``frame-ancestors 'none'``, with
  ``X-Frame-Options: DENY`` for older browsers). ``form-action`` is left open on purpose:
  the sign-in form's answer redirects to a SMART app's ``redirect_uri`` on another origin.
- ``Cache-Control: no-store`` (RFC 9111 §5.2.2.5) on patient data and sign-in answers
  unless the route chose a policy, so no shared or browser cache keeps them.
- ``Referrer-Policy: no-referrer``: URLs carry study UIDs and patient ids; they must not leak
  to other sites.
- ``Permissions-Policy``: no camera, microphone, location or other device access.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "worker-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
))
PERMISSIONS_POLICY = ", ".join((
    "accelerometer=()", "camera=()", "geolocation=()", "gyroscope=()", "magnetometer=()",
    "microphone=()", "payment=()", "usb=()", "fullscreen=(self)",
))
#: Path prefixes whose answers hold patient data or credentials.
NO_STORE_PREFIXES = ("/fhir", "/api", "/auth", "/dicom-web", "/wado")

_ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"permissions-policy", PERMISSIONS_POLICY.encode("ascii")),
)


def _no_store(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in NO_STORE_PREFIXES)


class SecurityHeaders:
    """Add the headers above to each HTTP response of ``app``."""

    def __init__(self, app: ASGIApp, *, hsts_max_age: int = 31536000) -> None:
        if hsts_max_age < 0:
            raise ValueError("hsts_max_age must not be negative")
        self.app = app
        self.hsts = f"max-age={hsts_max_age}; includeSubDomains".encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_ALWAYS)
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", self.hsts))
        if _no_store(str(scope.get("path", ""))):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
