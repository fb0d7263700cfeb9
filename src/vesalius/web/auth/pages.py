"""The provider's own HTML pages: sign-in, second factor, enrollment, errors.

Plain server-rendered forms that work without JavaScript. Accessibility (WCAG 2.2,
https://www.w3.org/TR/WCAG22/): every input has a ``<label>``, ``autocomplete`` tokens let
password managers fill them (``username``, ``current-password``, ``one-time-code``), errors are
announced (``role="alert"``) and linked to the form, the language is declared.

Every value is HTML-escaped here and nowhere else. The pages are sent with a strict Content
Security Policy (no scripts at all; the one stylesheet allowed by its hash), may not be framed
(clickjacking on a password form), are never cached and leak no Referer.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

from starlette.responses import HTMLResponse

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1b1b1b}"
    "label{display:block;margin-top:1rem;font-weight:600}"
    "input{display:block;width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}"
    "button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}"
    "[role=alert]{border-left:4px solid #b00020;padding:.5rem 1rem;background:#fdecee}"
    "code{word-break:break-all}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
HEADERS = {
    "Content-Security-Policy": (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


def page(title: str, body: str, status: int = 200,
         headers: dict[str, str] | None = None) -> HTMLResponse:
    html = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)} · Vesalius</title><style>{STYLE}</style></head>"
            f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>\n")
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})


def _alert(message: str) -> str:
    return f'<p role="alert" id="problem">{escape(message)}</p>' if message else ""


def _described(message: str) -> str:
    return ' aria-describedby="problem"' if message else ""


def _hidden(**fields: str) -> str:
    return "".join(f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
                   for name, value in fields.items() if value)


def sign_in(*, csrf: str, request: str, client: str = "", username: str = "",
            message: str = "", status: int = 200,
            headers: dict[str, str] | None = None) -> HTMLResponse:
    """The password form; ``request`` is the authorization request it continues."""
    purpose = (f"<p>{escape(client)} asks to use Vesalius on your behalf.</p>"
               if client else "")
    body = (f"{purpose}{_alert(message)}"
            f'<form method="post" action="/auth/login"{_described(message)}>'
            f"{_hidden(csrf=csrf, request=request)}"
            f'<label for="username">Username</label>'
            f'<input id="username" name="username" autocomplete="username" required '
            f'autocapitalize="none" spellcheck="false" value="{escape(username)}">'
            f'<label for="password">Password</label>'
            f'<input id="password" name="password" type="password" '
            f'autocomplete="current-password" required>'
            f'<button type="submit">Sign in</button></form>')
    return page("Sign in", body, status, headers)


def second_factor(*, csrf: str, request: str, ticket: str, message: str = "",
                  status: int = 200) -> HTMLResponse:
    body = (f"<p>Enter the 6-digit code from your authenticator app.</p>{_alert(message)}"
            f'<form method="post" action="/auth/login"{_described(message)}>'
            f"{_hidden(csrf=csrf, request=request, ticket=ticket)}"
            f'<label for="totp">Authentication code</label>'
            f'<input id="totp" name="totp" inputmode="numeric" pattern="[0-9]{{6}}" '
            f'maxlength="6" autocomplete="one-time-code" required>'
            f'<button type="submit">Verify</button></form>')
    return page("Two-step verification", body, status)


def enrollment(*, csrf: str, request: str, ticket: str, totp_uri: str, secret: str,
               message: str = "", status: int = 200) -> HTMLResponse:
    """Shows the new TOTP secret as text (no QR image: the page loads nothing else) and asks
    for a first code to prove the authenticator holds it."""
    body = (f"<p>Your role requires a second factor. Add this account to an authenticator "
            f"app (RFC 6238 TOTP), then enter the code it shows.</p>"
            f"<p>Secret key: <code>{escape(secret)}</code></p>"
            f"<p>Or open this setup link on your phone: <code>{escape(totp_uri)}</code></p>"
            f"{_alert(message)}"
            f'<form method="post" action="/auth/login"{_described(message)}>'
            f"{_hidden(csrf=csrf, request=request, ticket=ticket)}"
            f'<label for="code">Code from the app</label>'
            f'<input id="code" name="code" inputmode="numeric" pattern="[0-9]{{6}}" '
            f'maxlength="6" autocomplete="one-time-code" required>'
            f'<button type="submit">Confirm</button></form>')
    return page("Set up two-step verification", body, status)


def signed_in(*, name: str, csrf: str) -> HTMLResponse:
    body = (f"<p>You are signed in as {escape(name)}.</p>"
            f'<form method="post" action="/auth/logout">{_hidden(csrf=csrf)}'
            f'<button type="submit">Sign out</button></form>')
    return page("Signed in", body)


def signed_out() -> HTMLResponse:
    return page("Signed out", "<p>You are signed out.</p>")


def error(title: str, message: str, status: int = 400,
          headers: dict[str, str] | None = None) -> HTMLResponse:
    return page(title, f'<p role="alert">{escape(message)}</p>', status, headers)
