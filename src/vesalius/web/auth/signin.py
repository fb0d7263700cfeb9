"""The sign-in and sign-out forms: ``/auth/login`` and ``/auth/logout``.

``POST /auth/login`` is the one place a password arrives over HTTP. In order: the per-address
rate limit (before any work), the size-limited form, the CSRF token (bound to the pre-session
cookie, see ``tickets``), the authorization request it continues (validated again: the form is
client input like any other), then the identity service's ``sign_in``, which does lockout,
the second factor and the audit record. Failures show one generic message whether or not the
account exists.

A successful sign-in opens a web session (its cookie lets the browser authorize further apps
without the password) and continues the authorization request: the browser goes straight
back to the app with its code.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from vesalius.security.authn import SignInResult
from vesalius.web.auth import cookies, pages
from vesalius.web.auth.authorize import (
    AuthorizationRequest,
    NoRedirect,
    RedirectError,
    current_session,
    finish,
    parse_request,
    presession,
    redirect_error,
    sign_in_page,
)
from vesalius.web.auth.forms import FormError, read_form
from vesalius.web.auth.provider import Provider, client_address
from vesalius.web.auth.tickets import Ticket

EXPIRED = "The sign-in form expired or was sent from another site. Please sign in again."
MISSING_CSRF = "The sign-in form is missing its security token. Please reload the page."
SLOW = "Your sign-in took too long. Please sign in again."
ENTER_CODE = "Enter the code from your authenticator app."
WRONG_CODE = "That code is not valid. Enter the current code from your authenticator app."
#: Longest username or password passed on (the password hasher has its own bound).
MAX_USERNAME = 256
MAX_PASSWORD = 1024


def _secret_of(totp_uri: str) -> str:
    """The base32 secret inside an ``otpauth://`` URI, shown for manual entry."""
    values = parse_qs(urlsplit(totp_uri).query).get("secret", [""])
    return values[0]


async def login_form(provider: Provider, request: Request) -> Response:
    """``GET /auth/login``: sign in without an app (or see who is signed in)."""
    session = await current_session(provider, request)
    if session is not None:
        _, principal, csrf = session
        return pages.signed_in(name=principal.name or principal.id, csrf=csrf)
    return sign_in_page(provider, request, "")


async def login(provider: Provider, request: Request) -> Response:
    """``POST /auth/login``: the password form, the TOTP form and the enrollment form."""
    address = client_address(request)
    refusal = provider.limited(provider.login_limit, address, "/auth/login")
    if refusal is not None:
        return pages.error("Too many attempts",
                           "Too many sign-in attempts from your network. Please wait a "
                           "minute and try again.", 429,
                           {"Retry-After": str(refusal.retry_after)})
    try:
        form = await read_form(request)
    except FormError as exc:
        return pages.error("Cannot sign in", exc.description, exc.status)
    token = form.get("csrf", "")
    if not token:
        return pages.error("Cannot sign in", MISSING_CSRF, 400)
    value, new = presession(provider, request)
    if new or not provider.secrets.csrf_valid(value, token):
        return sign_in_page(provider, request, form.get("request", ""), message=EXPIRED,
                            status=403)

    query = form.get("request", "")
    parsed: AuthorizationRequest | None = None
    if query:
        try:
            parsed = await parse_request(provider, query)
        except NoRedirect as exc:
            return pages.error("Cannot sign in", exc.message)
        except RedirectError as exc:
            return redirect_error(provider, exc)

    sealed = form.get("ticket", "")
    if sealed:
        ticket = provider.secrets.open(sealed, value)
        if ticket is None:
            return sign_in_page(provider, request, query, message=SLOW, status=400)
        code = form.get("code" if ticket.stage == "enroll" else "totp", "").strip()[:16]
        if not code:
            return _ask_code(provider, ticket, query, value, ENTER_CODE, 400)
        confirm = provider.auth.confirm_totp if ticket.stage == "enroll" \
            else provider.auth.sign_in
        result = await provider.call(confirm, ticket.username, ticket.password, code, address)
        return await _answer(provider, request, result, parsed, query, value,
                             ticket=ticket, password=ticket.password)

    username = form.get("username", "").strip()
    password = form.get("password", "")
    if not username or not password:
        return sign_in_page(provider, request, query, username=username[:MAX_USERNAME],
                            message="Enter your username and password.", status=400)
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        # Too long to be an account of ours: the same answer as a wrong password.
        return sign_in_page(provider, request, query, message="Wrong username or password.",
                            status=403)
    result = await provider.call(provider.auth.sign_in, username, password, None, address)
    return await _answer(provider, request, result, parsed, query, value, ticket=None,
                         password=password)


