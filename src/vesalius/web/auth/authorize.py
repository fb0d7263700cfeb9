"""The authorization endpoint: ``GET /auth/authorize`` (authorization code with PKCE).

RFC 6749 §4.1 (https://www.rfc-editor.org/rfc/rfc6749#section-4.1) with PKCE S256 only
(RFC 7636, https://www.rfc-editor.org/rfc/rfc7636), the OpenID Connect ``nonce`` and
``prompt`` parameters (https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest) and
SMART App Launch's ``aud`` (https://hl7.org/fhir/smart-app-launch/app-launch.html#request-4).

Errors are answered in two ways, and the order of the checks decides which:

- until the client and its ``redirect_uri`` are known to belong together, an HTML error page
  (§4.1.2.1: "MUST NOT automatically redirect the user-agent to the invalid redirection
  URI"), so nobody can use us as an open redirector;
- after that, a redirect back to the client with ``error`` and ``state``.

A signed-in browser (a valid session cookie) gets its code at once; otherwise the sign-in
form, which carries the whole request along and hands it back here when it succeeds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vesalius.core.errors import InvalidInput, NotFound
from vesalius.security.authn import Client, Unauthenticated
from vesalius.security.authn.scopes import is_resource_scope, split_scopes
from vesalius.security.principal import Principal
from vesalius.web.auth import cookies, pages
from vesalius.web.auth.forms import FormError, parse_params
from vesalius.web.auth.provider import Provider, client_address
from vesalius.web.auth.tickets import random_token

#: The PKCE challenge of S256 is a base64url SHA-256: 43 characters (RFC 7636 §4.2).
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
#: Longest ``state``, ``nonce`` or identifier we carry around.
MAX_VALUE = 1024
PROMPTS = frozenset({"none", "login", "consent", "select_account"})


class NoRedirect(Exception):
    """The request cannot be answered at its ``redirect_uri``: show an error page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RedirectError(Exception):
    """An error to send back to a client's registered ``redirect_uri`` (RFC 6749 §4.1.2.1)."""

    def __init__(self, redirect_uri: str, error: str, description: str, state: str) -> None:
        super().__init__(description)
        self.redirect_uri = redirect_uri
        self.error = error
        self.description = description
        self.state = state


@dataclass(frozen=True)
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    scopes: frozenset[str]
    state: str
    code_challenge: str
    nonce: str | None
    prompt: frozenset[str]
    #: The request's query string as received, carried through the sign-in form.
    query: str


def with_params(uri: str, params: dict[str, str]) -> str:
    """``uri`` with ``params`` added to its query (a registered URI may have one already)."""
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query, fragment=""))


