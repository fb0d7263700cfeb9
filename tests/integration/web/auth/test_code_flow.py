"""The authorization code flow with PKCE, as a browser and a SMART app run it."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pyotp

from .conftest import (
    ADMIN_TOTP,
    PASSWORD,
    REDIRECT,
    Provider,
    authorize_url,
    hidden_fields,
    pkce,
    query_of,
    redeem,
    sign_in,
    start,
)


def test_browser_signs_in_and_the_app_reads_fhir_with_its_token(provider: Provider) -> None:
    with provider.browser() as browser:
        code, verifier = sign_in(provider, browser)
        session_cookie = browser.cookies.get("vesalius_session")
    assert session_cookie
    response = redeem(provider, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"] and tokens["id_token"]
    assert set(tokens["scope"].split()) == {"openid", "fhirUser", "offline_access",
                                            "user/*.rs"}
    read = httpx.get(f"{provider.server.fhir}/Patient",
                     headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert read.status_code == 200, read.text
    assert read.json()["resourceType"] == "Bundle"
    info = httpx.get(f"{provider.base}/auth/userinfo",
                     headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    assert info.json()["sub"] == "alice"
    records = provider.audit()
    assert any(r["type"] == "110114" and r["subtype"] == "110122" and r["outcome"] == 0
               and r["who"] == "user:alice" for r in records)


def test_session_cookie_flags(provider: Provider) -> None:
    _, challenge = pkce()
    with provider.browser() as browser:
        fields = start(provider, browser, challenge)
        response = browser.post("/auth/login", data={**fields, "username": "alice",
                                                     "password": PASSWORD})
    assert response.status_code == 302
    cookie = next(v for v in response.headers.get_list("set-cookie")
                  if v.startswith("vesalius_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "secure" not in flags  # plain HTTP here; __Host- and Secure are for HTTPS


def test_signed_in_browser_gets_a_code_without_the_form(provider: Provider) -> None:
    with provider.browser() as browser:
        sign_in(provider, browser)
        verifier, challenge = pkce()
        response = browser.get(authorize_url(provider, challenge))
        assert response.status_code == 302
        answer = query_of(response.headers["location"])
        assert answer["state"] == "st-123" and answer["code"]
        assert redeem(provider, answer["code"], verifier).status_code == 200
        # prompt=login asks for the password again even so
        again = browser.get(authorize_url(provider, challenge, prompt="login"))
        assert again.status_code == 200 and 'name="password"' in again.text


def test_prompt_none_without_a_session_answers_login_required(provider: Provider) -> None:
    _, challenge = pkce()
    with provider.browser() as browser:
        response = browser.get(authorize_url(provider, challenge, prompt="none"))
    assert response.status_code == 302
    answer = query_of(response.headers["location"])
    assert answer == {"error": "login_required", "state": "st-123",
                      "error_description": answer["error_description"],
                      "iss": provider.node.settings.issuer}


def test_patient_user_gets_their_own_patient_as_launch_context(provider: Provider) -> None:
    with provider.browser() as browser:
        code, verifier = sign_in(provider, browser, "pat",
                                 scope="openid launch/patient patient/*.rs")
    tokens = redeem(provider, code, verifier).json()
    assert tokens["patient"] == "example"


def test_administrator_signs_in_with_totp(provider: Provider) -> None:
    verifier, challenge = pkce()
    with provider.browser() as browser:
        fields = start(provider, browser, challenge)
        first = browser.post("/auth/login", data={**fields, "username": "root",
                                                  "password": PASSWORD})
        assert first.status_code == 200
        assert 'autocomplete="one-time-code"' in first.text
        step = hidden_fields(first.text)
        assert PASSWORD not in first.text  # the ticket is sealed
        wrong = browser.post("/auth/login", data={**step, "totp": "000000"})
        assert wrong.status_code == 403 and 'role="alert"' in wrong.text
        step = hidden_fields(wrong.text)
        done = browser.post("/auth/login",
                            data={**step, "totp": pyotp.TOTP(ADMIN_TOTP).now()})
        assert done.status_code == 302, done.text
        answer = query_of(done.headers["location"])
    assert redeem(provider, answer["code"], verifier).status_code == 200


def test_administrator_without_totp_enrolls_then_signs_in(provider: Provider) -> None:
    verifier, challenge = pkce()
    with provider.browser() as browser:
        fields = start(provider, browser, challenge)
        shown = browser.post("/auth/login", data={**fields, "username": "newadmin",
                                                  "password": PASSWORD})
        assert shown.status_code == 200
        assert "otpauth://totp/" in shown.text
        secret = shown.text.split("Secret key: <code>", 1)[1].split("</code>", 1)[0]
        step = hidden_fields(shown.text)
        empty = browser.post("/auth/login", data={**step, "code": ""})
        assert empty.status_code == 400 and secret in empty.text
        done = browser.post("/auth/login", data={**hidden_fields(empty.text),
                                                 "code": pyotp.TOTP(secret).now()})
        assert done.status_code == 302, done.text
        answer = query_of(done.headers["location"])
    assert redeem(provider, answer["code"], verifier).status_code == 200


def test_sign_in_without_an_app_then_sign_out(provider: Provider) -> None:
    with provider.browser() as browser:
        form = browser.get("/auth/login")
        assert form.status_code == 200
        fields = hidden_fields(form.text)
        assert set(fields) == {"csrf"}
        signed = browser.post("/auth/login", data={**fields, "username": "alice",
                                                   "password": PASSWORD})
        assert signed.status_code == 200 and "signed in as Alice Example" in signed.text
        logout_csrf = hidden_fields(signed.text)["csrf"]
        forged = browser.post("/auth/logout", data={"csrf": "not-the-token"})
        assert forged.status_code == 403
        assert browser.get("/auth/login").text.count("Sign out") == 1  # still signed in
        out = browser.post("/auth/logout", data={"csrf": logout_csrf})
        assert out.status_code == 200 and "signed out" in out.text
        assert any(v.startswith('vesalius_session=""') or "Max-Age=0" in v
                   for v in out.headers.get_list("set-cookie"))
        # The server closed the session: the old cookie value is worthless
        _, challenge = pkce()
        again = browser.get(authorize_url(provider, challenge))
        assert again.status_code == 200 and 'name="password"' in again.text
    assert any(r["subtype"] == "110123" and r["who"] == "user:alice"
               for r in provider.audit())


def test_redirect_uri_with_a_query_keeps_it(provider: Provider) -> None:
    provider.node.auth.add_client("q-app", public=True,
                                  redirect_uris=["https://q.example.org/cb?tenant=7"],
                                  scopes=["openid"])
    _, challenge = pkce()
    params = {"response_type": "code", "client_id": "q-app",
              "redirect_uri": "https://q.example.org/cb?tenant=7", "scope": "openid",
              "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}
    with provider.browser() as browser:
        form = browser.get(f"/auth/authorize?{urlencode(params)}")
        response = browser.post("/auth/login", data={**hidden_fields(form.text),
                                                     "username": "alice",
                                                     "password": PASSWORD})
    location = response.headers["location"]
    assert location.startswith("https://q.example.org/cb?tenant=7&code=")
    assert REDIRECT not in location
