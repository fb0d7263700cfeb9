"""Access token verification refuses every token it did not issue as it issued it (RFC 8725)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey

from vesalius.security.authn import Client, Unauthenticated
from vesalius.security.authn.keys import load_signing_key
from vesalius.security.authn.tokens import sign


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()),
                     b64(signature)])


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.fixture
def token(env: Any, alice: str) -> str:
    return str(env.auth.issue_token("alice", 600, ["user/*.rs"]))


def _refused(env: Any, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        env.auth.verify_access_token(token)
    assert caught.value.error == "invalid_token"
    return str(caught.value.reason)


def test_a_valid_token_gives_the_principal(env: Any, token: str) -> None:
    principal = env.auth.verify_access_token(token, address="10.0.0.9")
    assert (principal.kind, principal.id, principal.issuer) == ("user", "alice", "local")
    assert principal.roles == {"clinician"}
    assert principal.scopes == {"user/*.rs"}
    assert (principal.practitioner, principal.organization) == ("pract-1", "org-1")
    assert principal.session == claims_of(token)["jti"]
    assert principal.address == "10.0.0.9"
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt"
    claims = claims_of(token)
    assert claims["aud"] == "https://ehr.example.org"
    assert claims["iss"] == "https://ehr.example.org/auth"
    assert claims["exp"] - claims["iat"] == 600


def test_expired_token(env: Any, token: str) -> None:
    env.clock.advance(601)
    assert "expired" in _refused(env, token)


def _resigned(env: Any, token: str, **changes: Any) -> str:
    key = load_signing_key(env.settings.keys_dir, create=False)
    claims = {**claims_of(token), **changes}
    return sign(key, {k: v for k, v in claims.items() if v is not None}, typ="at+jwt")


def test_not_yet_valid_token(env: Any, token: str) -> None:
    now = int(env.clock().timestamp())
    assert "not valid yet" in _refused(env, _resigned(env, token, nbf=now + 120))
    assert "not valid yet" in _refused(env, _resigned(env, token, iat=now + 120))


def test_wrong_issuer_and_audience(env: Any, token: str) -> None:
    assert "issuer" in _refused(env, _resigned(env, token, iss="https://evil.example"))
    assert "not meant" in _refused(env, _resigned(env, token, aud="https://other.example"))
    assert "not meant" in _refused(env, _resigned(env, token, aud=None))


def test_missing_expiry_or_jti(env: Any, token: str) -> None:
    assert "expiry" in _refused(env, _resigned(env, token, exp=None))
    _refused(env, _resigned(env, token, jti=None))
    _refused(env, _resigned(env, token, kind="admin"))
    _refused(env, _resigned(env, token, exp="tomorrow"))


def test_forged_signature(env: Any, token: str) -> None:
    header, _, signature = token.split(".")
    tampered = {**claims_of(token), "sub": "root", "roles": ["administrator"]}
    _refused(env, f"{header}.{b64(json.dumps(tampered).encode())}.{signature}")
    # Signed by another key that claims our kid.
    other = ECKey.generate_key("P-256", {"kid": load_signing_key(
        env.settings.keys_dir, create=False).kid})
    _refused(env, sign(other, claims_of(token), typ="at+jwt"))


def test_alg_none(env: Any, token: str) -> None:
    for alg in ("none", "None", "NONE"):
        _refused(env, compact({"alg": alg, "typ": "JWT"}, claims_of(token)))


def test_hs256_keyed_with_our_public_key(env: Any, token: str) -> None:
    """The classic key-confusion attack: an HMAC over the token with the public key bytes
    (as PEM and as the JWK) as the shared secret."""
    key = load_signing_key(env.settings.keys_dir, create=False)
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for secret in (public_pem, json.dumps(key.as_dict(private=False)).encode()):
        for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
            header = {"alg": alg, "typ": "JWT", "kid": key.kid}
            signing_input = ".".join(compact(header, claims_of(token)).split(".")[:2])
            mac = hmac.new(secret, signing_input.encode(), digest).digest()
            assert "algorithm" in _refused(env, f"{signing_input}.{b64(mac)}")


def test_unexpected_asymmetric_algorithm(env: Any, token: str) -> None:
    header = {"alg": "RS256", "typ": "JWT"}
    _refused(env, compact(header, claims_of(token), b"\x00" * 256))


def test_revoked_token(env: Any, token: str) -> None:
    env.auth.revoke(token)
    assert "revoked" in _refused(env, token)


def test_disabled_and_deleted_user(env: Any, token: str) -> None:
    env.auth.disable_user("alice")
    _refused(env, token)
    env.auth.enable_user("alice")
    assert env.auth.verify_access_token(token).id == "alice"


def test_roles_follow_the_account_not_the_token(env: Any, token: str) -> None:
    forged_roles = _resigned(env, token, roles=["administrator"])
    assert env.auth.verify_access_token(forged_roles).roles == {"clinician"}


@pytest.mark.parametrize("garbage", [
    "", ".", "..", "...", "a.b.c", "a.b", "not a token", "Bearer x.y.z", "\x00\x01.\x02.\x03",
    "eyJhbGciOiJFUzI1NiJ9", "eyJhbGciOiJFUzI1NiJ9.", "eyJhbGciOiJFUzI1NiJ9.e30.",
    "e30.e30.e30", "W10.W10.W10", "bnVsbA.bnVsbA.bnVsbA", "éé.éé.éé", "x" * 20000,
    "a." * 5000, "eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjF9.!!!",
])
def test_garbage_tokens(env: Any, garbage: str) -> None:
    _refused(env, garbage)


def test_truncated_and_oversized_tokens(env: Any, token: str) -> None:
    for cut in (1, 10, len(token) // 2, len(token) - 1):
        _refused(env, token[:cut])
    _refused(env, token + "A")
    header, payload, signature = token.split(".")
    _refused(env, f"{header}.{payload}{'A' * 20000}.{signature}")
    _refused(env, f"{header}.{payload}.")


def test_non_string_token(env: Any) -> None:
    for value in (None, 42, b"x.y.z", ["a", "b"]):
        _refused(env, value)


def test_client_credentials_token(env: Any) -> None:
    secret = env.auth.add_client("svc", scopes=["system/*.rs"], roles=["radiologist"])
    client: Client = env.auth.authenticate_client("svc", secret=secret,
                                                  token_endpoint="https://x/token")
    token = env.auth.client_credentials(client, "system/Observation.rs").access_token
    principal = env.auth.verify_access_token(token)
    assert (principal.kind, principal.id, principal.roles) == ("client", "svc",
                                                               {"radiologist"})
    assert principal.scopes == {"system/Observation.rs"}


def test_jwks_publishes_only_the_public_key(env: Any, token: str) -> None:
    jwks = env.auth.jwks()
    [key] = jwks["keys"]
    assert "d" not in key and key["alg"] == "ES256" and key["use"] == "sig"
    assert key["kid"] == json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]
    mode = (env.settings.keys_dir / "auth-signing.pem").stat().st_mode & 0o777
    assert mode == 0o600
