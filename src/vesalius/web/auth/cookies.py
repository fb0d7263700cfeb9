"""The provider's two cookies and their flags.

- the **session** cookie names a web session of the identity service (a random token; the
  service stores only its hash); it is what lets a signed-in browser authorize the next app
  without typing the password again;
- the **pre-session** cookie is a random value the sign-in form's CSRF token is bound to.

Both are ``HttpOnly`` (no script reads them), ``SameSite=Lax`` (not sent on cross-site
POSTs) and ``Path=/``. Over HTTPS they are ``Secure`` and carry the ``__Host-`` prefix, which
browsers accept only from the host itself, with Secure and Path=/ and no Domain, so a sibling
subdomain cannot plant or overwrite them
(https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-rfc6265bis#section-4.1.3.2).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vesalius.config import Settings

SESSION = "vesalius_session"
PRESESSION = "vesalius_presession"
#: The pre-session lives long enough to fill in a form, no longer.
PRESESSION_SECONDS = 3600


def served_over_https(settings: Settings) -> bool:
    """Whether browsers reach us over HTTPS: our own TLS, or a public base URL behind a
    TLS-terminating proxy."""
    return settings.https != "off" or settings.base_url.startswith("https://")


def cookie_name(base: str, settings: Settings) -> str:
    return f"__Host-{base}" if served_over_https(settings) else base


def read_cookie(request: Request, base: str, settings: Settings) -> str | None:
    value = request.cookies.get(cookie_name(base, settings))
    if not value or len(value) > 256:
        return None
    return value


def set_cookie(response: Response, base: str, value: str, settings: Settings, *,
               max_age: int | None = None) -> None:
    response.set_cookie(cookie_name(base, settings), value, max_age=max_age, path="/",
                        secure=served_over_https(settings), httponly=True, samesite="lax")


def clear_cookie(response: Response, base: str, settings: Settings) -> None:
    response.delete_cookie(cookie_name(base, settings), path="/",
                           secure=served_over_https(settings), httponly=True, samesite="lax")
