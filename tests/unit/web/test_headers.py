"""Security headers: present on every answer, HSTS only over HTTPS, bodies untouched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from vesalius.node import Node
from vesalius.web.app import create_app
from vesalius.web.headers import CONTENT_SECURITY_POLICY, SecurityHeaders

BOUNDARY = "vesalius-test-boundary"
PARTS = [f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + bytes([i]) * 65536
         + b"\r\n" for i in range(8)] + [f"--{BOUNDARY}--\r\n".encode()]


async def plain(_request: Request) -> Response:
    return PlainTextResponse("ok")


async def cached(_request: Request) -> Response:
    return PlainTextResponse("frame", headers={"Cache-Control": "private, max-age=60"})


async def own_policy(_request: Request) -> Response:
    return PlainTextResponse("page", headers={"content-security-policy": "default-src 'none'"})


async def multipart(_request: Request) -> Response:
    async def parts() -> AsyncIterator[bytes]:
        for part in PARTS:
            yield part

    return StreamingResponse(parts(), media_type=f'multipart/related; type="application/dicom"; '
                                                 f'boundary={BOUNDARY}')


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


def _app(hsts_max_age: int = 31536000) -> Starlette:
    return Starlette(middleware=[Middleware(SecurityHeaders, hsts_max_age=hsts_max_age)], routes=[
        Route("/", plain), Route("/fhir/Patient/1", plain), Route("/api/x", plain),
        Route("/auth/token", plain, methods=["GET", "POST"]), Route("/dicom-web/studies", plain),
        Route("/dicom-web/frames", cached), Route("/page", own_policy),
        Route("/dicom-web/studies/1", multipart), Route("/fhirish", plain),
        WebSocketRoute("/ws", echo)])


def test_every_answer_carries_the_headers_and_hsts_only_over_https() -> None:
    with TestClient(_app(), base_url="http://testserver") as http:
        answer = http.get("/")
        missing = http.get("/no/such/route")
    for response in (answer, missing):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "camera=()" in response.headers["permissions-policy"]
        assert "strict-transport-security" not in response.headers
    assert missing.status_code == 404
    policy = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'" and "blob:" in policy["img-src"]

    with TestClient(_app(hsts_max_age=600), base_url="https://testserver") as https:
        secure = https.get("/")
    assert secure.headers["strict-transport-security"] == "max-age=600; includeSubDomains"
    assert secure.headers["x-frame-options"] == "DENY"


def test_patient_data_and_sign_in_answers_are_not_stored_unless_the_route_decides() -> None:
    with TestClient(_app()) as http:
        for path in ("/fhir/Patient/1", "/api/x", "/auth/token", "/dicom-web/studies"):
            assert http.get(path).headers["cache-control"] == "no-store", path
        assert http.post("/auth/token").headers["cache-control"] == "no-store"
        # A prefix is a path segment: /fhirish is not under /fhir.
        assert "cache-control" not in http.get("/fhirish").headers
        assert "cache-control" not in http.get("/").headers
        # What a route chose stays, once.
        frames = http.get("/dicom-web/frames")
        assert frames.headers.get_list("cache-control") == ["private, max-age=60"]
        page = http.get("/page")
        assert page.headers.get_list("content-security-policy") == ["default-src 'none'"]


def test_a_streamed_multipart_body_passes_through_byte_for_byte() -> None:
    with TestClient(_app()) as http, http.stream("GET", "/dicom-web/studies/1") as response:
        chunks = list(response.iter_raw())
        headers = response.headers
    assert b"".join(chunks) == b"".join(PARTS)
    assert len(chunks) > 1  # still streamed, not gathered into one body
    assert headers["content-type"].startswith("multipart/related")
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"


def test_websockets_and_lifespan_pass_untouched_and_a_bare_start_message_is_fine() -> None:
    with TestClient(_app()) as http, http.websocket_connect("/ws") as socket:
        socket.send_text("hello")
        assert socket.receive_text() == "hello"

    sent: list[Message] = []

    async def bare(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(SecurityHeaders(bare)(
        {"type": "http", "path": "/api/\x00%zz/../\u202e", "scheme": "https", "headers": []},
        receive, send))
    names = {name for name, _ in sent[0]["headers"]}
    assert {b"strict-transport-security", b"cache-control", b"x-frame-options"} <= names
    assert sent[1] == {"type": "http.response.body", "body": b""}


def test_hostile_paths_and_mixed_case_headers_from_a_route() -> None:
    sent: list[Message] = []

    async def shouting(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"Cache-Control", b"max-age=5"),
                                (b"X-Frame-Options", b"SAMEORIGIN")]})

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(SecurityHeaders(shouting)({"type": "http", "path": "/fhir/" + "A" * 100000},
                                          receive, send))
    headers = sent[0]["headers"]
    assert [v for n, v in headers if n.lower() == b"cache-control"] == [b"max-age=5"]
    assert [v for n, v in headers if n.lower() == b"x-frame-options"] == [b"SAMEORIGIN"]
    assert (b"x-content-type-options", b"nosniff") in headers
    with pytest.raises(ValueError):
        SecurityHeaders(shouting, hsts_max_age=-1)


def test_the_application_mounts_the_headers_outermost(node: Node) -> None:
    with TestClient(create_app(node), base_url="https://testserver") as https:
        health = https.get("/healthz")
        chart = https.get("/api/patients/nobody/chart")
        fhir = https.get("/fhir/Patient?name=%00%ff" + "x" * 5000)
    assert health.status_code == 200
    for response in (health, chart, fhir):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert chart.headers["cache-control"] == "no-store"
    assert fhir.headers["cache-control"] == "no-store"
