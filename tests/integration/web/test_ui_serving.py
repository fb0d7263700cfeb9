"""The web app at ``/`` over real HTTP: the build's files, the browser-side routes answered with
``index.html``, no token needed for either, APIs never shadowed, security headers on
everything, no way out of the build directory, and a 503 page that says how to build the app
when it was not built.

A small stand-in build in ``tmp_path`` keeps these tests independent of ``make ui``.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from conftest import free_port
from vesalius.config import Settings
from vesalius.node import Node, build_node
from vesalius.security.authn.builtin import WEB_CLIENT_ID
from vesalius.web.app import create_app

INDEX = '<!doctype html><html><body><div id="root"></div>ui-index-marker</body></html>'
SCRIPT = "console.log('ui-script-marker');" * 100
SECRET = "outside-the-build-marker"


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return build_node(Settings(data_dir=tmp_path / "data"))


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "site" / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-AbC123.js").write_text(SCRIPT)
    (root / "assets" / "index-AbC123.js.gz").write_bytes(gzip.compress(SCRIPT.encode()))
    (root / "assets" / "codec-x1.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "site" / "secret.txt").write_text(SECRET)
    (tmp_path / "site" / "assets").mkdir()
    (tmp_path / "site" / "assets" / "secret.js").write_text(SECRET)
    return root


class Serving:
    def __init__(self, node: Node, ui: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(node, ui=ui), host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        # No credentials, no cookies: everything here is what an anonymous browser gets.
        self.http = httpx.Client(base_url=self.base, timeout=30.0)

    def __enter__(self) -> Serving:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def raw(self, target: str) -> tuple[int, bytes]:
        """``GET target`` sent byte for byte (HTTP clients normalise ``..`` away)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Connection: close\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body


@pytest.fixture
def served(node: Node, dist: Path) -> Iterator[Serving]:
    with Serving(node, dist) as running:
        yield running


def _assert_security_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp  # no inline scripts
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("target", ["/", "/patients/pat-1", "/patients/pat-1/",
                                    "/viewer?study=1.2.840.99.1&prior=1.2.840.99.2",
                                    "/callback?code=abc&state=xyz", "/index.html"])
def test_app_routes_answer_the_shell_without_a_token(served: Serving, target: str) -> None:
    response = served.http.get(target)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"  # a new release is seen at once
    _assert_security_headers(response)
    head = served.http.head(target)
    assert head.status_code == 200 and head.content == b""


def test_assets_are_served_cached_and_compressed(served: Serving) -> None:
    plain = served.http.get("/assets/index-AbC123.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.text == SCRIPT
    assert plain.headers["content-type"].startswith("text/javascript")
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-encoding" not in plain.headers
    _assert_security_headers(plain)
    packed = served.http.get("/assets/index-AbC123.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.text == SCRIPT  # httpx decodes it
    assert int(packed.headers["content-length"]) < len(SCRIPT)
    wasm = served.http.get("/assets/codec-x1.wasm")
    assert wasm.headers["content-type"] == "application/wasm"
    assert wasm.content == b"\0asm\1\0\0\0"
    assert served.http.get("/assets/missing-1.js").status_code == 404


def test_apis_are_not_shadowed(served: Serving) -> None:
    chart = served.http.get("/api/patients/pat-1/chart")
    assert chart.status_code == 401 and chart.headers["www-authenticate"].startswith("Bearer")
    assert chart.json()["error"] == "unauthorized"
    fhir = served.http.get("/fhir/Patient")
    assert fhir.status_code == 401
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    assert served.http.get("/dicom-web/studies").status_code == 401
    assert served.http.get("/fhir/metadata").json()["resourceType"] == "CapabilityStatement"
    assert served.http.get("/healthz").json()["status"] == "ok"
    discovery = served.http.get("/.well-known/openid-configuration").json()
    assert discovery["authorization_endpoint"].endswith("/auth/authorize")
    assert "<form" in served.http.get("/auth/login").text
    # Paths that are neither the app's nor an API's still need a token: nothing new is opened.
    assert served.http.get("/admin").status_code == 401
    assert served.http.post("/").status_code == 401


def test_unknown_api_paths_are_404_not_the_app(node: Node, served: Serving) -> None:
    node.auth.add_user("ui-reader", ["clinician"], password="Ui-Reader-Password-1")
    token = node.auth.issue_token("ui-reader", 300)
    headers = {"Authorization": f"Bearer {token}"}
    for target in ("/api/nothing", "/api/patients/pat-1/chart/extra", "/dicom-web/nothing/x",
                   "/auth/nothing", "/nothing"):
        response = served.http.get(target, headers=headers)
        assert response.status_code in (404, 405), target
        assert "ui-index-marker" not in response.text, target


@pytest.mark.parametrize("target", [
    "/assets/../../secret.txt", "/assets/../secret.txt", "/../secret.txt",
    "/assets/%2e%2e/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt",
    "/assets/%2E%2E%2F%2E%2E%2Fsecret.txt", "/assets/..\\..\\secret.txt",
    "/assets//etc/passwd", "/assets/.hidden.js", "/%2e%2e/assets/secret.js",
])
def test_no_way_out_of_the_build(served: Serving, target: str) -> None:
    status, body = served.raw(target)
    assert status in (400, 401, 404), (target, status)
    assert SECRET.encode() not in body
    assert b"ui-index-marker" not in body


def test_missing_build_is_a_clear_503(node: Node, tmp_path: Path) -> None:
    with Serving(node, tmp_path / "never-built") as served:
        for target in ("/", "/patients/pat-1", "/viewer?study=1.2.3", "/assets/index-1.js"):
            response = served.http.get(target)
            assert response.status_code == 503, target
            assert "make ui" in response.text and "make run" in response.text
            assert response.headers["content-type"].startswith("text/html")
            _assert_security_headers(response)
        assert served.http.get("/healthz").status_code == 200


def test_every_installation_has_the_web_client(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    node = build_node(settings)
    client = node.auth.client(WEB_CLIENT_ID)
    assert client.public and client.auth_method == "none"
    assert client.redirect_uris == (f"{settings.base_url}/", f"{settings.base_url}/callback")
    assert {"openid", "offline_access", "user/*.cruds"} <= client.scopes
    build_node(settings)  # idempotent
    assert len([c for c in node.auth.clients() if c.client_id == WEB_CLIENT_ID]) == 1
    moved = Settings(data_dir=tmp_path / "data", public_base_url="https://pacs.example.org/")
    build_node(moved)
    uris = node.auth.client(WEB_CLIENT_ID).redirect_uris
    assert uris == (f"{settings.base_url}/", f"{settings.base_url}/callback",
                    "https://pacs.example.org/", "https://pacs.example.org/callback")
    elsewhere = Settings(data_dir=tmp_path / "plain", public_base_url="http://pacs.example.org")
    build_node(elsewhere)  # http off loopback: no sign-in for the app there, but it starts
