"""The HTTPS certificate and TLS settings of ``vesalius serve``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from dataclasses import replace
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from vesalius.config import Settings
from vesalius.core.errors import InvalidInput
from vesalius.security.tls import (
    CIPHERS,
    harden,
    https_files,
    self_signed_certificate,
    server_context,
    uvicorn_ssl_options,
)

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _san(certificate: x509.Certificate) -> x509.SubjectAlternativeName:
    return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_a_self_signed_pair_is_generated_private_and_valid_for_a_year(tmp_path: Path) -> None:
    keys = tmp_path / "data" / "keys"
    certificate_path, key_path = self_signed_certificate(keys, "192.0.2.7", now=NOW)
    assert (certificate_path.name, key_path.name) == ("https.crt", "https.key")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert b"PRIVATE KEY" in key_path.read_bytes()
    assert b"PRIVATE KEY" not in certificate_path.read_bytes()
    certificate = _load(certificate_path)
    assert certificate.not_valid_after_utc - NOW == dt.timedelta(days=365)
    assert certificate.not_valid_before_utc <= NOW
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    san = _san(certificate)
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
        ipaddress.ip_address("192.0.2.7")}
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # The key belongs to the certificate and both load into a server context.
    context = server_context(certificate_path, key_path)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_good_pair_is_kept_and_replaced_near_expiry_or_for_another_host(tmp_path: Path
                                                                          ) -> None:
    certificate_path, _ = self_signed_certificate(tmp_path, "pacs.example.org", now=NOW)
    first = certificate_path.read_bytes()
    assert _san(_load(certificate_path)).get_values_for_type(x509.DNSName) == [
        "localhost", "pacs.example.org"]
    self_signed_certificate(tmp_path, "pacs.example.org", now=NOW + dt.timedelta(days=300))
    assert certificate_path.read_bytes() == first  # clients may have chosen to trust it

    self_signed_certificate(tmp_path, "pacs.example.org", now=NOW + dt.timedelta(days=340))
    renewed = certificate_path.read_bytes()
    assert renewed != first
    self_signed_certificate(tmp_path, "other.example.org", now=NOW + dt.timedelta(days=340))
    assert certificate_path.read_bytes() != renewed
    assert "other.example.org" in _san(_load(certificate_path)).get_values_for_type(x509.DNSName)


@pytest.mark.parametrize("content", [b"", b"-----BEGIN CERTIFICATE-----\ntruncated",
                                     b"\x00" * 100000, "caf\u00e9".encode()])
def test_a_damaged_certificate_file_is_replaced(tmp_path: Path, content: bytes) -> None:
    certificate_path, key_path = self_signed_certificate(tmp_path, "127.0.0.1", now=NOW)
    certificate_path.write_bytes(content)
    self_signed_certificate(tmp_path, "127.0.0.1", now=NOW)
    server_context(certificate_path, key_path)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "bad host", "b\u00fccher.example",
                                  "-leading.example", "a" * 300, "x" * 64 + ".example"])
def test_hosts_that_no_client_connects_to_stay_out_of_the_certificate(tmp_path: Path,
                                                                      host: str) -> None:
    certificate_path, _ = self_signed_certificate(tmp_path, host, now=NOW)
    san = _san(_load(certificate_path))
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert len(san.get_values_for_type(x509.IPAddress)) == 2


def test_https_modes(tmp_path: Path) -> None:
    base = Settings(data_dir=tmp_path / "data")
    assert https_files(base) is None
    assert uvicorn_ssl_options(base) == {}
    generated = https_files(replace(base, https="self-signed"))
    assert generated == (base.keys_dir / "https.crt", base.keys_dir / "https.key")

    with pytest.raises(InvalidInput, match="http_tls_certificate"):
        https_files(replace(base, https="files"))
    with pytest.raises(InvalidInput, match="cannot load"):
        https_files(replace(base, https="files", http_tls_certificate=str(tmp_path / "no.crt"),
                            http_tls_private_key=str(tmp_path / "no.key")))
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(InvalidInput, match="cannot load"):
        https_files(replace(base, https="files", http_tls_certificate=str(junk),
                            http_tls_private_key=str(junk)))
    other_key = self_signed_certificate(tmp_path / "other", "127.0.0.1")[1]
    with pytest.raises(InvalidInput, match="cannot load"):  # a key of another certificate
        https_files(replace(base, https="files", http_tls_certificate=str(generated[0]),
                            http_tls_private_key=str(other_key)))
    files = replace(base, https="files", http_tls_certificate=str(generated[0]),
                    http_tls_private_key=str(generated[1]))
    assert https_files(files) == generated
    with pytest.raises(InvalidInput):
        https_files(replace(base, https="sometimes"))


def test_uvicorn_serves_with_the_hardened_context(tmp_path: Path) -> None:
    options = uvicorn_ssl_options(Settings(data_dir=tmp_path, https="self-signed"))
    assert options["ssl_ciphers"] == CIPHERS
    config = uvicorn.Config("vesalius.web.app:app_from_environment", **options)
    config.load()
    assert config.ssl is not None
    assert config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    offered = {cipher["name"] for cipher in config.ssl.get_ciphers()
               if cipher["protocol"] == "TLSv1.2"}
    assert offered and offered <= set(CIPHERS.split(":"))


def test_hardened_contexts_offer_no_weak_cipher() -> None:
    context = harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    assert context.get_ciphers()
    # Authenticated encryption only (no CBC/RC4/3DES/NULL) with forward-secret key exchange
    # (no RSA key transport, PSK or anonymous suites).
    for cipher in context.get_ciphers():
        assert cipher["aead"], cipher["name"]
        assert cipher["protocol"] == "TLSv1.3" or cipher["kea"] in ("kx-ecdhe", "kx-dhe")
