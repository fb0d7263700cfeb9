"""HTTPS for ``vesalius serve``: the certificate to serve and the TLS settings to serve it with.

``https = "self-signed"`` generates an ECDSA P-256 certificate under ``<data_dir>/keys``
(``https.crt``, and ``https.key`` with mode 0600) valid for one year and for the names a
client on this machine or on the configured ``host`` uses (``localhost``, ``127.0.0.1``,
``::1``, ``host``). Browsers warn about it; it exists so that a fresh installation never
sends passwords or patient data in the clear. ``https = "files"`` serves the operator's
``http_tls_certificate`` and ``http_tls_private_key`` instead.

TLS settings follow the Mozilla "intermediate" profile
(https://wiki.mozilla.org/Security/Server_Side_TLS): TLS 1.2 or 1.3 only, and under TLS 1.2
only ECDHE/DHE key exchange with AEAD ciphers (no RSA key transport, CBC, SHA-1 MACs, RC4,
3DES or export ciphers). DICOM PS3.15 Annex B.9 (BCP 195) asks the same of DICOM TLS.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import re
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vesalius.config import Settings
from vesalius.core.errors import InvalidInput

CERTIFICATE_NAME = "https.crt"
KEY_NAME = "https.key"
#: A self-signed certificate lives this long; it is replaced this long before it expires.
VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
#: TLS 1.2 cipher suites (OpenSSL names); TLS 1.3 suites are all AEAD and left as they are.
CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
))
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
_HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                        r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    """Restrict ``context`` (server or client) to TLS 1.2+ and the ciphers above."""
    context.minimum_version = MINIMUM_VERSION
    context.set_ciphers(CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def server_context(certificate: Path, private_key: Path) -> ssl.SSLContext:
    """A hardened TLS server context serving ``certificate`` (a PEM chain) and its key."""
    context = harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    try:
        context.load_cert_chain(certificate, private_key)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(f"cannot load the HTTPS certificate {certificate} "
                           f"or key {private_key}: {exc}") from exc
    return context


def _names(host: str) -> list[x509.GeneralName]:
    """Subject alternative names: loopback, ``localhost`` and the configured bind host."""
    names: list[x509.GeneralName] = [x509.DNSName("localhost"),
                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                     x509.IPAddress(ipaddress.ip_address("::1"))]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # Only a plain DNS name (RFC 1123 labels) can go into a dNSName; anything else is a
        # name no client would reach us by.
        if _HOST_NAME.fullmatch(host) and host.lower() != "localhost":
            names.append(x509.DNSName(host.lower()))
        return names
    # 0.0.0.0 and :: mean "every interface", not a name anyone connects to.
    if not address.is_unspecified and x509.IPAddress(address) not in names:
        names.append(x509.IPAddress(address))
    return names


def _covers(certificate: x509.Certificate, host: str, now: dt.datetime) -> bool:
    """Whether a generated certificate is still good for ``host`` a while longer."""
    if certificate.not_valid_after_utc - RENEW_BEFORE < now:
        return False
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    return all(name in san.value for name in _names(host))


def _write_atomically(path: Path, content: bytes, mode: int) -> None:
    """Write ``path`` with ``mode`` from the first byte on (a reader never sees half a key)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def self_signed_certificate(keys_dir: Path, host: str, *,
                            now: dt.datetime | None = None) -> tuple[Path, Path]:
    """The self-signed certificate and key under ``keys_dir``, generated when missing.

    An existing pair is kept while it is valid for ``host`` and more than ``RENEW_BEFORE``
    from expiry (clients may have chosen to trust it); otherwise a new one replaces it.
    """
    now = now or dt.datetime.now(dt.UTC)
    certificate_path, key_path = keys_dir / CERTIFICATE_NAME, keys_dir / KEY_NAME
    if certificate_path.exists() and key_path.exists():
        try:
            existing = x509.load_pem_x509_certificate(certificate_path.read_bytes())
        except ValueError:
            existing = None
        if existing is not None and _covers(existing, host, now):
            return certificate_path, key_path
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Vesalius (self-signed)")])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256()))
    # Key first: a certificate next to a key that does not match it would not load.
    _write_atomically(key_path, key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()), 0o600)
    _write_atomically(certificate_path, certificate.public_bytes(serialization.Encoding.PEM),
                      0o644)
    return certificate_path, key_path


def https_files(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate and key to serve HTTPS with, or ``None`` when ``https = "off"``."""
    if settings.https == "off":
        return None
    if settings.https == "self-signed":
        return self_signed_certificate(settings.keys_dir, settings.host)
    if settings.https != "files":
        raise InvalidInput(f"unknown https mode {settings.https!r}")
    if not settings.http_tls_certificate or not settings.http_tls_private_key:
        raise InvalidInput('https = "files" needs http_tls_certificate and http_tls_private_key')
    certificate = Path(settings.http_tls_certificate).expanduser()
    key = Path(settings.http_tls_private_key).expanduser()
    server_context(certificate, key)  # fail at start, not at the first client
    return certificate, key


def uvicorn_context_factory(_config: Any, default: Callable[[], ssl.SSLContext]
                            ) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``: its context (certificate loaded), hardened.

    A module-level function, so uvicorn can hand it to spawned worker processes.
    """
    return harden(default())


def uvicorn_ssl_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` that serve HTTPS as configured ({} when off)."""
    files = https_files(settings)
    if files is None:
        return {}
    certificate, key = files
    return {"ssl_certfile": str(certificate), "ssl_keyfile": str(key),
            "ssl_version": ssl.PROTOCOL_TLS_SERVER, "ssl_ciphers": CIPHERS,
            "ssl_context_factory": uvicorn_context_factory}
