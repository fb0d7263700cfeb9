"""Malformed, truncated, oversized and hostile input to the sign-in pages and the token
endpoint: always a 4xx answer, never a redirect to a stranger, never a 500."""

from __future__ import annotations

import socket
from urllib.parse import urlencode

import httpx
import pytest

from .conftest import (
    APP,
    PASSWORD,
    REDIRECT,
    Provider,
    authorize_params,
    hidden_fields,
    pkce,
    query_of,
    start,
)


def _no_redirect(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in response.text


@pytest.mark.parametrize("change", [
    {"client_id": ""},
    {"client_id": "no-such-app"},
    {"client_id": "x" * 5000},
    {"redirect_uri": "https://evil.example/callback"},
    {"redirect_uri": REDIRECT + "/../evil"},
    {"redirect_uri": REDIRECT + "?x=1"},
    {"redirect_uri": REDIRECT.upper()},
])
def test_unknown_client_or_unregistered_redirect_uri_gets_a_page_not_a_redirect(
        provider: Provider, change: dict[str, str]) -> None:
    _, challenge = pkce()
    params = {**authorize_params(provider, challenge), **change}
    response = httpx.get(f"{provider.base}/auth/authorize?{urlencode(params)}")
    _no_redirect(response)


@pytest.mark.parametrize("query", [
    "client_id=smart-app&client_id=smart-app",  # repeated parameter
    "client_id=%ff%fe",                          # not UTF-8
    "client_id=smart-app%00",                    # NUL
    "",
])
def test_malformed_authorization_requests(provider: Provider, query: str) -> None:
    _no_redirect(httpx.get(f"{provider.base}/auth/authorize?{query}"))


@pytest.mark.parametrize(("change", "error"), [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": ""}, "invalid_request"),
    ({"code_challenge": ""}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),
    ({"scope": "user/*.xyz"}, "invalid_scope"),
    ({"scope": ""}, "invalid_scope"),
    ({"aud": "https://other.example/fhir"}, "invalid_request"),
    ({"aud": ""}, "invalid_request"),
    ({"state": "s" * 5000}, "invalid_request"),
    ({"request": "eyJ.eyJ.sig"}, "request_not_supported"),
])
def test_errors_after_the_redirect_uri_is_known_go_back_to_the_app(
        provider: Provider, change: dict[str, str], error: str) -> None:
    _, challenge = pkce()
    params = {**authorize_params(provider, challenge), **change}
    response = httpx.get(f"{provider.base}/auth/authorize?{urlencode(params)}")
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    answer = query_of(location)
    assert answer["error"] == error
    if "state" not in change:
        assert answer["state"] == "st-123"


def test_csrf_token_missing_wrong_or_from_another_browser(provider: Provider) -> None:
    _, challenge = pkce()
    with provider.browser() as browser, provider.browser() as other:
        fields = start(provider, browser, challenge)
        foreign = start(provider, other, challenge)
        login = {"username": "alice", "password": PASSWORD}
        missing = browser.post("/auth/login", data={"request": fields["request"], **login})
        assert missing.status_code == 400
        wrong = browser.post("/auth/login", data={**fields, **login, "csrf": "A" * 43})
        assert wrong.status_code == 403
        crossed = browser.post("/auth/login", data={**fields, **login,
                                                    "csrf": foreign["csrf"]})
        assert crossed.status_code == 403
        for response in (missing, wrong, crossed):
            assert "location" not in response.headers
            assert not any(c.startswith("vesalius_session=")
                           for c in response.headers.get_list("set-cookie"))
    # no pre-session cookie at all (a cross-site POST from a fresh browser)
    bare = httpx.post(f"{provider.base}/auth/login", data={**fields, **login})
    assert bare.status_code == 403


def test_tampered_request_in_the_form_cannot_redirect_elsewhere(provider: Provider) -> None:
    _, challenge = pkce()
    with provider.browser() as browser:
        fields = start(provider, browser, challenge)
        evil = fields["request"].replace("app.example.org", "evil.example")
        response = browser.post("/auth/login", data={**fields, "request": evil,
                                                     "username": "alice",
                                                     "password": PASSWORD})
    _no_redirect(response)


def test_forged_or_foreign_sign_in_ticket(provider: Provider) -> None:
    _, challenge = pkce()
    with provider.browser() as browser, provider.browser() as other:
        fields = start(provider, browser, challenge)
        step = hidden_fields(browser.post("/auth/login", data={
            **fields, "username": "root", "password": PASSWORD}).text)
        assert step["ticket"]
        forged = browser.post("/auth/login", data={**step, "ticket": step["ticket"][:-4] + "AAAA",
                                                   "totp": "123456"})
        assert forged.status_code == 400 and 'name="password"' in forged.text
        # the ticket is bound to the browser that received it
        foreign = start(provider, other, challenge)
        stolen = other.post("/auth/login", data={**foreign, "ticket": step["ticket"],
                                                 "totp": "123456"})
        assert stolen.status_code == 400


def test_hostile_values_are_escaped(provider: Provider) -> None:
    _, challenge = pkce()
    with provider.browser() as browser:
        fields = start(provider, browser, challenge)
        response = browser.post("/auth/login", data={
            **fields, "username": '"><script>alert(1)</script>', "password": "x"})
    assert response.status_code == 403
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/auth/login", "/auth/token", "/auth/revoke",
                                  "/auth/logout"])
