"""Authorization code + PKCE, refresh rotation, client credentials and revocation."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc import jwt

from vesalius.security.authn import Client, Unauthenticated
from vesalius.security.authn.keys import load_signing_key

REDIRECT = "http://127.0.0.1:8080/callback"


def _error(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(Unauthenticated) as caught:
        call(*args, **kwargs)
    return str(caught.value.error)


def test_code_flow_issues_access_refresh_and_id_token(env: Any, alice: str, app: Client) -> None:
    response = env.code_flow(app, scopes="openid fhirUser profile offline_access "
                             "user/Observation.rs", nonce="n-0S6_WzA2Mj")
    body = response.as_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert set(body["scope"].split()) == {"openid", "fhirUser", "profile", "offline_access",
                                          "user/Observation.rs"}
    assert response.refresh_token and response.id_token and "patient" not in body
    key = load_signing_key(env.settings.keys_dir, create=False)
    id_token = jwt.decode(response.id_token, key, algorithms=["ES256"]).claims
    assert id_token["aud"] == "app" and id_token["sub"] == "alice"
    assert id_token["nonce"] == "n-0S6_WzA2Mj"
    assert id_token["fhirUser"] == "https://ehr.example.org/fhir/Practitioner/pract-1"
    assert id_token["name"] == "Alice Doe"
    assert env.auth.verify_access_token(response.access_token).scopes == set(
        body["scope"].split())
    assert "access_token" not in repr(response) and response.access_token not in repr(response)


def test_no_refresh_token_without_offline_access(env: Any, alice: str, app: Client) -> None:
    response = env.code_flow(app, scopes="user/Observation.rs")
    assert response.refresh_token is None and response.id_token is None


def test_launch_patient_context(env: Any, alice: str, app: Client) -> None:
    response = env.code_flow(app, scopes="launch/patient patient/Observation.rs",
                             launch_patient="pat-7")
    assert response.patient == "pat-7"
    assert env.auth.verify_access_token(response.access_token).patient == "pat-7"


def test_patient_user_is_always_their_own_patient(env: Any, app: Client) -> None:
    env.auth.add_user("pat", ["patient"], password="Patient-pass-1", patient="pat-1")
    response = env.code_flow(app, username="pat", scopes="launch/patient patient/*.rs",
                             launch_patient="someone-else")
    assert response.patient == "pat-1"
    assert env.auth.verify_access_token(response.access_token).patient == "pat-1"


def test_scopes_are_intersected_and_unknown_ones_refused(env: Any, alice: str,
                                                         app: Client) -> None:
    response = env.code_flow(app, scopes="user/Observation.rs system/*.rs patient/*.cruds")
    assert response.scope == "user/Observation.rs"
    assert _error(env.code, app, scopes="user/Observation.rs superuser") == "invalid_scope"
    assert _error(env.code, app, scopes="user/Observation.sr") == "invalid_scope"


def test_pkce_is_required_and_s256_only(env: Any, alice: str, app: Client) -> None:
    principal = env.auth.user_principal("alice")
    verifier, challenge = env.pkce()
    for method, value in (("plain", verifier[:43]), ("S256", "short"), ("", challenge),
                          ("S256", challenge + "x"), ("S256", challenge[:-1] + "+")):
        assert _error(env.auth.issue_code, principal, app, redirect_uri=REDIRECT,
                      scopes="openid", code_challenge=value,
                      code_challenge_method=method) == "invalid_request"


def test_pkce_mismatch(env: Any, alice: str, app: Client) -> None:
    code, verifier = env.code(app)
    other, _ = env.pkce()
    assert _error(env.auth.redeem_code, code, app, redirect_uri=REDIRECT,
                  code_verifier=other) == "invalid_grant"
    # The code is spent even by a failed attempt: no guessing verifiers.
    assert _error(env.auth.redeem_code, code, app, redirect_uri=REDIRECT,
                  code_verifier=verifier) == "invalid_grant"


@pytest.mark.parametrize("verifier", ["", "a" * 42, "a" * 129, "é" * 50, "a b" * 20, None])
def test_malformed_verifiers(env: Any, alice: str, app: Client, verifier: Any) -> None:
    code, _ = env.code(app)
    assert _error(env.auth.redeem_code, code, app, redirect_uri=REDIRECT,
                  code_verifier=verifier) == "invalid_grant"


def test_code_replay_revokes_what_it_issued(env: Any, alice: str, app: Client) -> None:
    code, verifier = env.code(app)
    first = env.auth.redeem_code(code, app, redirect_uri=REDIRECT, code_verifier=verifier)
    env.auth.verify_access_token(first.access_token)
    assert _error(env.auth.redeem_code, code, app, redirect_uri=REDIRECT,
                  code_verifier=verifier) == "invalid_grant"
    assert _error(env.auth.verify_access_token, first.access_token) == "invalid_token"
    assert _error(env.auth.refresh, first.refresh_token, app) == "invalid_grant"
    alerts = [r for r in env.audit() if r.type == "110113"]
    assert alerts and "replayed" in alerts[-1].outcome_desc and alerts[-1].who == "client:app"


def test_code_expires_after_60_seconds(env: Any, alice: str, app: Client) -> None:
    code, verifier = env.code(app)
    env.clock.advance(61)
    assert _error(env.auth.redeem_code, code, app, redirect_uri=REDIRECT,
                  code_verifier=verifier) == "invalid_grant"


def test_code_is_bound_to_client_and_redirect_uri(env: Any, alice: str, app: Client) -> None:
    env.auth.add_client("other", public=True, redirect_uris=[REDIRECT], scopes=["openid"])
    other = env.auth.client("other")
    code, verifier = env.code(app)
    assert _error(env.auth.redeem_code, code, other, redirect_uri=REDIRECT,
                  code_verifier=verifier) == "invalid_grant"
    code, verifier = env.code(app)
    assert _error(env.auth.redeem_code, code, app, redirect_uri=REDIRECT + "/x",
                  code_verifier=verifier) == "invalid_grant"


def test_unregistered_redirect_uri_and_non_user_principals(env: Any, alice: str,
                                                           app: Client) -> None:
    _, challenge = env.pkce()
    principal = env.auth.user_principal("alice")
    assert _error(env.auth.issue_code, principal, app, redirect_uri="https://evil.example/cb",
                  scopes="openid", code_challenge=challenge,
                  code_challenge_method="S256") == "invalid_request"
    external = principal.__class__(kind="user", id="x", issuer="https://idp.example")
    assert _error(env.auth.issue_code, external, app, redirect_uri=REDIRECT, scopes="openid",
                  code_challenge=challenge, code_challenge_method="S256") == "access_denied"


@pytest.mark.parametrize("code", ["", "x", "A" * 300, None, "..", "\x00"])
def test_garbage_codes(env: Any, app: Client, code: Any) -> None:
    verifier, _ = env.pkce()
    assert _error(env.auth.redeem_code, code, app, redirect_uri=REDIRECT,
                  code_verifier=verifier) == "invalid_grant"


def test_disabled_user_cannot_redeem(env: Any, alice: str, app: Client) -> None:
    code, verifier = env.code(app)
    env.auth.disable_user("alice")
    assert _error(env.auth.redeem_code, code, app, redirect_uri=REDIRECT,
                  code_verifier=verifier) == "invalid_grant"


def test_refresh_rotates_and_reuse_revokes_the_family(env: Any, alice: str,
                                                      app: Client) -> None:
    first = env.code_flow(app)
    second = env.auth.refresh(first.refresh_token, app)
    assert second.refresh_token not in (None, first.refresh_token)
    third = env.auth.refresh(second.refresh_token, app)
    env.auth.verify_access_token(third.access_token)
    # An attacker replays the first (rotated) token: everything of the family dies.
    assert _error(env.auth.refresh, first.refresh_token, app) == "invalid_grant"
    for response in (first, second, third):
        assert _error(env.auth.verify_access_token, response.access_token) == "invalid_token"
    assert _error(env.auth.refresh, third.refresh_token, app) == "invalid_grant"


def test_refresh_can_narrow_but_not_widen(env: Any, alice: str, app: Client) -> None:
    first = env.code_flow(app)
    narrowed = env.auth.refresh(first.refresh_token, app, "offline_access")
    assert narrowed.scope == "offline_access"
    assert _error(env.auth.refresh, narrowed.refresh_token, app,
                  "offline_access user/*.cruds") == "invalid_scope"


def test_refresh_expires_and_is_bound_to_its_client(env: Any, alice: str, app: Client) -> None:
    env.auth.add_client("other", public=True, redirect_uris=[REDIRECT], scopes=["openid"])
    first = env.code_flow(app)
    assert _error(env.auth.refresh, first.refresh_token, env.auth.client("other")) \
        == "invalid_grant"
    env.auth.refresh(first.refresh_token, app)  # the foreign attempt did not spend it
    later = env.code_flow(app)
    env.clock.advance(env.settings.refresh_token_ttl + 1)
    assert _error(env.auth.refresh, later.refresh_token, app) == "invalid_grant"


def test_revocation(env: Any, alice: str, app: Client) -> None:
    response = env.code_flow(app)
    env.auth.revoke(response.refresh_token, app)
    assert _error(env.auth.refresh, response.refresh_token, app) == "invalid_grant"
    assert _error(env.auth.verify_access_token, response.access_token) == "invalid_token"
    # Unknown, malformed and foreign tokens are fine (RFC 7009 §2.2).
    for token in ("", "nonsense", "a.b.c", "x" * 100000, None):
        env.auth.revoke(token, app)
    env.auth.add_client("other", public=True, redirect_uris=[REDIRECT], scopes=["openid"])
    mine = env.code_flow(app)
    env.auth.revoke(mine.access_token, env.auth.client("other"))
    env.auth.verify_access_token(mine.access_token)


def test_client_credentials(env: Any) -> None:
    secret = env.auth.add_client("svc", scopes=["system/*.rs", "openid", "user/*.rs"],
                                 roles=["clinician"])
    assert secret and len(secret) >= 43
    client = env.auth.client("svc")
    response = env.auth.client_credentials(client, [])
    assert response.scope == "system/*.rs" and response.refresh_token is None
    assert env.auth.client_credentials(client, "system/Patient.r").scope == "system/Patient.r"
    assert env.auth.client_credentials(client, "user/*.rs").scope == ""
    assert _error(env.auth.client_credentials, client, "system/*.cruds x") == "invalid_scope"


def test_public_clients_get_no_client_credentials(env: Any, app: Client) -> None:
    assert _error(env.auth.client_credentials, app, []) == "unauthorized_client"


def test_cli_tokens_have_the_asked_lifetime(env: Any, alice: str) -> None:
    token = env.auth.issue_token("alice", 30, ["user/*.rs"])
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["exp"] - claims["iat"] == 30
    env.clock.advance(31)
    assert _error(env.auth.verify_access_token, token) == "invalid_token"
    assert _error(env.auth.issue_token, "alice", 30, ["bogus"]) == "invalid_scope"
    assert _error(env.auth.issue_token, "nobody", 30) == "access_denied"


def test_discovery_documents(env: Any) -> None:
    openid = env.auth.discovery()
    assert openid["issuer"] == "https://ehr.example.org/auth"
    assert openid["token_endpoint"] == "https://ehr.example.org/auth/token"
    assert openid["jwks_uri"] == "https://ehr.example.org/auth/jwks"
    assert openid["code_challenge_methods_supported"] == ["S256"]
    smart = env.auth.smart_configuration()
    assert "private_key_jwt" in smart["token_endpoint_auth_methods_supported"]
    assert {"launch-standalone", "client-public", "client-confidential-asymmetric",
            "permission-v2"} <= set(smart["capabilities"])
    assert "none" not in smart["token_endpoint_auth_signing_alg_values_supported"]


def test_userinfo(env: Any, alice: str) -> None:
    info = env.auth.userinfo(env.auth.user_principal("alice"))
    assert info == {"sub": "alice", "preferred_username": "alice", "name": "Alice Doe",
                    "fhirUser": "https://ehr.example.org/fhir/Practitioner/pract-1"}
