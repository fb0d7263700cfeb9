"""Bearer authentication on protected routes: every bad token is a 401 and an audit record."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from conftest import RunningServer
from vesalius.node import build_node
from vesalius.security.authn.keys import load_signing_key

from .conftest import Provider


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hs256(header: dict[str, object], claims: dict[str, object], secret: bytes) -> str:
    """The algorithm-confusion attack, signed by hand (joserfc refuses to do it)."""
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _client_token(provider: Provider) -> str:
    response = httpx.post(f"{provider.base}/auth/token",
                          data={"grant_type": "client_credentials"},
                          auth=("backend", provider.backend_secret))
    return str(response.json()["access_token"])


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _attacks(provider: Provider) -> dict[str, str]:
    """Tokens that must all be refused, by name."""
    good = _client_token(provider)
    claims = _claims(good)
    key = load_signing_key(provider.node.settings.keys_dir, create=False)
    header = {"alg": "ES256", "kid": key.kid}
    now = int(time.time())
    stranger = ECKey.generate_key("P-256")
    public_pem = key.as_pem(private=False)
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "forged signature": jwt.encode({"alg": "ES256", "kid": key.kid}, claims, stranger),
        "hs256 with the public key": _hs256({"alg": "HS256", "kid": key.kid}, claims,
                                            public_pem),
        "expired": jwt.encode(header, {**claims, "iat": now - 7200, "nbf": now - 7200,
                                       "exp": now - 3600}, key),
        "not yet valid": jwt.encode(header, {**claims, "nbf": now + 3600,
                                             "exp": now + 7200}, key),
        "wrong audience": jwt.encode(header, {**claims, "aud": "https://other.example"}, key),
        "wrong issuer": jwt.encode(header, {**claims, "iss": "https://other.example"}, key),
        "payload swapped": ".".join([good.split(".")[0],
                                     _b64({**claims, "scope": "system/*.cruds"}),
                                     good.split(".")[2]]),
        "truncated": good[:-10],
        "garbage": "garbage",
        "oversized": "a" * 20000,
        "not base64": "abc$%^.def.ghi",
    }


@pytest.mark.parametrize(("path", "how", "fhir"), [
    ("/fhir/Patient", "fhir", True),
    ("/dicom-web/studies", "dicomweb", False),
    ("/api/patients/x/chart", "web", False),
])
def test_refused_tokens_answer_401_and_are_audited(provider: Provider, path: str, how: str,
                                                   fhir: bool) -> None:
    attacks = _attacks(provider)
    before = len(provider.audit())
    for name, token in attacks.items():
        response = httpx.get(f"{provider.base}{path}",
                             headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (name, response.text)
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="vesalius"'), name
        assert 'error="invalid_token"' in challenge, name
        if fhir:
            assert response.json()["resourceType"] == "OperationOutcome", name
        else:
            assert response.json()["error"] == "invalid_token", name
    records = provider.audit()[before:]
    refused = [r for r in records if r["type"] == "110114" and r["outcome"] == 4
               and r["how"] == how]
    assert len(refused) == len(attacks)
    stored = json.dumps(records)
    for name, token in attacks.items():
        if len(token) > 20:
            assert token not in stored, name
            assert token.split(".")[-1] not in stored or not token.split(".")[-1], name


def test_missing_or_other_scheme_credentials(provider: Provider) -> None:
    bare = httpx.get(f"{provider.server.fhir}/Patient")
    assert bare.status_code == 401
    assert bare.headers["www-authenticate"] == 'Bearer realm="vesalius"'
    assert bare.json()["issue"][0]["code"] == "login"
    basic = httpx.get(f"{provider.base}/dicom-web/studies",
                      headers={"Authorization": "Basic YWxpY2U6eA=="})
    assert basic.status_code == 401
    assert 'error="invalid_token"' in basic.headers["www-authenticate"]
    query = httpx.get(f"{provider.server.fhir}/Patient",
                      params={"access_token": _client_token(provider)})
    assert query.status_code == 401  # RFC 6750 §2.3 tokens in URLs are not accepted


def test_valid_token_passes_and_public_paths_need_none(provider: Provider) -> None:
    token = _client_token(provider)
    ok = httpx.get(f"{provider.server.fhir}/Patient",
                   headers={"Authorization": f"bearer {token}"})
    assert ok.status_code == 200, ok.text
    for path in ("/healthz", "/fhir/metadata", "/.well-known/smart-configuration",
                 "/auth/jwks"):
        assert httpx.get(f"{provider.base}{path}").status_code == 200, path
    assert httpx.delete(f"{provider.server.fhir}/metadata").status_code == 401


def test_rate_limit_answers_429_and_raises_one_security_alert(settings: object) -> None:
    from vesalius.config import Settings

    assert isinstance(settings, Settings)
    node = build_node(replace(settings, auth_rate_limit_per_minute=3))
    with RunningServer(node) as server:
        url = f"{server.base}/auth/token"
        answers = [httpx.post(url, data={"grant_type": "client_credentials",
                                         "client_id": "x", "client_secret": "y"})
                   for _ in range(6)]
        assert [a.status_code for a in answers[:3]] == [401, 401, 401]
        for answer in answers[3:]:
            assert answer.status_code == 429
            assert answer.json()["error"] == "temporarily_unavailable"
            assert 0 < int(answer.headers["retry-after"]) <= 60
        logins = [httpx.post(f"{server.base}/auth/login", data={"csrf": "x"})
                  for _ in range(4)]
        assert logins[-1].status_code == 429
        assert "retry-after" in logins[-1].headers
        node.auditor.flush()
        alerts = [e.columns for e in node.auditor.store.entries()
                  if e.columns["type"] == "110113"]
    assert sorted(str(a["what"]) for a in alerts) == ["/auth/login", "/auth/token"]
    assert all(a["who"] == "user:anonymous" and a["address"] == "127.0.0.1" for a in alerts)
