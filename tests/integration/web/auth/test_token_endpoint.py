"""``/auth/token``, ``/auth/revoke``, ``/auth/userinfo`` and the discovery documents."""

from __future__ import annotations

import time
import uuid

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

from .conftest import APP, Provider, redeem, sign_in


def _token(provider: Provider, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{provider.base}/auth/token", **kwargs)  # type: ignore[arg-type]


def _error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


def test_client_credentials_with_basic_and_post(provider: Provider) -> None:
    basic = _token(provider, data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                   auth=("backend", provider.backend_secret))
    assert basic.status_code == 200, basic.text
    assert basic.json()["scope"] == "system/*.rs"
    assert "refresh_token" not in basic.json()
    posted = _token(provider, data={"grant_type": "client_credentials",
                                    "client_id": "backend",
                                    "client_secret": provider.backend_secret})
    assert posted.status_code == 200, posted.text
    token = posted.json()["access_token"]
    read = httpx.get(f"{provider.server.fhir}/Patient",
                     headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200, read.text


def test_wrong_client_secret_is_invalid_client(provider: Provider) -> None:
    basic = _token(provider, data={"grant_type": "client_credentials"},
                   auth=("backend", "wrong"))
    _error(basic, 401, "invalid_client")
    assert basic.headers["www-authenticate"].startswith("Basic")
    posted = _token(provider, data={"grant_type": "client_credentials", "client_id": "backend",
                                    "client_secret": "wrong"})
    _error(posted, 401, "invalid_client")
    unknown = _token(provider, data={"grant_type": "client_credentials", "client_id": "nobody",
                                     "client_secret": "x"})
    _error(unknown, 401, "invalid_client")
    missing = _token(provider, data={"grant_type": "client_credentials"})
    _error(missing, 401, "invalid_client")
    for header in ("Basic !!!notbase64", "Basic " + "eA==", "Bearer abc", "Basic Og=="):
        _error(_token(provider, data={"grant_type": "client_credentials"},
                      headers={"Authorization": header}), 401, "invalid_client")


def test_two_client_authentication_methods_are_refused(provider: Provider) -> None:
    response = _token(provider, data={"grant_type": "client_credentials",
                                      "client_secret": provider.backend_secret},
                      auth=("backend", provider.backend_secret))
    _error(response, 400, "invalid_request")


def test_public_client_may_not_use_client_credentials(provider: Provider) -> None:
    _error(_token(provider, data={"grant_type": "client_credentials", "client_id": APP}),
           400, "unauthorized_client")


def test_unknown_scope_and_grant(provider: Provider) -> None:
    _error(_token(provider, data={"grant_type": "client_credentials", "scope": "system/*.zz"},
                  auth=("backend", provider.backend_secret)), 400, "invalid_scope")
    _error(_token(provider, data={"grant_type": "password", "username": "a", "password": "b"},
                  auth=("backend", provider.backend_secret)), 400, "unsupported_grant_type")
    _error(_token(provider, data={"client_id": "backend"}), 400, "invalid_request")


def _jwt_client(provider: Provider) -> ECKey:
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    provider.node.auth.add_client("signed", scopes=["system/*.rs"],
                                  jwks={"keys": [key.as_dict(private=False)]})
    return key


def _assertion(provider: Provider, key: ECKey, **claims: object) -> str:
    now = int(time.time())
    body = {"iss": "signed", "sub": "signed", "aud": provider.token_endpoint, "iat": now,
            "exp": now + 60, "jti": uuid.uuid4().hex, **claims}
    return jwt.encode({"alg": "ES256", "kid": "k1"}, body, key)


def _signed(provider: Provider, assertion: str) -> httpx.Response:
    return _token(provider, data={
        "grant_type": "client_credentials", "scope": "system/*.rs",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})


def test_private_key_jwt_client(provider: Provider) -> None:
    key = _jwt_client(provider)
    assertion = _assertion(provider, key)
    response = _signed(provider, assertion)
    assert response.status_code == 200, response.text
    _error(_signed(provider, assertion), 401, "invalid_client")  # replayed jti
    _error(_signed(provider, _assertion(provider, key, aud="https://elsewhere.example/token")),
           401, "invalid_client")
    _error(_signed(provider, _assertion(provider, key, exp=int(time.time()) - 120)),
           401, "invalid_client")
    stranger = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    _error(_signed(provider, _assertion(provider, stranger)), 401, "invalid_client")
    _error(_signed(provider, "not.a.jwt"), 401, "invalid_client")
    wrong_type = _token(provider, data={"grant_type": "client_credentials",
                                        "client_assertion_type": "urn:other",
                                        "client_assertion": assertion})
    _error(wrong_type, 400, "invalid_request")


def test_wrong_pkce_verifier_is_invalid_grant(provider: Provider) -> None:
    with provider.browser() as browser:
        code, _ = sign_in(provider, browser)
    _error(redeem(provider, code, "x" * 43), 400, "invalid_grant")


def test_replayed_code_fails_and_revokes_the_first_token(provider: Provider) -> None:
    with provider.browser() as browser:
        code, verifier = sign_in(provider, browser)
    first = redeem(provider, code, verifier)
    assert first.status_code == 200
    token = first.json()["access_token"]
    _error(redeem(provider, code, verifier), 400, "invalid_grant")
    read = httpx.get(f"{provider.server.fhir}/Patient",
                     headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 401
    refreshed = _token(provider, data={"grant_type": "refresh_token", "client_id": APP,
                                       "refresh_token": first.json()["refresh_token"]})
    _error(refreshed, 400, "invalid_grant")


def test_code_missing_parameters_and_other_client(provider: Provider) -> None:
    with provider.browser() as browser:
        code, verifier = sign_in(provider, browser)
    _error(_token(provider, data={"grant_type": "authorization_code", "client_id": APP,
                                  "code": code, "code_verifier": verifier}),
           400, "invalid_request")  # no redirect_uri
    other = _token(provider, data={"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": "https://app.example.org/callback",
                                   "code_verifier": verifier},
                   auth=("backend", provider.backend_secret))
    _error(other, 400, "unauthorized_client")  # backend has no authorization_code grant


def test_refresh_rotates_and_reuse_revokes_the_family(provider: Provider) -> None:
    with provider.browser() as browser:
        code, verifier = sign_in(provider, browser)
    first = redeem(provider, code, verifier).json()
    second = _token(provider, data={"grant_type": "refresh_token", "client_id": APP,
                                    "refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    narrower = _token(provider, data={"grant_type": "refresh_token", "client_id": APP,
                                      "refresh_token": rotated["refresh_token"],
                                      "scope": "openid offline_access user/*.rs"})
    assert narrower.status_code == 200, narrower.text
    assert set(narrower.json()["scope"].split()) == {"openid", "offline_access", "user/*.rs"}
    # the first refresh token was rotated away: using it again is theft
    _error(_token(provider, data={"grant_type": "refresh_token", "client_id": APP,
                                  "refresh_token": first["refresh_token"]}),
           400, "invalid_grant")
    _error(_token(provider, data={"grant_type": "refresh_token", "client_id": APP,
                                  "refresh_token": narrower.json()["refresh_token"]}),
           400, "invalid_grant")


def test_revocation_makes_the_token_fail(provider: Provider) -> None:
    with provider.browser() as browser:
        code, verifier = sign_in(provider, browser)
    tokens = redeem(provider, code, verifier).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.get(f"{provider.base}/auth/userinfo", headers=headers).status_code == 200
    revoked = httpx.post(f"{provider.base}/auth/revoke",
                         data={"token": tokens["access_token"], "client_id": APP})
    assert revoked.status_code == 200
    after = httpx.get(f"{provider.server.fhir}/Patient", headers=headers)
    assert after.status_code == 401
    assert 'error="invalid_token"' in after.headers["www-authenticate"]
    info = httpx.get(f"{provider.base}/auth/userinfo", headers=headers)
    assert info.status_code == 401
    # unknown tokens are fine (RFC 7009 §2.2); a refresh token revokes too
    assert httpx.post(f"{provider.base}/auth/revoke",
                      data={"token": "no-such-token", "client_id": APP}).status_code == 200
    assert httpx.post(f"{provider.base}/auth/revoke",
                      data={"token": tokens["refresh_token"],
                            "client_id": APP}).status_code == 200
    _error(_token(provider, data={"grant_type": "refresh_token", "client_id": APP,
                                  "refresh_token": tokens["refresh_token"]}),
           400, "invalid_grant")
    # revocation needs an authenticated client
    _error(httpx.post(f"{provider.base}/auth/revoke",
                      data={"token": "x", "client_id": "backend", "client_secret": "bad"}),
           401, "invalid_client")
    _error(httpx.post(f"{provider.base}/auth/revoke", data={"client_id": APP}),
           400, "invalid_request")


def test_userinfo_needs_a_valid_token_with_openid(provider: Provider) -> None:
    missing = httpx.get(f"{provider.base}/auth/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="vesalius"'
    bad = httpx.post(f"{provider.base}/auth/userinfo",
                     headers={"Authorization": "Bearer garbage"})
    assert bad.status_code == 401
    backend = _token(provider, data={"grant_type": "client_credentials"},
                     auth=("backend", provider.backend_secret)).json()["access_token"]
    no_openid = httpx.get(f"{provider.base}/auth/userinfo",
                          headers={"Authorization": f"Bearer {backend}"})
    assert no_openid.status_code == 403
    assert 'error="insufficient_scope"' in no_openid.headers["www-authenticate"]


def test_discovery_documents(provider: Provider) -> None:
    issuer = provider.node.settings.issuer
    oidc = httpx.get(f"{provider.base}/.well-known/openid-configuration")
    assert oidc.status_code == 200
    document = oidc.json()
    for field in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
                  "response_types_supported", "subject_types_supported",
                  "id_token_signing_alg_values_supported"):
        assert field in document, field
    assert document["issuer"] == issuer
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        smart = httpx.get(f"{provider.base}{path}")
        assert smart.status_code == 200, path
        body = smart.json()
        assert body["code_challenge_methods_supported"] == ["S256"]
        assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
        for field in ("authorization_endpoint", "token_endpoint", "capabilities",
                      "grant_types_supported", "scopes_supported"):
            assert field in body, field
    keys = httpx.get(f"{provider.base}/auth/jwks")
    assert keys.status_code == 200
    assert keys.json()["keys"] and all("d" not in k for k in keys.json()["keys"])
