"""The values the identity core hands to its edges: results, token responses, clients.

Secrets (tokens, enrollment URIs holding a TOTP secret) are excluded from ``repr`` so that a
logged object never leaks one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Unauthenticated(Exception):
    """The caller could not be authenticated, or a grant was refused.

    ``reason`` is safe to show to the caller (no secret, no patient data, never whether an
    account exists); ``error`` is the OAuth 2.0 error code the edge answers with
    (RFC 6749 §5.2, RFC 6750 §3.1): ``invalid_token``, ``invalid_grant``, ``invalid_client``,
    ``invalid_request``, ``invalid_scope``, ``unauthorized_client``, ``access_denied``.
    """

    def __init__(self, reason: str, error: str = "invalid_token") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass(frozen=True)
class TokenResponse:
    """A successful token endpoint response (RFC 6749 §5.1, SMART App Launch §2.0.8)."""

    access_token: str = field(repr=False)
    expires_in: int
    scope: str
    token_type: str = "Bearer"
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    #: SMART launch context: the patient the app was launched for.
    patient: str | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"access_token": self.access_token,
                                  "token_type": self.token_type,
                                  "expires_in": self.expires_in, "scope": self.scope}
        for name in ("refresh_token", "id_token", "patient"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


#: ``SignInResult.status`` values.
SIGN_IN_STATUSES = ("ok", "mfa-required", "mfa-enrollment-required", "failed", "locked")
GENERIC_FAILURE = "Wrong username or password."


@dataclass(frozen=True)
class SignInResult:
    """What a sign-in attempt came to.

    ``message`` is meant for the sign-in page: for failures it is the same whether or not
    the account exists. ``totp_uri`` (an ``otpauth://`` URI holding the new TOTP secret) is set
    only for ``mfa-enrollment-required``.
    """

    status: str
    username: str
    message: str = ""
    retry_after: int | None = None
    totp_uri: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


#: Client authentication methods (OpenID Connect Core §9, RFC 7523 §2.2).
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


@dataclass(frozen=True)
class Client:
    """A registered OAuth client (a SMART app or a backend service); never holds its secret."""

    client_id: str
    name: str
    public: bool
    redirect_uris: tuple[str, ...]
    #: Scopes the client may be granted.
    scopes: frozenset[str]
    #: Roles of the client itself when it acts on its own behalf (client credentials).
    roles: frozenset[str]
    auth_method: str
    grant_types: frozenset[str]

    def as_dict(self) -> dict[str, object]:
        return {"client_id": self.client_id, "name": self.name, "public": self.public,
                "redirect_uris": list(self.redirect_uris), "scopes": sorted(self.scopes),
                "roles": sorted(self.roles), "auth_method": self.auth_method,
                "grant_types": sorted(self.grant_types)}