def test_oversized_wrong_type_and_malformed_form_bodies(provider: Provider, path: str) -> None:
    url = f"{provider.base}{path}"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    big = httpx.post(url, content=b"a=" + b"x" * (70 * 1024), headers=form)
    assert big.status_code == 413
    as_json = httpx.post(url, json={"grant_type": "client_credentials"})
    assert as_json.status_code == 415
    for body in (b"grant_type=%ff%fe", b"a=1&a=2", b"csrf=\x80\x81", b"a=%00"):
        response = httpx.post(url, content=body, headers=form)
        assert response.status_code == 400, (body, response.text)
    many = "&".join(f"f{i}=1" for i in range(1000))
    assert httpx.post(url, content=many.encode(), headers=form).status_code == 400


def test_truncated_body_does_not_break_the_server(provider: Provider) -> None:
    with socket.create_connection(("127.0.0.1", provider.server.port), timeout=10) as sock:
        sock.sendall(b"POST /auth/token HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 500\r\n\r\ngrant_type=client_cre")
        sock.shutdown(socket.SHUT_WR)
        sock.recv(4096)
    chunked = httpx.post(f"{provider.base}/auth/token",
                         content=iter([b"grant_type=client_credentials&", b"scope=system/*.rs"]),
                         headers={"Content-Type": "application/x-www-form-urlencoded"},
                         auth=("backend", provider.backend_secret))
    assert chunked.status_code == 200, chunked.text
    assert httpx.get(f"{provider.base}/healthz").status_code == 200


def test_brute_force_locks_the_account(provider: Provider) -> None:
    failures = provider.node.settings.login_max_failures
    _, challenge = pkce()
    with provider.browser() as browser:
        fields = start(provider, browser, challenge)
        for _ in range(failures - 1):
            response = browser.post("/auth/login", data={**fields, "username": "alice",
                                                         "password": "Wrong-password-1"})
            assert response.status_code == 403
            assert "Wrong username or password." in response.text
        locked = browser.post("/auth/login", data={**fields, "username": "alice",
                                                   "password": "Wrong-password-1"})
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0
        right = browser.post("/auth/login", data={**fields, "username": "alice",
                                                  "password": PASSWORD})
        assert right.status_code == 429
        assert "location" not in right.headers
        # an unknown user gets the same page as a known one
        unknown = browser.post("/auth/login", data={**fields, "username": "nobody",
                                                    "password": "Wrong-password-1"})
        assert unknown.status_code == 403
        assert "Wrong username or password." in unknown.text
    refused = [r for r in provider.audit()
               if r["type"] == "110114" and r["outcome"] == 4 and r["who"] == "user:alice"]
    assert len(refused) >= failures


def test_public_client_cannot_authenticate_with_a_secret(provider: Provider) -> None:
    response = httpx.post(f"{provider.base}/auth/token", data={
        "grant_type": "authorization_code", "client_id": APP, "client_secret": "guess",
        "code": "c", "redirect_uri": REDIRECT, "code_verifier": "v" * 43})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"

