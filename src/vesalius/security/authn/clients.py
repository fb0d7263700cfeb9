"""Registered OAuth clients and how they prove who they are.

- Public clients (browser and native SMART apps) have no secret; they must use PKCE
  (SMART App Launch §"Considerations for PKCE", RFC 7636).
- Confidential clients with a secret (``client_secret_basic`` or ``client_secret_post``,
  RFC 6749 §2.3.1): a random 256-bit secret shown once and stored as its SHA-256.
- Confidential clients with a key (``private_key_jwt``, RFC 7523 §2.2 and SMART Backend
  Services, https://hl7.org/fhir/smart-app-launch/backend-services.html): the client
  registers a JWKS of public keys and signs a short-lived assertion for every token request;
  we check ``iss`` = ``sub`` = client id, ``aud`` = our token endpoint, an ``exp`` at most five
  minutes ahead, and that its ``jti`` was never used before.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from vesalius.core.errors import Conflict, InvalidInput, NotFound
from vesalius.security.authn import scopes as scope_rules
from vesalius.security.authn.context import Context, digest, new_token
from vesalius.security.authn.keys import import_public_jwks
from vesalius.security.authn.model import GRANT_TYPES, Client, Unauthenticated
from vesalius.security.authn.tables import auth_assertions, auth_clients
from vesalius.security.authn.tokens import ASYMMETRIC_ALGORITHMS, audience_matches, check_times
from vesalius.security.authn.tokens import peek as peek_token
from vesalius.security.authn.tokens import verify as verify_token
from vesalius.security.principal import ROLES, Principal

CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:~-]{0,127}")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300
MAX_SECRET_LENGTH = 512
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def check_redirect_uri(uri: str) -> str:
    """An absolute ``https`` URI (``http`` only on loopback), no fragment (RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    if parts.fragment or not parts.netloc or len(uri) > 2000:
        raise InvalidInput(f"redirect URI {uri[:100]!r} must be absolute, without a fragment")
    if parts.scheme != "https" and not (parts.scheme == "http"
                                        and parts.hostname in _LOOPBACK):
        raise InvalidInput(f"redirect URI {uri[:100]!r} must use https (http only on loopback)")
    return uri


class Clients:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def add_client(self, client_id: str, *, name: str = "", public: bool = False,
                   redirect_uris: Iterable[str] = (), scopes: Iterable[str] = (),
                   roles: Iterable[str] = (), jwks: dict[str, Any] | None = None,
                   grant_types: Iterable[str] | None = None,
                   by: Principal | None = None) -> str | None:
        if not isinstance(client_id, str) or CLIENT_ID.fullmatch(client_id) is None:
            raise InvalidInput("a client id has 1-128 letters, digits or '._:~-'")
        uris = tuple(check_redirect_uri(u) for u in redirect_uris)
        scope_set = scope_rules.split_scopes(list(scopes))
        role_set = frozenset(roles)
        if role_set - set(ROLES):
            raise InvalidInput(f"unknown role(s) {sorted(role_set - set(ROLES))}")
        if public and jwks is not None:
            raise InvalidInput("a public client has no keys; drop --public or --jwks")
        if grant_types is None:  # what the registration makes possible
            grants = frozenset({"authorization_code", "refresh_token"} if uris else set())
            if not public:
                grants |= {"client_credentials"}
        else:
            grants = frozenset(grant_types)
        if grants - set(GRANT_TYPES) or not grants:
            raise InvalidInput(f"grant types are among {', '.join(GRANT_TYPES)}")
        if public and "client_credentials" in grants:
            raise InvalidInput("a public client cannot use client credentials")
        if "authorization_code" in grants and not uris:
            raise InvalidInput("a client using the authorization code grant needs a "
                               "redirect URI")
        jwks_text = None
        if jwks is not None:
            import_public_jwks(jwks)
            jwks_text = json.dumps(jwks)
        secret = None if public or jwks is not None else new_token()
        method = ("none" if public else "private_key_jwt" if jwks is not None
                  else "client_secret_basic")
        try:
            with self._ctx.engine.begin() as conn:
                conn.execute(insert(auth_clients).values(
                    client_id=client_id, name=name or client_id, public=public,
                    redirect_uris=json.dumps(list(uris)), scopes=" ".join(sorted(scope_set)),
                    roles=" ".join(sorted(role_set)), auth_method=method,
                    grant_types=" ".join(sorted(grants)),
                    secret_hash=digest(secret) if secret else None, jwks=jwks_text,
                    created=self._ctx.now()))
        except IntegrityError as exc:
            raise Conflict(f"the client {client_id!r} already exists") from exc
        if by is not None:
            self._ctx.audit(by, type="110113", subtype="110132", action="C", outcome=0,
                            how="cli", outcome_desc=f"client {client_id} registered",
                            durable=True)
        return secret

    def add_redirect_uris(self, client_id: str, uris: Iterable[str]) -> None:
        """Register more redirect URIs for a client (those it has already are kept once)."""
        checked = [check_redirect_uri(u) for u in uris]
        with self._ctx.engine.begin() as conn:
            row = conn.execute(select(auth_clients.c.redirect_uris)
                               .where(auth_clients.c.client_id == client_id)).first()
            if row is None:
                raise NotFound(f"no client {str(client_id)[:128]!r}")
            current: list[str] = json.loads(row.redirect_uris)
            merged = current + [u for u in dict.fromkeys(checked) if u not in current]
            if merged != current:
                conn.execute(update(auth_clients).where(auth_clients.c.client_id == client_id)
                             .values(redirect_uris=json.dumps(merged)))

    def _row(self, client_id: str) -> Row[Any] | None:
        if not isinstance(client_id, str) or CLIENT_ID.fullmatch(client_id) is None:
            return None
        with self._ctx.engine.connect() as conn:
            return conn.execute(select(auth_clients)
                                .where(auth_clients.c.client_id == client_id)).first()

    @staticmethod
    def _client(row: Row[Any]) -> Client:
        return Client(client_id=row.client_id, name=row.name, public=bool(row.public),
                      redirect_uris=tuple(json.loads(row.redirect_uris)),
                      scopes=frozenset(row.scopes.split()), roles=frozenset(row.roles.split()),
                      auth_method=row.auth_method, grant_types=frozenset(row.grant_types.split()))

    def client(self, client_id: str) -> Client:
        row = self._row(client_id)
        if row is None:
            raise NotFound(f"no client {str(client_id)[:128]!r}")
        return self._client(row)

    def clients(self) -> list[Client]:
        with self._ctx.engine.connect() as conn:
            rows = conn.execute(select(auth_clients).order_by(auth_clients.c.client_id)).all()
        return [self._client(r) for r in rows]

    def authenticate(self, client_id: str | None, *, secret: str | None = None,
                     assertion: str | None = None, assertion_type: str | None = None,
                     token_endpoint: str) -> Client:
        """The client, once it proved its identity the way it registered to (RFC 6749 §2.3)."""
        fail = Unauthenticated("client authentication failed", "invalid_client")
        if assertion is not None or assertion_type is not None:
            if assertion_type != JWT_BEARER or not isinstance(assertion, str):
                raise fail
            _, unverified = peek_token(assertion, "invalid_client")
            claimed = unverified.get("iss")
            if client_id is None:
                client_id = claimed if isinstance(claimed, str) else None
            if client_id is None or claimed != client_id:
                raise fail
        row = self._row(client_id) if client_id is not None else None
        if row is None:
            raise fail
        if row.auth_method == "private_key_jwt":
            if assertion is None or secret is not None:
                raise fail
            self._check_assertion(row, assertion, token_endpoint)
        elif row.auth_method == "none":
            if secret is not None or assertion is not None:
                raise fail
        else:
            if (assertion is not None or not isinstance(secret, str)
                    or len(secret) > MAX_SECRET_LENGTH or row.secret_hash is None
                    or not hmac.compare_digest(digest(secret), row.secret_hash)):
                raise fail
        return self._client(row)

    def _check_assertion(self, row: Row[Any], assertion: str, token_endpoint: str) -> None:
        """RFC 7523 §3 checks of a client assertion, then remember its ``jti``."""
        error = "invalid_client"
        keys = import_public_jwks(json.loads(row.jwks))
        claims = verify_token(assertion, keys, ASYMMETRIC_ALGORITHMS, error)
        now = self._ctx.now()
        if claims.get("iss") != row.client_id or claims.get("sub") != row.client_id:
            raise Unauthenticated("the assertion's iss and sub must be the client id", error)
        if not audience_matches(claims, token_endpoint):
            raise Unauthenticated("the assertion is not addressed to this token endpoint",
                                  error)
        check_times(claims, now, error=error, max_lifetime=MAX_ASSERTION_LIFETIME)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise Unauthenticated("the assertion has no jti", error)
        with self._ctx.engine.begin() as conn:
            conn.execute(delete(auth_assertions).where(auth_assertions.c.expires < now))
        try:
            with self._ctx.engine.begin() as conn:
                conn.execute(insert(auth_assertions).values(
                    key=digest(f"{row.client_id}\0{jti}"), expires=int(claims["exp"]) + 60))
        except IntegrityError as exc:
            raise Unauthenticated("the assertion was already used", error) from exc
