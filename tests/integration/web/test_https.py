"""``vesalius serve`` over HTTPS as a user runs it: a real process and real TLS clients."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import free_port

VESALIUS = [sys.executable, "-m", "vesalius.cli.main"]


@dataclass
class Served:
    port: int
    certificate: Path
    output: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def _wait_ready(process: subprocess.Popen[bytes], served: Served) -> None:
    deadline = time.monotonic() + 120
    while True:
        if served.certificate.exists():
            try:
                if httpx.get(f"{served.url}/healthz", verify=_trusting(served),
                             timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        assert process.poll() is None, served.output.read_text()
        assert time.monotonic() < deadline, "server did not become ready"
        time.sleep(0.3)


def _trusting(served: Served) -> ssl.SSLContext:
    """A client that trusts exactly the generated certificate (and checks the name)."""
    return ssl.create_default_context(cafile=str(served.certificate))


@pytest.fixture(scope="module", params=[1, 2], ids=["one-process", "two-workers"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("https")
    data_dir = root / "data"
    port = free_port()
    result = Served(port, data_dir / "keys" / "https.crt", root / "serve.log")
    env = {**os.environ, "VESALIUS_HTTPS": "self-signed", "VESALIUS_HSTS_MAX_AGE": "1234"}
    with result.output.open("wb") as log:
        process = subprocess.Popen(
            [*VESALIUS, "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
             "--http-port", str(port), "--dicom-port", "0",
             "--http-workers", str(request.param)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(process, result)
        yield result
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_healthz_over_verified_https_with_security_headers(served: Served) -> None:
    with httpx.Client(verify=_trusting(served)) as client:
        health = client.get(f"{served.url}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.headers["strict-transport-security"] == "max-age=1234; includeSubDomains"
    assert health.headers["x-content-type-options"] == "nosniff"
    assert health.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in health.headers["content-security-policy"]
    assert "listening on https://127.0.0.1" in served.output.read_text()
    # The certificate names localhost too.
    with httpx.Client(verify=_trusting(served)) as client:
        assert client.get(f"https://localhost:{served.port}/healthz").status_code == 200


def test_an_untrusted_client_is_refused_by_its_own_verification(served: Served) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{served.url}/healthz", verify=ssl.create_default_context())


def _handshake(served: Served, context: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return str(tls.version())


def _old_protocol_client(maximum: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that really offers TLS 1.0/1.1 (OpenSSL 3 needs security level 0 for it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = maximum
    return context


def _client_hello(context: ssl.SSLContext) -> bytes:
    """The first TLS record ``context`` sends: its ClientHello (RFC 5246 §7.4.1.2)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        hello: list[bytes] = []

        def read_and_hang_up() -> None:
            accepted, _ = listener.accept()
            with accepted:
                accepted.settimeout(10)
                hello.append(accepted.recv(65536))

        reader = threading.Thread(target=read_and_hang_up)
        reader.start()
        with socket.create_connection(listener.getsockname(), timeout=10) as raw, \
                pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="127.0.0.1")
        reader.join()
    return hello[0]


def test_tls_1_1_and_weak_ciphers_are_refused_by_the_server(served: Served) -> None:
    for maximum, version in ((ssl.TLSVersion.TLSv1_1, b"\x03\x02"),
                             (ssl.TLSVersion.TLSv1, b"\x03\x01")):
        client = _old_protocol_client(maximum)
        # The client really offers the old protocol (it is the server that refuses it).
        assert _client_hello(client)[9:11] == version
        with pytest.raises(ssl.SSLError) as refused:
            _handshake(served, client)
        assert refused.value.reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL",
                                        "UNEXPECTED_EOF_WHILE_READING"), refused.value

    trusted = _trusting(served)
    trusted.maximum_version = ssl.TLSVersion.TLSv1_2
    assert _handshake(served, trusted) == "TLSv1.2"
    assert _handshake(served, _trusting(served)) == "TLSv1.3"

    weak = _trusting(served)
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:AES128-SHA:"
                     "@SECLEVEL=0")
    assert _client_hello(weak)  # the client does offer them
    with pytest.raises(ssl.SSLError) as no_shared_cipher:
        _handshake(served, weak)
    assert no_shared_cipher.value.reason in ("SSLV3_ALERT_HANDSHAKE_FAILURE",
                                             "UNEXPECTED_EOF_WHILE_READING"), no_shared_cipher.value


def test_plain_http_and_garbage_on_the_https_port_fail(served: Served) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{served.port}/healthz", timeout=5)
    for junk in (b"\x16\x03\x01\x00\x05hello", b"\x16\x03\x03" + b"\xff" * 70000, b"\x00"):
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw:
            try:
                raw.sendall(junk)
                raw.shutdown(socket.SHUT_WR)
                reply = raw.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                reply = b""
        assert b"HTTP/1.1 200" not in reply
    # The server is still there for well-behaved clients.
    with httpx.Client(verify=_trusting(served)) as client:
        assert client.get(f"{served.url}/healthz").status_code == 200
