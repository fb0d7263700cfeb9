"""Client registration and authentication: secrets and private_key_jwt (RFC 7523)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from vesalius.core.errors import Conflict, InvalidInput, NotFound
from vesalius.security.authn import Unauthenticated
from vesalius.security.authn.clients import JWT_BEARER

TOKEN_ENDPOINT = "https://ehr.example.org/auth/token"


def _invalid_client(env: Any, client_id: Any, **kwargs: Any) -> None:
    with pytest.raises(Unauthenticated) as caught:
        env.auth.authenticate_client(client_id, token_endpoint=TOKEN_ENDPOINT, **kwargs)
    assert caught.value.error == "invalid_client"


def test_secret_clients(env: Any) -> None:
    secret = env.auth.add_client("svc", scopes=["system/*.rs"])
    client = env.auth.authenticate_client("svc", secret=secret, token_endpoint=TOKEN_ENDPOINT)
    assert client.auth_method == "client_secret_basic" and not client.public
    assert client.grant_types == {"client_credentials"}
    assert secret not in repr(client)
    for wrong in ("", secret[:-1], secret + "x", "x" * 100000, None):
        _invalid_client(env, "svc", secret=wrong)
    _invalid_client(env, "nobody", secret=secret)
    _invalid_client(env, None, secret=secret)


def test_public_clients(env: Any, app: Any) -> None:
    assert env.auth.authenticate_client("app", token_endpoint=TOKEN_ENDPOINT).public
    _invalid_client(env, "app", secret="anything")


@pytest.mark.parametrize("kwargs", [
    {"redirect_uris": ["http://evil.example/cb"]},       # http off loopback
    {"redirect_uris": ["https://ok.example/cb#frag"]},
    {"redirect_uris": ["/relative"]},
    {"redirect_uris": ["javascript:alert(1)"]},
    {"scopes": ["superuser"]},
    {"roles": ["god"]},
    {"grant_types": ["password"]},
    {"public": True, "grant_types": ["client_credentials"]},
    {"public": True},                                     # code grant needs a redirect URI
    {"jwks": {"keys": []}},
    {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
    {"jwks": "not a dict"},
])
def test_registration_refuses_bad_input(env: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        env.auth.add_client("c1", **kwargs)


@pytest.mark.parametrize("client_id", ["", " ", "a b", "x" * 200, "é", "a/b", None])
def test_bad_client_ids(env: Any, client_id: Any) -> None:
    with pytest.raises(InvalidInput):
        env.auth.add_client(client_id, scopes=["system/*.rs"])
    with pytest.raises(NotFound):
        env.auth.client(client_id)


def test_duplicate_client(env: Any) -> None:
    env.auth.add_client("svc", scopes=["system/*.rs"])
    with pytest.raises(Conflict):
        env.auth.add_client("svc", scopes=["system/*.rs"])


def test_private_keys_are_refused_in_a_jwks(env: Any) -> None:
    key = ECKey.generate_key("P-256")
    with pytest.raises(InvalidInput, match="private"):
        env.auth.add_client("svc", jwks={"keys": [key.as_dict(private=True)]})


@pytest.fixture(params=["ES384", "RS384"])
def keyed(env: Any, request: pytest.FixtureRequest) -> tuple[Any, str]:
    alg = str(request.param)
    key: Any = (ECKey.generate_key("P-384", {"kid": "k1"}) if alg == "ES384"
                else RSAKey.generate_key(2048, {"kid": "k1"}))
    assert env.auth.add_client("backend", scopes=["system/*.rs"], roles=["clinician"],
                               jwks={"keys": [key.as_dict(private=False)]}) is None
    return key, alg


def _assertion(env: Any, key: Any, alg: str, **changes: Any) -> str:
    now = int(env.clock().timestamp())
    claims = {"iss": "backend", "sub": "backend", "aud": TOKEN_ENDPOINT, "exp": now + 240,
              "iat": now, "jti": secrets.token_hex(16), **changes}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key,
                      algorithms=[alg])


def test_private_key_jwt_valid(env: Any, keyed: tuple[Any, str]) -> None:
    key, alg = keyed
    client = env.auth.authenticate_client(None, assertion=_assertion(env, key, alg),
                                          assertion_type=JWT_BEARER,
                                          token_endpoint=TOKEN_ENDPOINT)
    assert client.client_id == "backend" and client.auth_method == "private_key_jwt"
    token = env.auth.client_credentials(client, "system/Patient.rs").access_token
    assert env.auth.verify_access_token(token).id == "backend"
    # With the client id given too.
    env.auth.authenticate_client("backend", assertion=_assertion(env, key, alg),
                                 assertion_type=JWT_BEARER, token_endpoint=TOKEN_ENDPOINT)


def test_private_key_jwt_replayed(env: Any, keyed: tuple[Any, str]) -> None:
    key, alg = keyed
    assertion = _assertion(env, key, alg)
    env.auth.authenticate_client("backend", assertion=assertion, assertion_type=JWT_BEARER,
                                 token_endpoint=TOKEN_ENDPOINT)
    _invalid_client(env, "backend", assertion=assertion, assertion_type=JWT_BEARER)


@pytest.mark.parametrize("changes", [
    {"exp": -60}, {"exp": 400}, {"exp": None}, {"aud": "https://other.example/token"},
    {"aud": None}, {"iss": "someone"}, {"sub": "someone"}, {"jti": None}, {"jti": ""},
    {"nbf": 120}, {"exp": "soon"},
])
def test_private_key_jwt_bad_claims(env: Any, keyed: tuple[Any, str],
                                    changes: dict[str, Any]) -> None:
    key, alg = keyed
    now = int(env.clock().timestamp())
    shifted = {k: (now + v if k in ("exp", "nbf") and isinstance(v, int) else v)
               for k, v in changes.items()}
    _invalid_client(env, "backend", assertion=_assertion(env, key, alg, **shifted),
                    assertion_type=JWT_BEARER)


def test_private_key_jwt_expired_after_the_fact(env: Any, keyed: tuple[Any, str]) -> None:
    key, alg = keyed
    assertion = _assertion(env, key, alg)
    env.clock.advance(241 + 30)
    _invalid_client(env, "backend", assertion=assertion, assertion_type=JWT_BEARER)


def test_private_key_jwt_wrong_key_type_or_secret(env: Any, keyed: tuple[Any, str]) -> None:
    key, alg = keyed
    stranger = ECKey.generate_key("P-384", {"kid": "k1"})
    _invalid_client(env, "backend", assertion=_assertion(env, stranger, "ES384"),
                    assertion_type=JWT_BEARER)
    _invalid_client(env, "backend", assertion=_assertion(env, key, alg),
                    assertion_type="urn:other")
    _invalid_client(env, "backend", secret="whatever")
    _invalid_client(env, "backend")
    for garbage in ("", "a.b.c", "x" * 50000, "...", json.dumps({"iss": "backend"})):
        _invalid_client(env, "backend", assertion=garbage, assertion_type=JWT_BEARER)
    # An assertion for another client named "backend" in the client_id parameter.
    _invalid_client(env, "svc-other", assertion=_assertion(env, key, alg),
                    assertion_type=JWT_BEARER)
