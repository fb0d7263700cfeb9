"""The token, revocation and userinfo endpoints.

- ``POST /auth/token``: RFC 6749 §3.2 and §4.1.3 (authorization code, with the PKCE verifier
  of RFC 7636 §4.5), §4.4 (client credentials, as SMART Backend Services use it:
  https://hl7.org/fhir/smart-app-launch/backend-services.html) and §6 (refresh). Clients
  authenticate with HTTP Basic (§2.3.1), form fields, or a signed JWT (RFC 7523 §2.2);
  public clients name themselves with ``client_id``. Errors are §5.2 JSON.
- ``POST /auth/revoke``: RFC 7009; any token string gets 200 (§2.2: "invalid tokens do not
  cause an error response"), so the endpoint cannot be used to test whether a token exists.
- ``GET|POST /auth/userinfo``: OpenID Connect Core §5.3 with a bearer token.

Every answer carries ``Cache-Control: no-store`` and ``Pragma: no-cache`` (RFC 6749 §5.1).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from dataclasses import dataclass
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vesalius.core.errors import InvalidInput, NotFound
from vesalius.security.authn import Client, TokenResponse, Unauthenticated
from vesalius.security.authn.scopes import split_scopes
from vesalius.web.auth.bearer import (
    BadCredentials,
    audit_refused_token,
    bearer_token,
    challenge,
)
from vesalius.web.auth.forms import FormError, read_form
from vesalius.web.auth.provider import Provider, client_address

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_PARAMETER = 8192


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response."""

    def __init__(self, error: str, description: str, status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self) -> Response:
        return JSONResponse({"error": self.error, "error_description": self.description},
                            status_code=self.status, headers={**NO_STORE, **self.headers})


BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="vesalius"'}


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str | None
    secret: str | None
    assertion: str | None
    assertion_type: str | None
    #: Sent with HTTP Basic: an ``invalid_client`` answer then carries a Basic challenge.
    basic: bool


def _basic(header: str) -> tuple[str, str]:
    """``client_id:secret`` of a Basic header, each form-urlencoded (RFC 6749 §2.3.1)."""
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise OAuthError("invalid_client", "the Basic credentials are malformed", 401,
                         BASIC_CHALLENGE) from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise OAuthError("invalid_client", "the Basic credentials are malformed", 401,
                         BASIC_CHALLENGE)
    return unquote_plus(client_id), unquote_plus(secret)


def client_credentials_of(request: Request, form: dict[str, str]) -> ClientCredentials:
    """How the client authenticates; more than one method is refused (RFC 6749 §2.3)."""
    header = request.headers.get("authorization")
    client_id = form.get("client_id") or None
    secret = form.get("client_secret") or None
    assertion = form.get("client_assertion") or None
    assertion_type = form.get("client_assertion_type") or None
    basic = header is not None and header[:6].lower() == "basic "
    if header is not None and not basic:
        raise OAuthError("invalid_client", "client authentication must use HTTP Basic", 401,
                         BASIC_CHALLENGE)
    methods = sum((basic, secret is not None, assertion is not None))
    if methods > 1:
        raise OAuthError("invalid_request", "use exactly one client authentication method")
    if assertion is not None and assertion_type != JWT_BEARER:
        raise OAuthError("invalid_request", f"client_assertion_type must be {JWT_BEARER}")
    if basic and header is not None:
        basic_id, secret = _basic(header)
        if client_id is not None and client_id != basic_id:
            raise OAuthError("invalid_request", "client_id does not match the credentials")
        client_id = basic_id
    if client_id is None and assertion is None:
        raise OAuthError("invalid_client", "the client is not identified", 401)
    return ClientCredentials(client_id, secret, assertion, assertion_type, basic)


async def authenticate(provider: Provider, request: Request, form: dict[str, str]) -> Client:
    credentials = client_credentials_of(request, form)
    try:
        return await provider.call(provider.auth.authenticate_client, credentials.client_id,
                                   secret=credentials.secret, assertion=credentials.assertion,
                                   assertion_type=credentials.assertion_type,
                                   token_endpoint=provider.token_endpoint)
    except (Unauthenticated, NotFound, InvalidInput) as exc:
        headers = BASIC_CHALLENGE if credentials.basic else None
        raise OAuthError("invalid_client", "client authentication failed", 401,
                         headers) from exc


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"{name} is required")
    if len(value) > MAX_PARAMETER:
        raise OAuthError("invalid_request", f"{name} is too long")
    return value


