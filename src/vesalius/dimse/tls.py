"""TLS contexts for the DICOM secure transport connection profiles (PS3.15 Annex B.1/B.9)."""

from __future__ import annotations

import ssl

from vesalius.config import Settings
from vesalius.core.errors import InvalidInput


def server_context(settings: Settings) -> ssl.SSLContext:
    """TLS 1.2+ server context; client certificates required when configured."""
    if not settings.tls_certificate or not settings.tls_private_key:
        raise InvalidInput("DICOM TLS needs tls_certificate and tls_private_key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_certificate, settings.tls_private_key)
        if settings.tls_ca_certificates:
            context.load_verify_locations(settings.tls_ca_certificates)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(f"cannot load TLS certificate/key/CA: {exc}") from exc
    if settings.tls_require_client_certificate:
        if not settings.tls_ca_certificates:
            raise InvalidInput("requiring client certificates needs tls_ca_certificates")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(settings: Settings) -> ssl.SSLContext:
    """TLS 1.2+ client context verifying the peer against the configured CA bundle."""
    context = ssl.create_default_context(
        cafile=settings.tls_ca_certificates or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # peers are addressed by AE registry host, often an IP
    if settings.tls_certificate and settings.tls_private_key:
        context.load_cert_chain(settings.tls_certificate, settings.tls_private_key)
    return context