def redirect(uri: str) -> Response:
    return RedirectResponse(uri, status_code=302,
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def redirect_error(provider: Provider, error: RedirectError) -> Response:
    params = {"error": error.error, "error_description": error.description,
              "iss": provider.settings.issuer}
    if error.state:
        params["state"] = error.state
    return redirect(with_params(error.redirect_uri, params))


async def parse_request(provider: Provider, query: str) -> AuthorizationRequest:
    """Validate an authorization request; :class:`NoRedirect` or :class:`RedirectError`."""
    try:
        params = parse_params(query)
    except FormError as exc:
        raise NoRedirect(f"The sign-in request is malformed: {exc.description}.") from exc
    client_id = params.get("client_id", "")
    if not client_id or len(client_id) > MAX_VALUE:
        raise NoRedirect("The sign-in request does not name an application (client_id).")
    try:
        client = await provider.call(provider.auth.client, client_id)
    except (NotFound, InvalidInput) as exc:
        raise NoRedirect("The application asking you to sign in is not registered here.") \
            from exc
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri and len(client.redirect_uris) == 1:
        redirect_uri = client.redirect_uris[0]  # RFC 6749 §3.1.2.3
    if redirect_uri not in client.redirect_uris:
        raise NoRedirect("The application asked to return to an address it has not "
                         "registered, so this sign-in was stopped.")

    state = params.get("state", "")

    def refuse(error: str, description: str) -> RedirectError:
        return RedirectError(redirect_uri, error, description, state[:MAX_VALUE])

    if len(state) > MAX_VALUE:
        raise refuse("invalid_request", "state is too long")
    if "request" in params or "request_uri" in params:  # OpenID Connect Core §6
        raise refuse("request_not_supported" if "request" in params
                     else "request_uri_not_supported", "request objects are not supported")
    response_type = params.get("response_type", "")
    if not response_type:
        raise refuse("invalid_request", "response_type is required")
    if response_type != "code":
        raise refuse("unsupported_response_type", "only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise refuse("unauthorized_client", "this client may not use the authorization code "
                                            "grant")
    challenge = params.get("code_challenge", "")
    if not challenge:
        raise refuse("invalid_request", "code_challenge (PKCE) is required")
    if params.get("code_challenge_method") != "S256":
        raise refuse("invalid_request", "code_challenge_method must be S256")
    if not _CHALLENGE.fullmatch(challenge):
        raise refuse("invalid_request", "code_challenge is not a base64url SHA-256 digest")
    scope_text = params.get("scope", "")
    if not scope_text.strip():
        raise refuse("invalid_scope", "scope is required")
    try:
        scopes = split_scopes(scope_text)
    except InvalidInput as exc:
        raise refuse("invalid_scope", exc.message) from exc
    audience = params.get("aud", "")
    if audience and audience.rstrip("/") != provider.fhir_base:
        raise refuse("invalid_request", "aud is not this server's FHIR base URL")
    if not audience and any(is_resource_scope(s) for s in scopes):
        raise refuse("invalid_request",
                     "aud (this server's FHIR base URL) is required with FHIR scopes")
    nonce = params.get("nonce") or None
    if nonce is not None and len(nonce) > MAX_VALUE:
        raise refuse("invalid_request", "nonce is too long")
    prompt = frozenset(params.get("prompt", "").split()) & PROMPTS
    if "none" in prompt and len(prompt) > 1:
        raise refuse("invalid_request", "prompt=none cannot be combined with other values")
    return AuthorizationRequest(client, redirect_uri, scopes, state, challenge, nonce, prompt,
                                query)


async def current_session(provider: Provider, request: Request) -> tuple[str, Principal, str] \
        | None:
    """(session id, principal, CSRF token) of the browser's session, if it has a live one."""
    session_id = cookies.read_cookie(request, cookies.SESSION, provider.settings)
    if session_id is None:
        return None
    found = await provider.call(provider.auth.session, session_id)
    if found is None:
        return None
    principal, csrf = found
    return session_id, principal, csrf


async def finish(provider: Provider, request: AuthorizationRequest,
                 principal: Principal) -> Response:
    """Issue the code for a signed-in user and send the browser back to the client.

    The patient context of a SMART launch is the user's own Patient for patient users and
    none for everyone else: there is no patient picker (a clinician's app chooses patients
    through the FHIR API, under the access policy).
    """
    try:
        code = await provider.call(
            provider.auth.issue_code, principal, request.client,
            redirect_uri=request.redirect_uri, scopes=request.scopes,
            code_challenge=request.code_challenge, code_challenge_method="S256",
            nonce=request.nonce, launch_patient=principal.patient)
    except Unauthenticated as exc:
        return redirect_error(provider, RedirectError(
            request.redirect_uri, exc.error, exc.reason, request.state))
    except InvalidInput as exc:
        return redirect_error(provider, RedirectError(
            request.redirect_uri, "invalid_request", exc.message, request.state))
    params = {"code": code, "iss": provider.settings.issuer}  # iss: RFC 9207
    if request.state:
        params["state"] = request.state
    return redirect(with_params(request.redirect_uri, params))


def presession(provider: Provider, request: Request) -> tuple[str, bool]:
    """The browser's pre-session value, and whether it is new (to be set as a cookie)."""
    value = cookies.read_cookie(request, cookies.PRESESSION, provider.settings)
    return (value, False) if value else (random_token(), True)


def sign_in_page(provider: Provider, request: Request, query: str, *, client: str = "",
                 username: str = "", message: str = "", status: int = 200,
                 headers: dict[str, str] | None = None) -> Response:
    value, new = presession(provider, request)
    response = pages.sign_in(csrf=provider.secrets.csrf_token(value), request=query,
                             client=client, username=username, message=message,
                             status=status, headers=headers)
    if new:
        cookies.set_cookie(response, cookies.PRESESSION, value, provider.settings,
                           max_age=cookies.PRESESSION_SECONDS)
    return response


async def authorize(provider: Provider, request: Request) -> Response:
    try:
        parsed = await parse_request(provider, request.url.query)
    except NoRedirect as exc:
        return pages.error("Cannot sign in", exc.message)
    except RedirectError as exc:
        return redirect_error(provider, exc)
    session = await current_session(provider, request)
    if session is None and "none" in parsed.prompt:
        return redirect_error(provider, RedirectError(
            parsed.redirect_uri, "login_required", "no one is signed in", parsed.state))
    if session is None or "login" in parsed.prompt:
        return sign_in_page(provider, request, parsed.query,
                            client=parsed.client.name or parsed.client.client_id)
    _, principal, _ = session
    return await finish(provider, parsed, principal.with_address(client_address(request)))
