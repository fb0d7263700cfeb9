"""The test suite's own caller: ``RunningServer.http`` signs in as the ``test-suite`` backend
client, so every HTTP test exercises the server as an authorized caller would, and a test
that sends its own (bad) credentials still sends exactly those."""

from __future__ import annotations

import httpx

from conftest import TEST_CLIENT_ID, RunningServer


def test_the_client_is_signed_in_and_anonymous_callers_are_not(server: RunningServer) -> None:
    studies = f"{server.dicomweb}/studies"
    assert server.headers["Authorization"].startswith("Bearer ")
    assert server.http.get(studies).status_code in (200, 204)
    assert httpx.get(studies, timeout=30).status_code == 401
    assert server.node.auth.client(TEST_CLIENT_ID).client_id == TEST_CLIENT_ID


def test_a_token_near_expiry_is_replaced(server: RunningServer) -> None:
    first = server.headers
    server._renew_at = 0.0  # as if the token's lifetime had run out
    second = server.headers
    assert second != first
    assert server.http.get(f"{server.dicomweb}/studies").status_code in (200, 204)


def test_credentials_a_test_sends_itself_are_sent_as_they_are(server: RunningServer) -> None:
    studies = f"{server.dicomweb}/studies"
    for bad in ("Bearer", "Bearer not-a-token", "Basic dGVzdDp0ZXN0",
                "Bearer " + "x" * 10_000, server.headers["Authorization"][:-8]):
        response = server.http.get(studies, headers={"Authorization": bad})
        assert response.status_code in (400, 401, 431), (bad[:40], response.status_code)


def test_no_cookie_is_kept_between_requests(server: RunningServer) -> None:
    """As with the module-level ``httpx`` calls the suite used before, each request stands
    alone: a cookie the server sets (a sign-in session) is not sent back."""
    answer = httpx.Response(200, headers={"Set-Cookie": "vesalius_session=abc; Path=/"},
                            request=httpx.Request("GET", f"{server.base}/auth/login"))
    server.http.cookies.extract_cookies(answer)  # what the client does with every response
    assert not list(server.http.cookies.jar)
    assert "cookie" not in server.http.get(f"{server.base}/healthz").request.headers