def _scopes(form: dict[str, str]) -> frozenset[str] | None:
    if "scope" not in form:
        return None
    try:
        return split_scopes(form["scope"])
    except InvalidInput as exc:
        raise OAuthError("invalid_scope", exc.message) from exc


async def _grant(provider: Provider, client: Client, grant_type: str,
                 form: dict[str, str]) -> TokenResponse:
    auth = provider.auth
    if grant_type == "authorization_code":
        return await provider.call(auth.redeem_code, _required(form, "code"), client,
                                   redirect_uri=_required(form, "redirect_uri"),
                                   code_verifier=_required(form, "code_verifier"))
    if grant_type == "client_credentials":
        scopes = _scopes(form)
        return await provider.call(auth.client_credentials, client,
                                   client.scopes if scopes is None else scopes)
    return await provider.call(auth.refresh, _required(form, "refresh_token"), client,
                               _scopes(form))


async def _limited(provider: Provider, request: Request, endpoint: str) -> Response | None:
    refusal = provider.limited(provider.token_limit, client_address(request), endpoint)
    if refusal is None:
        return None
    return OAuthError("temporarily_unavailable", "too many requests; retry later", 429,
                      {"Retry-After": str(refusal.retry_after)}).response()


async def token(provider: Provider, request: Request) -> Response:
    """``POST /auth/token``."""
    limited = await _limited(provider, request, "/auth/token")
    if limited is not None:
        return limited
    try:
        try:
            form = await read_form(request)
        except FormError as exc:
            raise OAuthError("invalid_request", exc.description, exc.status) from exc
        grant_type = _required(form, "grant_type")
        if grant_type not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", "the grant type is not supported")
        client = await authenticate(provider, request, form)
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client",
                             f"this client may not use the {grant_type} grant")
        try:
            granted = await _grant(provider, client, grant_type, form)
        except Unauthenticated as exc:
            status = 401 if exc.error == "invalid_client" else 400
            raise OAuthError(exc.error, exc.reason, status) from exc
        except InvalidInput as exc:
            raise OAuthError("invalid_request", exc.message) from exc
        except NotFound as exc:
            raise OAuthError("invalid_grant", exc.message) from exc
    except OAuthError as exc:
        return exc.response()
    return JSONResponse(granted.as_json(), headers=NO_STORE)


async def revoke(provider: Provider, request: Request) -> Response:
    """``POST /auth/revoke`` (RFC 7009 §2)."""
    limited = await _limited(provider, request, "/auth/revoke")
    if limited is not None:
        return limited
    try:
        try:
            form = await read_form(request)
        except FormError as exc:
            raise OAuthError("invalid_request", exc.description, exc.status) from exc
        client = await authenticate(provider, request, form)
        value = _required(form, "token")
    except OAuthError as exc:
        return exc.response()
    # §2.2: an unknown or foreign token is not an error the client learns about.
    with contextlib.suppress(Unauthenticated, InvalidInput, NotFound):
        await provider.call(provider.auth.revoke, value, client)
    return Response(status_code=200, headers=NO_STORE)


async def userinfo(provider: Provider, request: Request) -> Response:
    """``GET|POST /auth/userinfo`` (OpenID Connect Core §5.3); RFC 6750 §3 errors."""
    address = client_address(request)
    try:
        value = bearer_token(request.headers.get("authorization"))
    except BadCredentials as exc:
        audit_refused_token(provider.auditor, address, "web", str(exc))
        return _unauthorized(challenge("invalid_token", str(exc)), "invalid_token", 401)
    if value is None:
        return _unauthorized(challenge(), "invalid_token", 401)
    try:
        principal = await provider.call(provider.auth.verify_access_token, value,
                                        address=address)
    except Unauthenticated as exc:
        audit_refused_token(provider.auditor, address, "web", exc.reason)
        return _unauthorized(challenge("invalid_token", exc.reason), "invalid_token", 401)
    if "openid" not in principal.scopes:
        return _unauthorized(challenge("insufficient_scope", "the openid scope is needed"),
                             "insufficient_scope", 403)
    info = await provider.call(provider.auth.userinfo, principal)
    return JSONResponse(info, headers=NO_STORE)


def _unauthorized(www_authenticate: str, error: str, status: int) -> Response:
    return JSONResponse({"error": error}, status_code=status,
                        headers={**NO_STORE, "WWW-Authenticate": www_authenticate})
