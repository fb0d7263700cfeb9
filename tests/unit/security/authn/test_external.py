"""Tokens of an external OpenID Connect provider: accepted with mapped roles, or refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from vesalius.core.errors import InvalidInput
from vesalius.security.authn import AuthService, Unauthenticated

IDP = "https://idp.example.org/realms/hospital"
AUDIENCE = "vesalius"


@pytest.fixture
def idp_key() -> RSAKey:
    return RSAKey.generate_key(2048, {"kid": "idp-1"})


@pytest.fixture
def external(env: Any, idp_key: RSAKey, tmp_path: Path) -> AuthService:
    jwks = tmp_path / "idp-jwks.json"
    jwks.write_text(json.dumps({"keys": [idp_key.as_dict(private=False)]}))
    service: AuthService = env.service(
        external_issuer=IDP, external_jwks=str(jwks), external_audience=AUDIENCE,
        external_role_claim="realm_access.roles",
        external_role_map=("doctor=clinician", "doctor=radiologist", "records=registration"))
    return service


def _token(env: Any, key: Any, alg: str = "RS256", **changes: Any) -> str:
    now = int(env.clock().timestamp())
    claims = {"iss": IDP, "sub": "f3c1-uuid", "aud": [AUDIENCE, "account"], "exp": now + 300,
              "iat": now, "jti": "ext-1", "name": "Dr Who", "scope": "openid user/*.rs",
              "realm_access": {"roles": ["doctor", "offline", "admin"]}, **changes}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


def test_external_token_accepted_with_mapped_roles(env: Any, external: AuthService,
                                                   idp_key: RSAKey) -> None:
    principal = external.verify_access_token(_token(env, idp_key), address="10.2.2.2")
    assert (principal.kind, principal.id, principal.issuer) == ("user", "f3c1-uuid", IDP)
    assert principal.roles == {"clinician", "radiologist"}  # unmapped values give nothing
    assert principal.scopes == {"openid", "user/*.rs"}
    assert principal.who == f"user@{IDP}:f3c1-uuid"
    assert principal.name == "Dr Who" and principal.session == "ext-1"


def _refused(service: AuthService, token: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        service.verify_access_token(token)
    assert caught.value.error == "invalid_token"


@pytest.mark.parametrize("changes", [
    {"iss": "https://evil.example.org/realms/hospital"}, {"iss": IDP + "/"},
    {"aud": "someone-else"}, {"aud": None}, {"exp": -3600}, {"exp": None}, {"nbf": 3600},
    {"sub": None}, {"sub": ""},
])
def test_external_token_refused(env: Any, external: AuthService, idp_key: RSAKey,
                                changes: dict[str, Any]) -> None:
    now = int(env.clock().timestamp())
    shifted = {k: (now + v if k in ("exp", "nbf") and isinstance(v, int) else v)
               for k, v in changes.items()}
    _refused(external, _token(env, idp_key, **shifted))


def test_external_token_signed_by_another_key_or_symmetric(env: Any, external: AuthService,
                                                           idp_key: RSAKey) -> None:
    _refused(external, _token(env, RSAKey.generate_key(2048, {"kid": "idp-1"})))
    _refused(external, _token(env, RSAKey.generate_key(2048, {"kid": "other"})))
    from joserfc.jwk import OctKey

    _refused(external, _token(env, OctKey.import_key(b"k" * 32, {"kid": "idp-1"}), "HS256"))


def test_without_external_issuer_its_tokens_are_refused(env: Any, idp_key: RSAKey) -> None:
    _refused(env.auth, _token(env, idp_key))


def test_bad_role_map_is_refused(env: Any) -> None:
    for entry in ("doctor", "doctor=god", "=clinician"):
        with pytest.raises(InvalidInput):
            env.service(external_issuer=IDP, external_jwks="x", external_role_map=(entry,)) \
                .issue_token("nobody", 1)


class _JwksHandler(BaseHTTPRequestHandler):
    body = b""
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_url(idp_key: RSAKey) -> Iterator[str]:
    _JwksHandler.body = json.dumps({"keys": [idp_key.as_dict(private=False)]}).encode()
    _JwksHandler.hits = 0
    server = HTTPServer(("127.0.0.1", 0), _JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/certs"
    server.shutdown()
    thread.join()


def test_external_jwks_fetched_over_http_and_cached(env: Any, idp_key: RSAKey,
                                                    jwks_url: str) -> None:
    service = env.service(external_issuer=IDP, external_jwks=jwks_url,
                          external_audience=AUDIENCE, external_role_claim="realm_access.roles",
                          external_role_map=("doctor=clinician",))
    for _ in range(3):
        assert service.verify_access_token(_token(env, idp_key)).roles == {"clinician"}
    assert _JwksHandler.hits == 1


def test_unreachable_external_jwks_refuses(env: Any, idp_key: RSAKey) -> None:
    service = env.service(external_issuer=IDP, external_jwks="http://127.0.0.1:9/nothing",
                          external_audience=AUDIENCE)
    _refused(service, _token(env, idp_key))
