"""Signing and checking JSON Web Tokens (RFC 7519) with joserfc.

Access tokens follow the JWT profile for OAuth 2.0 access tokens (RFC 9068: ``typ``
``at+jwt``, claims ``iss sub aud exp iat jti client_id scope``) plus ``nbf``, ``roles``,
``kind`` and the SMART context (``patient``, ``practitioner``, ``organization``).

Checking follows RFC 8725 (JWT best current practice): the accepted algorithms are pinned by
the caller and the header's ``alg`` is never trusted beyond that list (so ``none`` and
``HS256`` keyed with our public key are refused), the issuer and audience are compared
exactly, and the size of what we parse is bounded before any decoding.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from vesalius.security.authn.model import Unauthenticated

#: Our own tokens.
LOCAL_ALGORITHMS = ("ES256",)
#: What an external provider or a client assertion may be signed with: asymmetric only.
#: SMART Backend Services require RS384 and ES384 support.
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                         "ES256", "ES384", "ES512")
MAX_TOKEN_LENGTH = 16 * 1024
#: Clock skew tolerated between us and other issuers, in seconds.
LEEWAY = 30


def sign(key: ECKey, claims: Mapping[str, Any], *, typ: str = "JWT") -> str:
    header = {"alg": "ES256", "kid": key.kid, "typ": typ}
    return jwt.encode(header, dict(claims), key, algorithms=list(LOCAL_ALGORITHMS))


def peek(token: str, error: str = "invalid_token") -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS *without* checking its signature: only to pick
    which keys to check it with. Raises ``Unauthenticated`` for anything malformed."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("the token is malformed", error)
    if token.count(".") != 2:
        raise Unauthenticated("the token is malformed", error)
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise Unauthenticated("the token is malformed", error) from exc
    header = dict(compact.headers())
    if not isinstance(claims, dict):
        raise Unauthenticated("the token is malformed", error)
    return header, claims


def verify(token: str, keys: ECKey | KeySet, algorithms: Collection[str],
           error: str = "invalid_token") -> dict[str, Any]:
    """The claims of ``token`` once its signature checks with ``keys`` under one of
    ``algorithms``; ``Unauthenticated`` otherwise."""
    header, _ = peek(token, error)
    if header.get("alg") not in algorithms:
        raise Unauthenticated("the token is signed with an algorithm we do not accept", error)
    if header.get("crit") is not None:
        raise Unauthenticated("the token has critical headers we do not understand", error)
    try:
        decoded = jwt.decode(token, keys, algorithms=list(algorithms))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise Unauthenticated("the token signature does not verify", error) from exc
    return dict(decoded.claims)


def check_times(claims: Mapping[str, Any], now: int, *, error: str = "invalid_token",
                leeway: int = LEEWAY, max_lifetime: int | None = None) -> None:
    """``exp`` required and in the future; ``nbf``/``iat`` not in the future (RFC 7519 §4.1)."""
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise Unauthenticated("the token has no expiry", error)
    if exp <= now - leeway:
        raise Unauthenticated("the token has expired", error)
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise Unauthenticated(f"the token's {name} is not a number", error)
        if value > now + leeway:
            raise Unauthenticated("the token is not valid yet", error)
    if max_lifetime is not None and exp > now + max_lifetime + leeway:
        raise Unauthenticated("the token lives too long", error)


def audience_matches(claims: Mapping[str, Any], audience: str) -> bool:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return aud == audience
    return isinstance(aud, list) and audience in aud