async def _answer(provider: Provider, request: Request, result: SignInResult,
                  parsed: AuthorizationRequest | None, query: str, value: str, *,
                  ticket: Ticket | None, password: str) -> Response:
    """The page (or redirect) a sign-in result leads to."""
    csrf = provider.secrets.csrf_token(value)
    if result.status == "ok":
        return await _signed_in(provider, request, result.username, parsed)
    if result.status == "locked":
        headers = {"Retry-After": str(result.retry_after)} if result.retry_after else None
        return sign_in_page(provider, request, query, message=result.message, status=429,
                            headers=headers)
    if result.status == "mfa-required":
        sealed = provider.secrets.seal(Ticket("mfa", result.username, password), value)
        message = WRONG_CODE if ticket is not None else ""
        return pages.second_factor(csrf=csrf, request=query, ticket=sealed, message=message,
                                   status=403 if message else 200)
    if result.status == "mfa-enrollment-required" and result.totp_uri:
        sealed = provider.secrets.seal(
            Ticket("enroll", result.username, password, result.totp_uri), value)
        return pages.enrollment(csrf=csrf, request=query, ticket=sealed,
                                totp_uri=result.totp_uri, secret=_secret_of(result.totp_uri))
    if ticket is not None:
        return _ask_code(provider, ticket, query, value, WRONG_CODE, 403)
    return sign_in_page(provider, request, query, username=result.username[:MAX_USERNAME],
                        message=result.message or "Wrong username or password.", status=403)


def _ask_code(provider: Provider, ticket: Ticket, query: str, value: str, message: str,
              status: int) -> Response:
    """The TOTP or enrollment form again, with a fresh ticket (the clock restarts)."""
    csrf = provider.secrets.csrf_token(value)
    sealed = provider.secrets.seal(ticket, value)
    if ticket.stage == "enroll":
        return pages.enrollment(csrf=csrf, request=query, ticket=sealed,
                                totp_uri=ticket.totp_uri, secret=_secret_of(ticket.totp_uri),
                                message=message, status=status)
    return pages.second_factor(csrf=csrf, request=query, ticket=sealed, message=message,
                               status=status)


async def _signed_in(provider: Provider, request: Request, username: str,
                     parsed: AuthorizationRequest | None) -> Response:
    address = client_address(request)
    session_id, csrf = await provider.call(provider.auth.open_session, username, address)
    found = await provider.call(provider.auth.session, session_id)
    if found is None:  # only if the account was disabled in the same instant
        return sign_in_page(provider, request, parsed.query if parsed else "",
                            message="Wrong username or password.", status=403)
    principal = found[0].with_address(address)
    if parsed is not None:
        response = await finish(provider, parsed, principal)
    else:
        response = pages.signed_in(name=principal.name or principal.id, csrf=csrf)
    cookies.set_cookie(response, cookies.SESSION, session_id, provider.settings,
                       max_age=provider.settings.session_max_age)
    return response


async def logout_form(provider: Provider, request: Request) -> Response:
    """``GET /auth/logout``: a confirmation form (a GET must not end a session: any page
    could embed it as an image)."""
    session = await current_session(provider, request)
    if session is None:
        return pages.signed_out()
    _, principal, csrf = session
    return pages.signed_in(name=principal.name or principal.id, csrf=csrf)


async def logout(provider: Provider, request: Request) -> Response:
    """``POST /auth/logout``: end the session (CSRF-checked against the session's token)."""
    try:
        form = await read_form(request)
    except FormError as exc:
        return pages.error("Cannot sign out", exc.description, exc.status)
    token = form.get("csrf", "")
    if not token:
        return pages.error("Cannot sign out", "The form is missing its security token.", 400)
    session = await current_session(provider, request)
    if session is not None:
        session_id, principal, csrf = session
        if not hmac.compare_digest(csrf.encode(), token.encode()):
            return pages.error("Cannot sign out",
                               "The form was sent from another site or has expired.", 403)
        await provider.call(provider.auth.close_session, session_id)
        if provider.auditor is not None:  # User Authentication / Logout (DCM 110114/110123)
            provider.auditor.record(principal.with_address(client_address(request)),
                                    type="110114", subtype="110123", action="E", outcome=0,
                                    how="web")
    response = pages.signed_out()
    cookies.clear_cookie(response, cookies.SESSION, provider.settings)
    return response
