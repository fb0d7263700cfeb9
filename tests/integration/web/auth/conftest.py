"""The provider on a real server: accounts, clients and a browser-like HTTP client."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest

from conftest import RunningServer
from vesalius.node import Node

PASSWORD = "Correct-horse-battery-9"
ADMIN_TOTP = pyotp.random_base32()
APP = "smart-app"
REDIRECT = "https://app.example.org/callback"
APP_SCOPES = ["openid", "fhirUser", "launch/patient", "offline_access", "user/*.cruds",
              "patient/*.rs"]


@dataclass
class Provider:
    """The running server plus what the tests registered on it."""

    server: RunningServer
    node: Node
    backend_secret: str

    @property
    def base(self) -> str:
        return self.server.base

    @property
    def fhir_base(self) -> str:
        """The ``aud`` SMART apps name: the node's configured FHIR base."""
        return f"{self.node.settings.base_url}/fhir"

    @property
    def token_endpoint(self) -> str:
        return f"{self.node.settings.issuer}/token"

    def browser(self) -> httpx.Client:
        """A cookie-keeping client that does not follow redirects (we look at each one)."""
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=30.0)

    def audit(self) -> list[dict[str, object]]:
        self.node.auditor.flush()
        return [dict(entry.columns) for entry in self.node.auditor.store.entries()]


@pytest.fixture
def provider(server: RunningServer) -> Iterator[Provider]:
    auth = server.node.auth
    auth.add_user("alice", ["clinician"], password=PASSWORD, name="Alice Example")
    auth.add_user("pat", ["patient"], password=PASSWORD, patient="example")
    auth.add_user("root", ["administrator"], password=PASSWORD)
    auth.set_totp_secret("root", ADMIN_TOTP)
    auth.add_user("newadmin", ["administrator"], password=PASSWORD)
    auth.add_client(APP, name="Example SMART app", public=True, redirect_uris=[REDIRECT],
                    scopes=APP_SCOPES)
    secret = auth.add_client("backend", scopes=["system/*.rs"])
    assert secret is not None
    yield Provider(server, server.node, secret)


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge) as RFC 7636 §4.1-4.2 define them."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(provider: Provider, challenge: str, **extra: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": APP, "redirect_uri": REDIRECT,
              "scope": "openid fhirUser offline_access user/*.rs", "state": "st-123",
              "code_challenge": challenge, "code_challenge_method": "S256",
              "aud": provider.fhir_base, "nonce": "n-1"}
    params.update(extra)
    return {k: v for k, v in params.items() if v != ""}


def authorize_url(provider: Provider, challenge: str, **extra: str) -> str:
    return f"/auth/authorize?{urlencode(authorize_params(provider, challenge, **extra))}"


def hidden_fields(html: str) -> dict[str, str]:
    return {unescape(name): unescape(value) for name, value in re.findall(
        r'<input type="hidden" name="([^"]*)" value="([^"]*)">', html)}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def start(provider: Provider, browser: httpx.Client, challenge: str,
          **extra: str) -> dict[str, str]:
    """GET /auth/authorize and return the sign-in form's hidden fields."""
    response = browser.get(authorize_url(provider, challenge, **extra))
    assert response.status_code == 200, response.text
    assert '<form method="post" action="/auth/login"' in response.text
    return hidden_fields(response.text)


def sign_in(provider: Provider, browser: httpx.Client, username: str = "alice",
            password: str = PASSWORD, **extra: str) -> tuple[str, str]:
    """The whole browser flow up to the code: returns (code, verifier)."""
    verifier, challenge = pkce()
    fields = start(provider, browser, challenge, **extra)
    response = browser.post("/auth/login", data={**fields, "username": username,
                                                 "password": password})
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    answer = query_of(location)
    assert answer["state"] == "st-123"
    return answer["code"], verifier


def redeem(provider: Provider, code: str, verifier: str) -> httpx.Response:
    return httpx.post(f"{provider.base}/auth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier, "client_id": APP})
